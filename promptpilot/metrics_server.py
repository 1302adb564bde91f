"""The worker's metrics port: prometheus-client's HTTP server, started once per process."""

from __future__ import annotations

from prometheus_client import start_http_server

_SERVING: set[int] = set()


def serve_metrics(port: int) -> None:
    """Serve this process's metrics on ``port`` (``/metrics``), once however often asked."""
    if port not in _SERVING:
        start_http_server(port)
        _SERVING.add(port)
