"""Trigger helpers for the routes: config checks per type, schedules, and the public shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, not_found
from api.presenters import as_object
from api.schedules import Schedules, build_schedule, config_problems, next_fire_times
from api.state import AppState
from api.stored_definitions import definition_of
from api.workflow_lookup import find_workflow
from definition.expressions import compile_expression
from definition.inputs import validate_input
from definition.validation import DefinitionInvalid, problems_from_pydantic
from schema.problems import Problem, pointer
from schema.triggers import (
    EventConfig,
    RunSummary,
    ScheduleConfig,
    ScheduleState,
    TriggerMetrics,
    TriggerPublic,
)
from store.tables import WorkflowRow, WorkflowVersionRow
from store.trigger_tables import TriggerRow
from store.triggers import TriggerStore, VersionUnavailable


def triggers(state: AppState) -> TriggerStore:
    """The trigger store over the app's engine."""
    return TriggerStore(state.store.engine, state.secret_box)


async def schedules(state: AppState, environment: str) -> Schedules:
    """Schedule operations in the environment's namespace."""
    return Schedules(await state.temporal(environment))


async def load_trigger(state: AppState, environment: str, trigger_id: uuid.UUID) -> TriggerRow:
    """A trigger of the caller's environment, or a 404 (other environments are invisible)."""
    row = await triggers(state).get_in(environment, trigger_id)
    if row is None:
        raise not_found(f"trigger '{trigger_id}'")
    return row


def _invalid(problems: list[Problem]) -> DefinitionInvalid:
    return DefinitionInvalid(problems, "invalid trigger")


async def checked_config(state: AppState, environment: str, kind: str,
                         raw: dict[str, Any]) -> dict[str, Any]:
    """The config for a trigger type, normalised; 422 listing every problem."""
    if kind == "scheduled":
        try:
            config = ScheduleConfig.model_validate(raw, strict=True)
        except ValidationError as exc:
            raise _invalid(problems_from_pydantic(exc, raw, ("config",))) from None
        if problems := config_problems(config):
            raise _invalid(problems)
        return config.model_dump(mode="json")
    if kind == "event":
        try:
            event = EventConfig.model_validate(raw, strict=True)
        except ValidationError as exc:
            raise _invalid(problems_from_pydantic(exc, raw, ("config",))) from None
        problems = []
        expressions = [("filter", event.filter)] if event.filter else []
        expressions += [(f"inputMapping/{k}", v) for k, v in event.input_mapping.items()]
        for where, expr in expressions:
            if problem := compile_expression(expr):
                problems.append(Problem(pointer=f"/config/{where}", field=where.split("/")[-1],
                                        message=f"invalid JMESPath expression: {problem}"))
        source = await find_workflow(state, environment, event.source_workflow_slug)
        if source is None:
            problems.append(Problem(pointer=pointer("config", "sourceWorkflowSlug"),
                                    field="sourceWorkflowSlug", message=f"workflow "
                                    f"'{event.source_workflow_slug}' not found"))
        if problems:
            raise _invalid(problems)
        assert source is not None
        return {**event.model_dump(mode="json"), "sourceWorkflowSlug": source.slug,
                "sourceWorkflowId": str(source.id)}
    return raw


async def checked_version(state: AppState, row: TriggerRow, workflow: WorkflowRow,
                          check_input: bool) -> WorkflowVersionRow:
    """The version the trigger's policy names exists; its stored input fits (when static)."""
    try:
        _, version = await triggers(state).resolve_version(row)
    except VersionUnavailable as exc:
        raise _invalid([Problem(pointer=pointer("pinnedVersion"), field="pinnedVersion",
                                message=str(exc))]) from None
    if check_input:
        definition = definition_of(version)
        validate_input(definition, row.input_json or {})
    return version


def stored_schedule(row: TriggerRow) -> ScheduleConfig:
    """A scheduled trigger's stored config; 409 ``trigger_config_unreadable`` when it no
    longer reads (written before a change to what a config may hold)."""
    try:
        return ScheduleConfig.model_validate(row.config)
    except ValidationError as exc:
        raise ApiError(409, "trigger_config_unreadable",
                       f"the stored config of trigger '{row.id}' no longer reads as a schedule:"
                       " send a new one (PUT /api/triggers/{id} with config)",
                       problems_from_pydantic(exc, row.config, ("config",))) from None


def schedule_of(row: TriggerRow, state: AppState, slug: str, *,
                paused: bool | None = None) -> Any:
    """The Temporal Schedule for a scheduled trigger row of the workflow `slug`."""
    return build_schedule(str(row.id), row.environment, stored_schedule(row),
                          task_queue=state.settings.temporal.task_queue,
                          paused=not row.enabled if paused is None else paused,
                          note=None if row.enabled else "trigger disabled",
                          summary=f"schedule '{row.name}' of {slug}")


async def restore_schedule(state: AppState, row: TriggerRow) -> None:
    """Make a scheduled trigger's schedule again from its row, when Temporal has none
    (deleted in the Temporal UI, or a create cut short): the row is what the user set."""
    workflow = await state.store.get_workflow_by_id(row.workflow_id)
    slug = workflow.slug if workflow is not None else str(row.workflow_id)
    await (await schedules(state, row.environment)).restore(schedule_of(row, state, slug),
                                                            str(row.id))


async def schedule_state(state: AppState, row: TriggerRow, count: int) -> ScheduleState:
    """Temporal's view of the schedule and its next fire times.

    The times are the server's own (``next_action_times``, jitter applied) when it lists
    enough of them; else (no schedule yet, paused, or more asked for than it lists) the
    preview computed from the stored config, which matches the server's (tests compare
    them on the dev server, daylight-saving changes included).
    """
    result = ScheduleState(schedule_id=f"pp-trigger-{row.id}")
    try:
        config = ScheduleConfig.model_validate(row.config)
    except ValidationError:
        config = None  # a stored config that no longer reads: Temporal's view still shows
    if config is not None:
        result.next_fire_times = next_fire_times(config, datetime.now(UTC), count)
    try:
        described = await (await schedules(state, row.environment)).handle(str(row.id)).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise ApiError(503, "temporal_unavailable", f"could not read the schedule: {exc}") \
                from exc
        result.exists = False
        return result
    result.exists = True
    result.paused = described.schedule.state.paused
    result.note = described.schedule.state.note
    result.temporal_next_action_times = list(described.info.next_action_times[:count])
    if len(result.temporal_next_action_times) >= count:
        result.next_fire_times = result.temporal_next_action_times
    result.recent_action_count = described.info.num_actions
    return result


async def metrics_of(state: AppState, row: TriggerRow, last: int) -> TriggerMetrics:
    """Counts by status and the last runs with their durations."""
    raw = await triggers(state).metrics(row, last)
    runs = [RunSummary(id=str(r.id), status=r.status, trigger=r.trigger,
                       started_at=r.started_at, finished_at=r.finished_at,
                       duration_ms=(r.finished_at - r.started_at).total_seconds() * 1000
                       if r.started_at and r.finished_at else None)
            for r in raw["last_runs"]]
    return TriggerMetrics(total=raw["total"], by_status=raw["by_status"], last_runs=runs)


def trigger_public(row: TriggerRow, slug: str | None, **extra: Any) -> TriggerPublic:
    """A trigger row as the API shows it (never its secrets: they come via `extra` once)."""
    return TriggerPublic(
        id=str(row.id), workflow_id=str(row.workflow_id), workflow_slug=slug,
        environment=row.environment, name=row.name, type=row.type,
        enabled=row.enabled, config=as_object(row.config) or {}, input=as_object(row.input_json),
        version_policy=row.version_policy,
        pinned_version=row.pinned_version, created_at=row.created_at,
        updated_at=row.updated_at,
        webhook_url=f"/api/webhooks/{row.id}" if row.type == "webhook" else None, **extra,
    )
