"""Every table of the mirror, imported so SQLModel's metadata holds them all (migrations, the
schema test, and foreign keys resolved across modules)."""

from store import access_tables, limit_tables, tables, trigger_tables

__all__ = ["access_tables", "limit_tables", "tables", "trigger_tables"]
