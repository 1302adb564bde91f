"""Inspector pages for evaluations: a workflow's evaluations, and one evaluation's cases."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import StateDep
from api.routes.evaluations import evaluation_public
from api.ui.views import UiKey, not_found_page, page
from store.evaluations import Evaluations

router = APIRouter(prefix="/ui")


@router.get("/workflows/{slug}/evaluations", response_class=HTMLResponse)
async def evaluations_page(slug: str, request: Request, state: StateDep,
                           key: UiKey) -> HTMLResponse:
    """The workflow's evaluations, newest first, with their status and pass rate."""
    workflow = await state.store.get_workflow(key.environment, slug)
    if workflow is None:
        return not_found_page(request, key, f"workflow '{slug}'")
    rows = await Evaluations(state.store.engine).list_for_workflow(key.environment, workflow.id)
    return page(request, "evaluations.html", key, title=f"Evaluations of {slug}",
                nav="workflows", workflow=workflow,
                evaluations=[evaluation_public(r) for r in rows])


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
async def evaluation_page(evaluation_id: str, request: Request, state: StateDep,
                          key: UiKey) -> HTMLResponse:
    """One evaluation: summary (pass rate, cost delta, regressions) and every case."""
    try:
        ident = uuid.UUID(evaluation_id)
    except ValueError:
        return not_found_page(request, key, f"evaluation '{evaluation_id}'")
    row = await Evaluations(state.store.engine).get(key.environment, ident)
    if row is None:
        return not_found_page(request, key, f"evaluation '{evaluation_id}'")
    workflow = await state.store.get_workflow_by_id(row.workflow_id)
    return page(request, "evaluation.html", key, title=f"Evaluation {str(row.id)[:8]}",
                nav="workflows", workflow=workflow, evaluation=evaluation_public(row),
                live=row.status == "running")
