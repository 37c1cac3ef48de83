"""Brokers carry wake-ups from writers to live feeds: in-process (one worker), PostgreSQL
LISTEN/NOTIFY and Redis pub/sub (many workers and hosts), under one supervisor; ``factory``
picks one from a URL."""
