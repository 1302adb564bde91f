"""Two runs compared step by step, from their mirror rows: what a prompt change did to the
outputs, tokens, cost and latency (`GET /api/workflows/runs/{runId}/diff`)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from definition.diff import json_changes
from schema.run_diff import RunDiff, StepDiff
from store.tables import RunRow, StepRow


def _prompt(rendered: dict[str, Any] | None) -> list[str]:
    if not rendered or ("user" not in rendered and "system" not in rendered):
        return []
    lines = [f"system: {line}" for line in str(rendered.get("system") or "").splitlines()]
    return lines + [f"user: {line}" for line in str(rendered.get("user") or "").splitlines()]


def _prompt_diff(step_id: str, run: StepRow | None, against: StepRow | None) -> str | None:
    if "reused" in (run and run.status, against and against.status):
        return None  # a reused step ran with its source's prompt (its row keeps none)
    new = _prompt(run.rendered if run else None)
    old = _prompt(against.rendered if against else None)
    if new == old:
        return None
    return "\n".join(difflib.unified_diff(old, new, f"against/{step_id}", f"run/{step_id}",
                                          lineterm=""))


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else round(new - old, 10)


def step_diff(step_id: str, run: StepRow | None, against: StepRow | None) -> StepDiff:
    """One step on both sides (either may be missing: a step added or removed)."""
    output_changes = json_changes(against.output_json if against else None,
                                  run.output_json if run else None, step_id)
    diff = StepDiff(
        step_id=step_id, status=run.status if run else None,
        against_status=against.status if against else None,
        prompt_diff=_prompt_diff(step_id, run, against), output_changes=output_changes,
        tokens_in_delta=(run.tokens_in if run else 0) - (against.tokens_in if against else 0),
        tokens_out_delta=(run.tokens_out if run else 0) - (against.tokens_out if against else 0),
        cost_delta=_delta(run.cost if run else 0.0, against.cost if against else 0.0),
        latency_ms_delta=_delta(run.duration_ms if run else None,
                                against.duration_ms if against else None))
    # A step a rerun reused is the step its source completed: not a change.
    same_status = _settled(diff.status) == _settled(diff.against_status)
    diff.changed = bool(not same_status or diff.prompt_diff or diff.output_changes)
    return diff


def _settled(status: str | None) -> str | None:
    return "completed" if status == "reused" else status


def run_diff(run: RunRow, steps: Sequence[StepRow], against: RunRow,
             against_steps: Sequence[StepRow]) -> RunDiff:
    """Every step of either run, in the run's order then the other's extra steps."""
    mine = {s.step_id: s for s in steps}
    theirs = {s.step_id: s for s in against_steps}
    order = [*mine, *(step_id for step_id in theirs if step_id not in mine)]
    diffs = [step_diff(step_id, mine.get(step_id), theirs.get(step_id)) for step_id in order]
    return RunDiff(
        run_id=str(run.id), against_run_id=str(against.id), steps=diffs,
        changed_steps=[d.step_id for d in diffs if d.changed],
        cost_delta=_delta(run.actual_cost, against.actual_cost),
        tokens_in_delta=run.tokens_in - against.tokens_in,
        tokens_out_delta=run.tokens_out - against.tokens_out)
