"""Inspector pages for runs: the filtered list and one run's step timeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import StateDep
from api.errors import ApiError
from api.presenters import readable_definition, run_public, step_public
from api.routes.workflows import _decode_cursor, encode_cursor
from api.ui.queries import step_sources
from api.ui.views import UiKey, not_found_page, page, parse_time
from api.ui.waterfall import waterfall
from schema.api import StepPublic
from schema.run import RunStatus

router = APIRouter(prefix="/ui")
STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
TRIGGERS = ("api", "rerun", "manual", "scheduled", "webhook", "event")
PAGE_SIZE = 50


@dataclass
class StepView:
    """One line of the timeline: the mirrored row (once there is one) and its definition."""

    step_id: str
    index: int
    type: str
    definition: dict[str, Any] | None
    row: StepPublic | None = None
    source_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The mirrored status, or `not started` before the step has a row."""
        return self.row.status if self.row else "not started"

    @property
    def label(self) -> str:
        """The step's name, else its id."""
        name = (self.row.name if self.row else None) or (self.definition or {}).get("name")
        return str(name or self.step_id)

    @property
    def is_llm(self) -> bool:
        """Prompt overrides apply to llm steps."""
        return self.type == "llm"


_SHOWN = {"id", "step_id", "step_index", "name", "type", "status", "input_json", "output_json",
          "rendered", "error", "tokens_in", "tokens_out", "cached_tokens", "cost", "attempts",
          "retry_count", "model", "provider", "tool_trace", "warnings", "attempt_log",
          "reused_from_step_record_id", "started_at", "finished_at", "duration_ms"}


def _extra(row: StepPublic) -> dict[str, Any]:
    """Fields the timeline has no section for (and new ones), shown as JSON."""
    data = row.model_dump(mode="json", by_alias=True, exclude=_SHOWN)
    return {k: v for k, v in data.items() if v not in (None, [], {})}


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request, state: StateDep, key: UiKey,
    status: str | None = None, trigger: str | None = None, workflow: str | None = None,
    since: str | None = None, until: str | None = None, cursor: str | None = None,
) -> HTMLResponse:
    """Runs of every workflow, newest first, filtered by status, trigger, workflow and time."""
    workflows = await state.store.list_workflows(key.environment)
    slugs = {w.id: w.slug for w in workflows}
    workflow_id = next((i for i, s in slugs.items() if s == workflow), None)
    try:
        before = _decode_cursor(cursor) if cursor else None
    except ApiError:  # a mangled cursor starts from the newest again
        before = None
    rows = await state.store.list_runs(
        key.environment, workflow_id=workflow_id,
        status=status if status in STATUSES else None, trigger=trigger or None,
        since=parse_time(since), until=parse_time(until), before=before, limit=PAGE_SIZE)
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if len(rows) == PAGE_SIZE \
        else None
    filters = {"status": status or "", "trigger": trigger or "", "workflow": workflow or "",
               "since": since or "", "until": until or ""}
    return page(request, "runs.html", key, title="Runs", nav="runs",
                runs=[run_public(r, slug=slugs.get(r.workflow_id)) for r in rows],
                workflows=workflows, statuses=STATUSES, triggers=TRIGGERS, filters=filters,
                next_cursor=next_cursor)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(run_id: str, request: Request, state: StateDep,
                   key: UiKey) -> HTMLResponse:
    """One run: summary, its steps as a timeline, live while it runs, rerun from any step."""
    try:
        ident = uuid.UUID(run_id)
    except ValueError:
        return not_found_page(request, key, f"run '{run_id}'")
    run = await state.store.get_run(key.environment, ident)
    if run is None:
        return not_found_page(request, key, f"run '{run_id}'")
    workflow = await state.store.get_workflow_by_id(run.workflow_id)
    version = await state.store.get_version(run.workflow_id, run.workflow_version)
    definition = readable_definition(version.definition if version else {})
    rows = [step_public(r) for r in await state.store.get_steps(run.id)]
    sources = await step_sources(state.store.engine, key.environment, (
        uuid.UUID(r.reused_from_step_record_id) for r in rows if r.reused_from_step_record_id))
    by_id = {r.step_id: r for r in rows}
    views: list[StepView] = []
    for index, raw in enumerate(definition.get("steps") or []):
        step_id = str(raw.get("id", index))
        views.append(StepView(step_id=step_id, index=index, type=str(raw.get("type", "?")),
                              definition=raw, row=by_id.pop(step_id, None)))
    # Rows the definition does not list (nested kinds) still show, in their recorded order.
    views += [StepView(step_id=r.step_id, index=r.step_index, type=r.type, definition=None,
                       row=r) for r in by_id.values()]
    views.sort(key=lambda v: v.row.step_index if v.row else v.index)
    for view in views:
        if view.row:
            view.extra = _extra(view.row)
            if view.row.reused_from_step_record_id:
                source = sources.get(uuid.UUID(view.row.reused_from_step_record_id))
                view.source_run_id = str(source) if source else None
    temporal = state.settings.temporal
    namespace = state.settings.namespace_for(key.environment)
    return page(request, "run.html", key, title=f"Run {str(run.id)[:8]}", nav="runs",
                run=run_public(run, slug=workflow.slug if workflow else None), steps=views,
                waterfall=waterfall(run.started_at, run.finished_at, rows),
                temporal_url=f"{temporal.ui_url.rstrip('/')}/namespaces/{namespace}"
                             f"/workflows/{run.id}")

