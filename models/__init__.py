"""Tables and pure domain rules. Knows nothing of Strawberry or HTTP."""
