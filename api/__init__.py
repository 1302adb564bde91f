"""The FastAPI front door."""
