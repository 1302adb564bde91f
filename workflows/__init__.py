"""Deterministic code that runs inside Temporal's workflow sandbox."""
