"""`GET /api/tools`: the registered tools and their argument schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from activities.tools.registry import tool_catalog
from api.deps import CurrentKey

router = APIRouter(prefix="/api/tools", tags=["tools"])


@router.get("")
async def list_tools(_: CurrentKey) -> dict[str, Any]:
    """Every tool a `tool` step may name."""
    return {"success": True, "tools": tool_catalog()}
