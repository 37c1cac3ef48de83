"""The GraphQL surface: Strawberry types, the ASGI app, the server and the CLI."""
