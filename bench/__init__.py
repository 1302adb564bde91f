"""Side-by-side benchmark: asyncio, a durable floor, Temporal by hand, the interpreter, DBOS."""
