"""The app factory: routes, error handlers and the lifespan that owns the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import errors, openapi
from api.request_limits import RequestLimits
from api.routes import (
    approvals,
    codec,
    evaluations,
    events,
    health,
    keys,
    metrics,
    preview,
    prompts,
    run_actions,
    runs,
    schedules,
    tools,
    triggers,
    usage,
    versions,
    webhooks,
    workflows,
)
from api.schedule_repair import repairing_schedules
from api.security_headers import SecurityHeaders
from api.start_dispatcher import StartDispatcher
from api.state import AppState
from api.ui import routes as ui
from promptpilot.settings import Settings
from store.database import make_engine
from store.keys import ApiKeys
from store.run_starts import RunStarts
from store.runs import Store


def create_app(settings: Settings, database_url: str | None = None) -> FastAPI:
    """Build the API; `database_url` overrides settings (the dev stack's embedded Postgres)."""
    url = database_url or settings.database.url
    if not url:
        raise ValueError("no database: set DATABASE_URL or run `promptpilot dev`")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(url, settings.database.pool_size)
        state = AppState(settings=settings, store=Store(engine), keys=ApiKeys(engine))
        app.state.services = state
        app.state.run_events = state.run_events
        # Runs are recorded here and started in Temporal by this dispatcher, off the request.
        state.starts = StartDispatcher(RunStarts(engine), state.temporal,
                                       settings.temporal.task_queue, settings.dispatch)
        try:
            async with state.starts, repairing_schedules(state):
                yield
        finally:
            await events.close_hub(app.state)
            await engine.dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN; these serve the installed
    # package's copies (under /static-offline-docs), so the docs work with no network.
    app = FastAPIOffline(
        title="PromptPilot",
        version="0.1.0",
        description="Durable multi-step LLM workflows on Temporal, mirrored into Postgres.",
        lifespan=lifespan,
        # No validator badge: Swagger UI would fetch it from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    errors.install(app)
    openapi.install(app)
    app.add_middleware(RequestLimits, limits=settings.limits)
    app.add_middleware(SecurityHeaders)  # outside RequestLimits: its refusals get them too
    # Run routes go first: `/api/workflows/runs/{id}` must not be read as a slug.
    app.include_router(runs.router)
    app.include_router(run_actions.router)
    app.include_router(approvals.router)
    app.include_router(events.router)
    # `/api/workflows/preview` and `/{slug}/versions/diff` before the `/{slug}` routes.
    app.include_router(preview.router)
    app.include_router(evaluations.router)
    app.include_router(versions.router)
    app.include_router(workflows.router)
    app.include_router(triggers.router)
    app.include_router(schedules.router)
    app.include_router(webhooks.router)
    app.include_router(tools.router)
    app.include_router(usage.router)
    app.include_router(keys.router)
    app.include_router(prompts.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(codec.router)  # Temporal's codec-server endpoints at /codec
    ui.install(app)  # the web inspector at /ui
    return app
