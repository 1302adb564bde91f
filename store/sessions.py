"""Inspector sessions: a random id in the cookie, its SHA-256 digest and CSRF token in Postgres.

The id carries 256 bits of randomness, so (as for API keys, see ``store.keys``) a fast digest
is enough at rest: a read of the table gives nobody a cookie. Every lookup joins the key's
row, so revoking the key ends its sessions at the next request; expired rows are never
answered and are pruned as new sessions start.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from store.access_tables import ApiKeyRow
from store.columns import utcnow
from store.sql import from_record, raw_connection


def digest(session_id: str) -> str:
    """The at-rest form of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: the key it acts as and its CSRF token."""

    key: ApiKeyRow
    csrf_token: str


class Sessions:
    """Starts, finds and ends inspector sessions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def start(self, key_id: uuid.UUID, lifetime_seconds: float) -> tuple[str, str]:
        """A new session for a verified key: (the id for the cookie, its CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        async with raw_connection(self._engine) as driver:
            # Pruning here keeps the table to the sessions that can still be used.
            await driver.execute("DELETE FROM ui_sessions WHERE expires_at <= $1", now)
            await driver.execute(
                "INSERT INTO ui_sessions (id_hash, api_key_id, csrf_token, created_at, "
                "expires_at) VALUES ($1, $2, $3, $4, $5)", digest(session_id), key_id, csrf,
                now, now + timedelta(seconds=lifetime_seconds))
        return session_id, csrf

    async def find(self, session_id: str) -> Session | None:
        """The live session for a cookie's id: not expired, its key not revoked; else None."""
        keys = SQLModel.metadata.tables[ApiKeyRow.__tablename__]
        columns = ", ".join(f"k.{column.name}" for column in keys.columns)
        async with raw_connection(self._engine) as driver:
            record = await driver.fetchrow(
                f"SELECT {columns}, s.csrf_token AS _csrf FROM ui_sessions s "
                "JOIN api_keys k ON k.id = s.api_key_id "
                "WHERE s.id_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
                digest(session_id), utcnow())
        if record is None:
            return None
        values = dict(record)
        csrf = values.pop("_csrf")
        return Session(key=from_record(ApiKeyRow, values), csrf_token=csrf)

    async def end(self, session_id: str) -> None:
        """Sign a session out (nothing happens for an unknown id)."""
        async with raw_connection(self._engine) as driver:
            await driver.execute("DELETE FROM ui_sessions WHERE id_hash = $1",
                                 digest(session_id))
