"""Postgres: migrations, pool and queries (issue 3; nothing here yet)."""
