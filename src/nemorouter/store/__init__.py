"""Durable data (spend log, jobs; keys and teams later): SQLAlchemy Core on SQLite or
PostgreSQL, migrated by Alembic at start, written by a batched background writer."""
