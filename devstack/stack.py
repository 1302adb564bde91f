"""The local stack without Docker: a real Temporal dev server and a real embedded PostgreSQL.

Used by ``promptpilot dev`` and by the pytest session fixtures::

    async with TemporalDevServer(data_dir, db_file=data_dir / "temporal.db",
                                 namespaces=["dev", "prod"]) as temporal, \\
               EmbeddedPostgres(data_dir / "postgres") as db:
        client = await Client.connect(temporal.address, namespace="dev")
        engine = create_async_engine(db.url)

Both stop in ``__aexit__``; outside a context manager call ``stop()`` in ``finally`` (``atexit``
does not run after ``os._exit``, and the Temporal server ignores the terminal's Ctrl-C).
"""

from devstack.embedded_db import EmbeddedPostgres
from devstack.process import StackStartError, free_port
from devstack.temporal_server import (
    SEARCH_ATTRIBUTE_TYPES,
    TemporalDevServer,
    ensure_search_attributes,
    find_temporal_binary,
)

__all__ = [
    "SEARCH_ATTRIBUTE_TYPES",
    "EmbeddedPostgres",
    "StackStartError",
    "TemporalDevServer",
    "ensure_search_attributes",
    "find_temporal_binary",
    "free_port",
]
