"""Inspector pages: sign-in, workflows (definition, versions, diff, preview) and triggers.

Pages read the store directly with the signed-in key's environment; the actions on them
(run, rerun, preview, approve and reject, save a definition, new trigger, pause, trigger now,
live events) are the JSON API's own routes, called by ui.js and actions.js with the session
cookie and the CSRF header (api.ui.session; api.ui.auth lets the API take the session).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.auth_throttle import retry_after_header
from api.deps import StateDep, client_address
from api.errors import ApiError
from api.presenters import readable_definition
from api.trigger_views import schedule_state, triggers
from api.ui import compare_pages, editor_pages, evaluation_pages, run_pages
from api.ui.headers import InspectorHeaders
from api.ui.queries import last_runs
from api.ui.session import (
    CSRF_FORM_FIELD,
    current_session,
    end_session,
    login_form_token,
    login_token,
    set_login_cookie,
    start_session,
    tokens_match,
)
from api.ui.views import (
    HERE,
    LoginRequired,
    UiKey,
    login_redirect,
    not_found_page,
    page,
    safe_next,
)
from definition.diff import diff_definitions
from schema.bounds import VersionNumber
from store.keys import prefix_of
from store.tables import WorkflowRow, WorkflowVersionRow

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("")
async def home() -> RedirectResponse:
    """The inspector starts at the workflow list."""
    return RedirectResponse("/ui/workflows", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, state: StateDep,
                     next: str | None = None) -> Response:
    """The sign-in form (straight on when the session is still good)."""
    if await current_session(request, state) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, state, 200, next, None)


def _login_page(request: Request, state: StateDep, status_code: int, next: str | None,
                error: str | None, headers: dict[str, str] | None = None) -> Response:
    token, fresh = login_form_token(request)
    response = page(request, "login.html", None, status_code=status_code, title="Sign in",
                    next=safe_next(next), error=error, login_csrf=token, headers=headers)
    if fresh:
        set_login_cookie(state, request, response, token)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, state: StateDep, api_key: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "",
                csrf: Annotated[str, Form(alias=CSRF_FORM_FIELD)] = "") -> Response:
    """Check the form's token, the throttle, then the key; on success start a session."""
    if not tokens_match(login_token(request), csrf):
        # Another site posting the form cannot know the pre-session cookie's value.
        return _login_page(request, state, 403, next, "The sign-in form expired or did not "
                           "come from this site: sign in again from this page.")
    key = api_key.strip()
    throttle, client = state.auth_throttle, client_address(request)
    prefix = prefix_of(key) if key else None
    wait = throttle.retry_after(client, prefix)
    row = await state.keys.verify(key) if key and wait is None else None
    if row is None:
        if wait is None:
            throttle.failed(client, prefix)
            wait = throttle.retry_after(client, prefix)
        if wait is not None:
            after = retry_after_header(wait)
            return _login_page(request, state, 429, next, f"Too many failed sign-ins from "
                               f"this address: try again in {after} s.", {"Retry-After": after})
        return _login_page(request, state, 401, next,
                           "That API key is not valid (or was revoked).")
    throttle.succeeded(client, prefix)
    response = RedirectResponse(safe_next(next), status_code=303)
    await start_session(state, request, response, row)
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep,
                 csrf: Annotated[str, Form(alias=CSRF_FORM_FIELD)] = "") -> Response:
    """End the session (the form carries the session's CSRF token)."""
    found = await current_session(request, state)
    if found is not None and not tokens_match(found.csrf_token, csrf):
        return Response("sign-out needs the page's CSRF token", status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    await end_session(state, request, response)
    return response


@router.get("/workflows", response_class=HTMLResponse)
async def workflows_page(request: Request, state: StateDep, key: UiKey) -> HTMLResponse:
    """Every workflow with its last run's status."""
    rows = await state.store.list_workflows(key.environment)
    return page(request, "workflows.html", key, title="Workflows", nav="workflows",
                workflows=rows, last=await last_runs(state.store, key.environment, rows))


async def _workflow(state: StateDep, environment: str, slug: str,
                    version: VersionNumber | None = None
                    ) -> tuple[WorkflowRow, WorkflowVersionRow] | None:
    row = await state.store.get_workflow(environment, slug)
    if row is None:
        return None
    found = await state.store.get_version(row.id, version or row.current_version)
    return (row, found) if found else None


def sample_input(definition: dict[str, Any]) -> dict[str, Any]:
    """An input built from the variables' sample values or defaults (to start editing from)."""
    values = {}
    for variable in definition.get("variables") or []:
        value = variable.get("sampleValue", variable.get("default"))
        values[str(variable.get("name"))] = value
    return values


@router.get("/workflows/{slug}", response_class=HTMLResponse)
async def workflow_page(slug: str, request: Request, state: StateDep, key: UiKey,
                        version: VersionNumber | None = None) -> HTMLResponse:
    """A definition (current, or `?version=`): steps, variables, versions and recent runs."""
    found = await _workflow(state, key.environment, slug, version)
    if found is None:
        return not_found_page(request, key, f"workflow '{slug}'" +
                              (f" version {version}" if version else ""))
    row, shown = found
    versions = await state.store.list_version_stamps(row.id)
    runs = await state.store.list_runs(key.environment, workflow_id=row.id, limit=10)
    return page(request, "workflow.html", key, title=row.name, nav="workflows", workflow=row,
                version=shown, definition=readable_definition(shown.definition),
                versions=versions, runs=runs,
                sample=sample_input(readable_definition(shown.definition)))


@router.get("/workflows/{slug}/diff", response_class=HTMLResponse)
async def diff_page(slug: str, request: Request, state: StateDep, key: UiKey,
                    from_: Annotated[VersionNumber, Query(alias="from")] = 1,
                    to: VersionNumber | None = None) -> HTMLResponse:
    """What changed between two versions (the API's `/versions/diff`, as a page)."""
    new = await _workflow(state, key.environment, slug, to)
    old = await _workflow(state, key.environment, slug, from_)
    if new is None or old is None:
        return not_found_page(request, key, f"those versions of workflow '{slug}'")
    steps, changes = diff_definitions(readable_definition(old[1].definition),
                                      readable_definition(new[1].definition))
    return page(request, "diff.html", key, title=f"{slug}: v{old[1].version} → v{new[1].version}",
                nav="workflows", workflow=new[0], old=old[1], new=new[1], steps=steps,
                changes=changes)


@router.get("/workflows/{slug}/preview", response_class=HTMLResponse)
async def preview_page(slug: str, request: Request, state: StateDep,
                       key: UiKey) -> HTMLResponse:
    """The preview form: sample-data toggle, JSON input checked before sending."""
    found = await _workflow(state, key.environment, slug)
    if found is None:
        return not_found_page(request, key, f"workflow '{slug}'")
    row, version = found
    return page(request, "preview.html", key, title=f"Preview {row.name}", nav="workflows",
                workflow=row, definition=readable_definition(version.definition),
                sample=sample_input(readable_definition(version.definition)))


def schedule_text(config: Any) -> str:
    """A scheduled trigger's cron expressions, intervals and zone, as one line (a stored
    config of another shape shows what it can)."""
    config = config if isinstance(config, dict) else {}
    crons = config.get("cronExpressions")
    parts = [", ".join(map(str, crons))] if isinstance(crons, list) and crons else []
    intervals = config.get("intervals")
    for interval in intervals if isinstance(intervals, list) else []:
        every = interval.get("everySeconds") if isinstance(interval, dict) else None
        if isinstance(every, int | float):
            parts.append(f"every {every:g} s")
    return " ".join([*parts, str(config.get("timezone", "UTC"))])


@router.get("/triggers", response_class=HTMLResponse)
async def triggers_page(request: Request, state: StateDep, key: UiKey) -> HTMLResponse:
    """Triggers with their schedules' state and next fire times; pause, resume, trigger now."""
    rows = await triggers(state).list(key.environment, None)
    slugs = {w.id: w.slug for w in await state.store.list_workflows(key.environment)}
    items = []
    for row in rows:
        schedule, problem = None, None
        if row.type == "scheduled":
            try:
                schedule = await schedule_state(state, row, 3)
            except ApiError as exc:
                problem = exc.message
        items.append({"row": row, "slug": slugs.get(row.workflow_id), "schedule": schedule,
                      "problem": problem, "spec": schedule_text(row.config)})
    return page(request, "triggers.html", key, title="Schedules and triggers", nav="triggers",
                items=items, workflows=sorted(slugs.values()))


def install(app: FastAPI) -> None:
    """Mount the inspector: its pages, static files and the sign-in redirect."""

    async def _to_login(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return login_redirect(exc)

    app.add_exception_handler(LoginRequired, _to_login)
    app.add_middleware(InspectorHeaders)
    app.include_router(editor_pages.router)  # before /ui/workflows/{slug}: it has /new
    app.include_router(router)
    app.include_router(compare_pages.router, include_in_schema=False)
    app.include_router(evaluation_pages.router, include_in_schema=False)
    app.include_router(run_pages.router, include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
