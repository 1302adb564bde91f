"""The local stack without Docker: embedded PostgreSQL, the Temporal dev server, the examples."""
