"""Alembic migrations of the mirror, applied in order by `store.migrate`."""
