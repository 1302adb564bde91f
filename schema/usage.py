"""Bodies of `GET /api/usage`: spend from the mirror, grouped by model, workflow or environment."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schema.base import CamelModel

UsageGroupBy = Literal["model", "workflow", "environment"]


class UsageLine(CamelModel):
    """Spend of one group (or the totals)."""

    key: str
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    calls: int = 0
    unpriced_calls: int = 0
    runs: int = 0


class UsageReport(CamelModel):
    """Spend of the runs created in [since, until) in the key's environment."""

    environment: str
    since: datetime | None = None
    until: datetime | None = None
    group_by: UsageGroupBy
    totals: UsageLine
    groups: list[UsageLine] = Field(default_factory=list)


class UsageEnvelope(CamelModel):
    """`{"success": true, "usage": {...}}`."""

    success: bool = True
    usage: UsageReport
