"""Shared infrastructure: settings, the Postgres store, the local stack and the CLI."""
