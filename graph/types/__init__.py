"""GraphQL object types, inputs, filters and orders, one module per entity."""
