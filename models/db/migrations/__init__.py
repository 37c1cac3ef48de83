"""Alembic migrations of the support-graph schema (``support-graph migrate``)."""
