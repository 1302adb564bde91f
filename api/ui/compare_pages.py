"""Inspector page comparing two runs step by step ("Compare with…"), from the same diff as
`GET /api/workflows/runs/{runId}/diff`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import StateDep
from api.presenters import run_public
from api.run_diff import run_diff
from api.ui.views import UiKey, not_found_page, page

router = APIRouter(prefix="/ui")
CHOICES = 20


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID((value or "").strip())
    except ValueError:
        return None


@router.get("/runs/{run_id}/compare", response_class=HTMLResponse)
async def compare_page(run_id: str, request: Request, state: StateDep, key: UiKey,
                       against: str | None = None) -> HTMLResponse:
    """This run against another: pick one (recent runs of its workflow, or any run id), then
    see each step's statuses, prompt diff, output changes and token, cost and latency deltas."""
    ident = _uuid(run_id)
    found = await state.store.get_run_with_steps(key.environment, ident) if ident else None
    if found is None:
        return not_found_page(request, key, f"run '{run_id}'")
    run, steps = found
    workflow = await state.store.get_workflow_by_id(run.workflow_id)
    slug = workflow.slug if workflow else None
    recent = [r for r in await state.store.list_runs(
        key.environment, workflow_id=run.workflow_id, limit=CHOICES + 1) if r.id != run.id]
    context: dict[str, Any] = {"run": run_public(run, slug=slug), "choices": [
        run_public(r, slug=slug) for r in recent[:CHOICES]], "against": against or ""}
    if against is None:
        return page(request, "compare.html", key, title=f"Compare run {str(run.id)[:8]}",
                    nav="runs", diff=None, other=None, problem=None, **context)
    other_id = _uuid(against)
    other = await state.store.get_run_with_steps(key.environment, other_id) if other_id \
        else None
    if other is None:
        return page(request, "compare.html", key, status_code=404 if other_id else 422,
                    title=f"Compare run {str(run.id)[:8]}", nav="runs", diff=None, other=None,
                    problem=f"No run '{against}' in this environment" if other_id
                    else f"'{against}' is not a run id", **context)
    diff = run_diff(run, steps, other[0], other[1])
    return page(request, "compare.html", key, title=f"Compare run {str(run.id)[:8]}",
                nav="runs", diff=diff, other=run_public(other[0], slug=slug), problem=None,
                **context)
