"""The benchmark's hand-written baseline activity: one regular ``transform`` per step."""

from __future__ import annotations

from temporalio import activity

from activities.transform import evaluate
from schema.activities import TransformRequest, TransformResult


@activity.defn(name="transform")
async def transform(request: TransformRequest) -> TransformResult:
    """Evaluate the step's expression over its input, as the interpreter's transform does,
    but as a regular activity (the hand-written workflow's baseline)."""
    return TransformResult(output=evaluate(request), attempt=activity.info().attempt)
