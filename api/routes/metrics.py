"""`GET /metrics`: the process's Prometheus metrics (runs, steps, model calls by the GenAI
conventions), open to localhost and to API keys, or to anyone with ``metrics.public``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.errors import ApiError

router = APIRouter(tags=["metrics"])
LOCAL = frozenset({"127.0.0.1", "::1"})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                             "description": "Prometheus text format"}})
async def metrics(request: Request, state: StateDep) -> Response:
    """Counters and histograms in Prometheus text format."""
    client = request.client.host if request.client else ""
    if not state.settings.metrics.public and client not in LOCAL:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or await state.keys.verify(token.strip()) is None:
            raise ApiError(401, "unauthorized", "metrics need an API key from outside "
                           "localhost ('Authorization: Bearer <key>'), or metrics.public")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
