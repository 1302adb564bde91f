"""The one way to connect to Temporal, and the one data converter every client shares.

The converter (``data_converter(settings)``) is used by the worker, the API, the CLI, the
tests, the benchmark and the replay tests. A payload goes through, in order:

1. pydantic conversion (our schema models as JSON), behind the payload-size guard at
   ``settings.max_payload_bytes`` (``limits.max_payload_bytes`` while every payload stays in
   history; the storage's maximum once large ones leave it);
2. the payload codec: AES-256-GCM under the key ring's active key (``payloads/codec.py``);
   failures' messages and stack traces are encrypted too (encoded failure attributes);
3. external storage: a payload at or over ``payloads.storage_threshold_bytes`` goes to the
   storage driver (``payloads/storage.py``) and history keeps a reference to it.

A process that runs a worker shares that worker's client with its own starters (the API of
``promptpilot dev``, the benchmark): a start made on the worker's client with
``request_eager_start`` hands the run's first workflow task straight back to that worker in
the start response, without a trip through the server's task queue.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadConverter,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from payloads.codec import EncryptionCodec, KeyRing, KeyRingError, read_key_file
from payloads.size_guard import guarded
from payloads.storage import PayloadStorage
from promptpilot import tracing
from promptpilot.settings import Settings

log = logging.getLogger("promptpilot.payloads")


@dataclass(frozen=True)
class PayloadPipeline:
    """The shared converter and the parts the codec endpoint serves on their own."""

    converter: DataConverter
    codec: EncryptionCodec | None
    storage: PayloadStorage


_CONTEXTUAL = ("payload_converter", "payload_codec", "failure_converter", "external_storage")


@dataclass(frozen=True)
class _DataConverter(DataConverter):
    """The SDK's converter, with a cheaper contextual copy: the SDK's ``with_context`` copies
    itself with ``dataclasses.replace``, which re-runs ``__post_init__`` and so builds a new
    pydantic payload converter and failure converter only to replace them (its
    ``_with_store_context`` too). Both run for every activity and workflow task: about 8 % of
    the worker's event loop in B4 (docs/performance.md)."""

    def with_context(self, context: SerializationContext) -> Self:
        """The same parts, each given the context if it takes one."""
        parts = {}
        for name in _CONTEXTUAL:
            part = getattr(self, name)
            if isinstance(part, WithSerializationContext):
                contextual = part.with_context(context)
                if contextual is not part:
                    parts[name] = contextual
        if not parts:
            return self
        cloned = copy.copy(self)  # no __init__, so no __post_init__
        for name, part in parts.items():
            object.__setattr__(cloned, name, part)
        return cloned

    def _with_store_context(self, store_ctx: Any) -> DataConverter:
        """The SDK's, without its ``dataclasses.replace`` (see ``with_context``)."""
        if self.external_storage is None:
            return self
        cloned = copy.copy(self)
        object.__setattr__(cloned, "external_storage",
                           self.external_storage._with_store_context(store_ctx))
        return cloned


_PIPELINES: dict[str, PayloadPipeline] = {}
_WORKER_CLIENTS: dict[tuple[str, str], Client] = {}


def key_ring(settings: Settings) -> KeyRing | None:
    """The payload key ring: ``payloads.encryption_keys`` plus the key file, if any.

    None (no encryption) only in the dev environment or with ``payloads.allow_plaintext``.
    """
    p = settings.payloads
    encoded = {key_id: secret.get_secret_value() for key_id, secret in p.encryption_keys.items()}
    if p.key_file is not None:
        encoded = {**read_key_file(p.key_file), **encoded}
    if encoded:
        return KeyRing.parse(encoded, p.encryption_key_id)
    if settings.environment != "dev" and not p.allow_plaintext:
        raise KeyRingError(
            f"refusing to run the {settings.environment!r} environment with readable payloads:"
            " set PROMPTPILOT_PAYLOADS__ENCRYPTION_KEYS ('{\"k1\": \"<base64 of 32 bytes>\"}',"
            " `promptpilot payloads new-key` makes one) or PROMPTPILOT_PAYLOADS__KEY_FILE")
    return None


def payload_converter_class(settings: Settings) -> type[PayloadConverter]:
    """Pydantic conversion behind the payload-size guard (``payloads.size_guard``):
    ``payload_too_large`` over ``settings.max_payload_bytes``."""
    return guarded(PydanticPayloadConverter, settings.max_payload_bytes,
                   check_local_inputs=settings.payloads.storage != "none")


def payload_pipeline(settings: Settings) -> PayloadPipeline:
    """The converter for these settings, built once per process for each configuration (so
    tests that make new settings objects share one storage pool)."""
    fingerprint = _fingerprint(settings)
    pipeline = _PIPELINES.get(fingerprint)
    if pipeline is None:
        ring = key_ring(settings)
        codec = EncryptionCodec(ring) if ring is not None else None
        if codec is None:
            log.warning("payloads are not encrypted: set payloads.encryption_keys")
        storage = PayloadStorage(settings)
        converter = _DataConverter(
            payload_converter_class=payload_converter_class(settings),
            payload_codec=codec,
            failure_converter_class=(DefaultFailureConverterWithEncodedAttributes if codec
                                     else DefaultFailureConverter),
            external_storage=storage.external,
        )
        pipeline = _PIPELINES[fingerprint] = PayloadPipeline(converter, codec, storage)
    return pipeline


def data_converter(settings: Settings) -> DataConverter:
    """The data converter every client and worker of these settings uses."""
    return payload_pipeline(settings).converter


async def close_payload_storage() -> None:
    """Release the storage drivers' connections (they reopen on next use): at shutdown."""
    for pipeline in list(_PIPELINES.values()):
        await pipeline.storage.aclose()


def _fingerprint(settings: Settings) -> str:
    """What shapes the converter, hashed (it holds keys: never logged)."""
    p = settings.payloads
    shape = {
        "payloads": p.model_dump(mode="json", exclude={"encryption_keys"}),
        "keys": {k: v.get_secret_value() for k, v in p.encryption_keys.items()},
        "secret": p.s3_secret_access_key.get_secret_value() if p.s3_secret_access_key else None,
        "database": settings.database.url, "environment": settings.environment,
        "limit": settings.max_payload_bytes,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


async def connect(settings: Settings, namespace: str, *, own: bool = False) -> Client:
    """A client for one environment's namespace: a local worker's when there is one, unless
    ``own`` (a worker always has its own)."""
    address = settings.temporal.address
    shared = None if own else _WORKER_CLIENTS.get((address, namespace))
    if shared is not None:
        return shared
    return await Client.connect(address, namespace=namespace, tls=tls_config(settings),
                                data_converter=data_converter(settings),
                                runtime=sdk_runtime(settings.metrics.temporal_sdk_port),
                                interceptors=tracing_interceptors())


def tracing_interceptors() -> list[Any]:
    """The SDK's OpenTelemetry interceptor when tracing is on (README: Traces); a worker
    built on the client takes it too. Off: none, at no cost."""
    tracer = tracing.tracer()
    if tracer is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor
    return [TracingInterceptor(tracer)]


_RUNTIMES: dict[int, Runtime] = {}


def sdk_runtime(port: int | None) -> Runtime | None:
    """The SDK runtime that serves the Temporal SDK's own metrics (task slots, poll latency,
    workflow task and activity counts) on ``port``, one per process; None: the default."""
    if port is None:
        return None
    if port not in _RUNTIMES:
        _RUNTIMES[port] = Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"0.0.0.0:{port}")))
    return _RUNTIMES[port]


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The SDK's TLS settings from ``temporal.tls`` (False: plaintext, the dev server's way).

    Files are read at each connect, so a renewed certificate is picked up by the next client."""
    tls = settings.temporal.tls
    if not tls.enabled:
        return False

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    return TLSConfig(server_root_ca_cert=read(tls.server_ca_cert), domain=tls.server_name,
                     client_cert=read(tls.client_cert), client_private_key=read(tls.client_key))


def share_worker_client(address: str, client: Client) -> None:
    """Offer a running worker's client to this process's starters."""
    _WORKER_CLIENTS[(address, client.namespace)] = client


def withdraw_worker_client(address: str, client: Client) -> None:
    """The worker stops: later starters connect on their own."""
    if _WORKER_CLIENTS.get((address, client.namespace)) is client:
        del _WORKER_CLIENTS[(address, client.namespace)]


def payloads_banner(settings: Settings) -> str:
    """How payloads reach Temporal, for the dev banner (key ids only, never keys)."""
    ring = key_ring(settings)
    p = settings.payloads
    sealed = (f"encrypted (key {ring.active.key_id}" + (f", file {p.key_file}" if p.key_file
                                                       else "") + ")") if ring else "readable"
    kept = "all in history" if p.storage == "none" else (
        f"over {p.storage_threshold_bytes // 1024} KiB kept in {p.storage}")
    return f"{sealed}; {kept}; codec at /codec"
