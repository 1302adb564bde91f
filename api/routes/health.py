"""`GET /healthz`: reports Temporal and Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from store.database import ping

router = APIRouter(tags=["health"])


async def _check(coro: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(coro, timeout=3)
    except Exception as exc:  # any failure means "down"; the message says which
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


@router.get("/healthz")
async def healthz(state: StateDep) -> JSONResponse:
    """200 when both answer, else 503 with which one failed."""
    async def temporal() -> None:
        client = await state.temporal(state.settings.environment)
        await client.service_client.check_health()

    postgres, temporal_status = await asyncio.gather(
        _check(ping(state.store.engine)), _check(temporal()))
    ok = postgres["ok"] and temporal_status["ok"]
    return JSONResponse({"ok": ok, "postgres": postgres, "temporal": temporal_status},
                        status_code=200 if ok else 503)
