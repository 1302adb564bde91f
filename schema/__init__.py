"""Contracts only: the definition DSL, run payloads and API bodies. No I/O lives here."""
