"""Persistence: the mirror tables, their migrations, and the stores over Postgres (runs and steps,
versioned workflows and prompts, triggers, API keys, usage, run events)."""
