"""What the API does, in plain async functions. Knows nothing of Strawberry or HTTP."""
