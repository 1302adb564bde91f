"""Where payloads at or over the threshold go instead of Temporal's history.

Two drivers for the SDK's ``ExternalStorage``: our own Postgres (the default: nothing new to
run) and S3 or any S3-compatible server through the SDK's shipped ``S3StorageDriver``.
History keeps a small reference; the bytes stored are what the payload codec made of the
payload, so they are encrypted when keys are set.

Retention: Temporal deletes nothing from an external store. Postgres rows carry their
namespace, workflow id (a run's id) and when they were last stored; ``promptpilot payloads
prune`` deletes those older than ``payloads.keep_days`` (keep it over the namespace's
retention plus the longest run). For S3, a bucket lifecycle rule with the same age does it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.api.common.v1 import Payload
from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient
from temporalio.converter import (
    ExternalStorage,
    StorageDriver,
    StorageDriverActivityInfo,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)

from promptpilot.settings import Settings
from store.database import async_url

POSTGRES_DRIVER = "promptpilot.postgres"
# Options SQLAlchemy's asyncpg dialect understands but asyncpg.connect does not.
_DIALECT_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func",
                 "async_creator_fn")
_STORE_SQL = (
    "INSERT INTO payload_blobs (namespace, workflow_id, digest, data, size_bytes, created_at,"
    " stored_at) VALUES ($1, $2, $3, $4, $5, now(), now())"
    " ON CONFLICT (namespace, workflow_id, digest) DO UPDATE SET stored_at = now()")
_FETCH_SQL = ("SELECT data FROM payload_blobs"
              " WHERE namespace = $1 AND workflow_id = $2 AND digest = $3")


class PayloadStorageError(RuntimeError):
    """A stored payload is missing or does not match its reference."""


def _owner(context: StorageDriverStoreContext) -> tuple[str, str]:
    """The (namespace, workflow id) a payload belongs to, for retention and scoping."""
    target = context.target
    if isinstance(target, StorageDriverWorkflowInfo):
        return target.namespace, target.id or ""
    if isinstance(target, StorageDriverActivityInfo):
        return target.namespace, f"activity:{target.id or ''}"
    return "", ""


class PostgresStorageDriver(StorageDriver):
    """Payloads in the ``payload_blobs`` table, keyed by namespace, workflow and digest."""

    def __init__(self, database_url: str, max_bytes: int) -> None:
        self._url = database_url
        self._max_bytes = max_bytes
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    def name(self) -> str:
        """The driver's name in every reference it made."""
        return POSTGRES_DRIVER

    def type(self) -> str:
        """The driver's kind."""
        return POSTGRES_DRIVER

    async def _connections(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a test session, a restarted CLI)
            self._pool, self._loop, self._lock = None, loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self._pool is None:
                engine = create_async_engine(async_url(self._url))
                _, options = engine.dialect.create_connect_args(engine.url)
                await engine.dispose()
                for name in _DIALECT_ONLY:
                    options.pop(name, None)
                self._pool = await asyncpg.create_pool(min_size=0, max_size=4, **options)
            return self._pool

    async def store(self, context: StorageDriverStoreContext,
                    payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        """Write each payload (once per digest) and return its reference."""
        namespace, workflow_id = _owner(context)
        rows, claims = [], []
        for payload in payloads:
            data = payload.SerializeToString(deterministic=True)
            if len(data) > self._max_bytes:
                raise ValueError(f"payload of {len(data)} bytes is over the storage's maximum"
                                 f" of {self._max_bytes} (payloads.max_stored_bytes)")
            digest = hashlib.sha256(data).hexdigest()
            rows.append((namespace, workflow_id, digest, data, len(data)))
            claims.append(StorageDriverClaim(claim_data={
                "namespace": namespace, "workflow": workflow_id, "sha256": digest}))
        pool = await self._connections()
        async with pool.acquire() as connection:
            await connection.executemany(_STORE_SQL, rows)
        return claims

    async def retrieve(self, context: StorageDriverRetrieveContext,
                       claims: Sequence[StorageDriverClaim]) -> list[Payload]:
        """Read each referenced payload and check it against its digest."""
        pool = await self._connections()
        payloads = []
        async with pool.acquire() as connection:
            for claim in claims:
                ref = claim.claim_data
                data = await connection.fetchval(_FETCH_SQL, ref["namespace"], ref["workflow"],
                                                 ref["sha256"])
                where = f"workflow {ref['workflow']!r} in namespace {ref['namespace']!r}"
                if data is None:
                    raise PayloadStorageError(
                        f"stored payload {ref['sha256'][:12]}… of {where} is gone (pruned?)")
                if hashlib.sha256(data).hexdigest() != ref["sha256"]:
                    raise PayloadStorageError(
                        f"stored payload {ref['sha256'][:12]}… of {where} does not match "
                        "its digest")
                payload = Payload()
                payload.ParseFromString(data)
                payloads.append(payload)
        return payloads

    async def prune(self, older_than: timedelta) -> int:
        """Delete payloads last stored before ``older_than`` ago; returns how many."""
        pool = await self._connections()
        async with pool.acquire() as connection:
            status = await connection.execute(
                "DELETE FROM payload_blobs WHERE stored_at < now() - $1::interval", older_than)
        return int(status.split()[-1])

    async def aclose(self) -> None:
        """Close the pool (a later use opens a new one)."""
        pool, self._pool = self._pool, None
        if pool is not None and self._loop is asyncio.get_running_loop():
            await pool.close()


class LazyS3Client(S3StorageDriverClient):
    """The SDK's aioboto3 adapter over an S3 client opened on first use, from settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.payloads
        self._stack: AsyncExitStack | None = None
        self._client: S3StorageDriverClient | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> S3StorageDriverClient:
        async with self._lock:
            if self._client is None:
                import aioboto3
                from temporalio.contrib.aws.s3driver.aioboto3 import new_aioboto3_client

                p = self._settings
                secret = p.s3_secret_access_key
                options: dict[str, Any] = {
                    "endpoint_url": p.s3_endpoint_url, "region_name": p.s3_region,
                    "aws_access_key_id": p.s3_access_key_id,
                    "aws_secret_access_key": secret.get_secret_value() if secret else None}
                stack = AsyncExitStack()
                client = await stack.enter_async_context(aioboto3.Session().client(
                    "s3", **{k: v for k, v in options.items() if v is not None}))
                self._stack, self._client = stack, new_aioboto3_client(client)
            return self._client

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        """Upload an object."""
        await (await self._open()).put_object(bucket=bucket, key=key, data=data)

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        """Whether the object is there already (content-addressed keys: then skip)."""
        return await (await self._open()).object_exists(bucket=bucket, key=key)

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        """Download an object."""
        return await (await self._open()).get_object(bucket=bucket, key=key)

    async def aclose(self) -> None:
        """Close the S3 client (a later use opens a new one)."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


class PayloadStorage:
    """The configured drivers: the one that stores (none with ``storage=none``), and every
    one that may read a reference found in history."""

    def __init__(self, settings: Settings) -> None:
        p = settings.payloads
        url = settings.database.url
        if p.storage == "postgres" and not url:
            raise ValueError("payloads.storage is postgres but no database URL is set "
                             "(DATABASE_URL or database.url)")
        self.postgres = PostgresStorageDriver(url, p.max_stored_bytes) if url else None
        self.s3_client = LazyS3Client(settings) if p.storage == "s3" else None
        self.active: StorageDriver | None = self.postgres if p.storage == "postgres" else None
        drivers: list[StorageDriver] = [self.postgres] if self.postgres else []
        if self.s3_client is not None:
            assert p.s3_bucket
            self.active = S3StorageDriver(client=self.s3_client, bucket=p.s3_bucket,
                                          max_payload_size=p.max_stored_bytes)
            drivers.insert(0, self.active)
        active = self.active
        # Every driver reads what it once stored (after a switch from Postgres to S3, or to
        # none, older runs stay readable); only the configured one stores.
        self.external = ExternalStorage(
            drivers=drivers, payload_size_threshold=p.storage_threshold_bytes,
            driver_selector=lambda _context, _payload: active) if drivers else None

    def driver(self, name: str) -> StorageDriver | None:
        """A reading driver by the name a reference carries."""
        drivers = self.external.drivers if self.external is not None else []
        return next((d for d in drivers if d.name() == name), None)

    async def aclose(self) -> None:
        """Release connections; the drivers reopen them on their next use."""
        if self.postgres is not None:
            await self.postgres.aclose()
        if self.s3_client is not None:
            await self.s3_client.aclose()
