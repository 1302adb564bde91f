"""OpenTelemetry traces (README: Traces): on when a standard ``OTEL_EXPORTER_OTLP_*``
endpoint is set, off (no interceptor at all) otherwise.

The provider is never installed as the global one: the SDK allows that once per process,
and the tests give each service a provider of its own (``configure(provider)``).
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_provider: TracerProvider | None = None
_configured = False


def enabled_by_env() -> bool:
    """Whether an OTLP traces endpoint is set."""
    return any(os.environ.get(v) for v in _ENDPOINT_VARS)


def provider_from_env() -> TracerProvider | None:
    """A provider exporting over OTLP as the ``OTEL_*`` variables say (protocol
    ``http/protobuf``, the default, or ``grpc`` when its exporter is installed); None when
    no endpoint is set."""
    if not enabled_by_env():
        return None
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter as GrpcExporter,
        )
        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "promptpilot")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure(provider: TracerProvider | None) -> None:
    """Use ``provider`` for the clients and workers made from now on (None: tracing off)."""
    global _provider, _configured
    _provider, _configured = provider, True


def provider() -> TracerProvider | None:
    """This process's provider: the configured one, else the environment's (once)."""
    global _provider, _configured
    if not _configured:
        configure(provider_from_env())
    return _provider


def tracer() -> Tracer | None:
    """The tracer of our spans, or None when tracing is off."""
    p = provider()
    return p.get_tracer("promptpilot") if p is not None else None
