"""Trigger activities: resolve a triggered start, and fire event triggers when a run ends.

Event triggers fire from the run's terminal mirror write (`mirror_run` is wrapped here), the
moment the run's final state is in Postgres. Each start uses a workflow id derived from the
source run id and the trigger id, so a retried mirror write never starts the target twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import jmespath
from jmespath.exceptions import JMESPathError
from sqlalchemy.exc import DBAPIError
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities import metrics
from activities.expected_failures import log_failed_run
from activities.mirror import MirrorActivities
from definition.inputs import validate_input
from definition.validation import DefinitionInvalid
from payloads.size_guard import run_limits
from promptpilot.settings import Settings
from schema.definition import WorkflowDefinition
from schema.run import (
    TERMINAL_RUN_STATUSES,
    RunLimits,
    RunRecord,
    RunWorkflowInput,
    StepError,
)
from schema.triggers import EventConfig, ResolveStart, TriggeredStart
from schema.workflow_names import TRIGGERED_START_WORKFLOW
from store.columns import utcnow
from store.references import References
from store.runs import Store
from store.trigger_tables import TriggerRow
from store.triggers import TriggerStore, VersionUnavailable

log = logging.getLogger("promptpilot.triggers")
EVENT_NAMESPACE = uuid.UUID("0c8d54b1-3bd4-4c55-9a7e-4f5e7f6f2a90")


def event_launcher_id(source_run_id: str, trigger_id: str) -> str:
    """The launcher workflow id of one event firing: one per (source run, trigger)."""
    return f"pp-event-{uuid.uuid5(EVENT_NAMESPACE, f'{source_run_id}:{trigger_id}')}"


def event_scope(record: RunRecord) -> dict[str, Any]:
    """What an event trigger's filter and inputMapping read: `{run, output}`."""
    run = record.model_dump(mode="json", by_alias=True, exclude={"output"})
    run["id"] = record.run_id
    return {"run": run, "output": record.output}


def event_input(trigger: TriggerRow, config: EventConfig,
                record: RunRecord) -> dict[str, Any] | None:
    """The target's input when the trigger matches this run, else None."""
    if record.status not in config.on_status:
        return None
    scope = event_scope(record)
    if config.filter and not jmespath.search(config.filter, scope):
        return None
    mapped = {name: jmespath.search(expr, scope) for name, expr in config.input_mapping.items()}
    return {**(trigger.input_json or {}), **mapped}


class TriggerActivities:
    """Needs the store and, for event triggers, a client of the worker's namespace."""

    def __init__(self, store: Store, mirror: MirrorActivities, client: Client | None,
                 settings: Settings | None = None) -> None:
        self._triggers = TriggerStore(store.engine, raw=store.raw)
        self._store = store
        self._mirror = mirror
        self._client = client
        self._settings = settings

    @activity.defn(name="resolve_triggered_start")
    async def resolve_triggered_start(self, request: ResolveStart) -> RunWorkflowInput:
        """Load the trigger and the version its policy names now; validate the input."""
        start = request.start
        trigger = await self._triggers.get(uuid.UUID(start.trigger_id))
        if trigger is None or trigger.environment != start.environment:
            raise ApplicationError("the trigger no longer exists", type="trigger_not_found",
                                   non_retryable=True)
        if not trigger.enabled:
            raise ApplicationError("the trigger is disabled", type="trigger_disabled",
                                   non_retryable=True)
        data = start.input if start.input is not None else trigger.input_json or {}
        try:
            workflow, version = await self._triggers.resolve_version(trigger)
        except VersionUnavailable as exc:
            raise await self._cannot_start(request, trigger, data, "version_not_found",
                                           str(exc)) from None
        definition = WorkflowDefinition.model_validate(version.definition)
        try:
            run_input = validate_input(definition, data)
            definition, children = await References(self._store, trigger.environment).resolve(
                definition)
        except DefinitionInvalid as exc:
            detail = "; ".join(f"{p.pointer}: {p.message}" for p in exc.problems)
            raise await self._cannot_start(request, trigger, data, "input_invalid",
                                           f"{exc}: {detail}", version.version) from None
        activity.logger.info("trigger %s resolved %s v%s", trigger.id, workflow.slug,
                             version.version)
        return RunWorkflowInput(
            run_id=request.run_id, environment=trigger.environment,
            workflow_id=str(workflow.id), workflow_slug=workflow.slug,
            workflow_version=version.version, definition=definition, input=run_input,
            trigger=start.trigger, trigger_id=str(trigger.id),
            max_cost_usd=definition.max_cost_usd, children=children,
            limits=run_limits(self._settings) if self._settings else RunLimits(),
        )

    async def _cannot_start(self, request: ResolveStart, trigger: TriggerRow,
                            data: dict[str, Any], kind: str, message: str,
                            version: int | None = None) -> ApplicationError:
        """Record a fire that cannot start as a failed run of the trigger (so it shows in
        the runs list and the trigger's metrics, not only in the Temporal UI); the error
        that fails the launcher."""
        workflow = await self._store.get_workflow_by_id(trigger.workflow_id)
        if workflow is not None:
            now = utcnow()
            number = version or (trigger.pinned_version if trigger.version_policy == "pinned"
                                 else None) or workflow.current_version
            record = RunRecord(
                run_id=request.run_id, environment=trigger.environment,
                workflow_id=str(workflow.id), workflow_version=number, status="failed",
                input=data, error=StepError(type=kind, message=f"the run could not start: "
                                                              f"{message}"),
                trigger=request.start.trigger, trigger_id=str(trigger.id),
                source_run_id=request.start.source_run_id, started_at=now, finished_at=now)
            log_failed_run(record)
            try:
                await self._store.upsert_run(record)
            except (DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
                    ValueError, OverflowError) as exc:
                log.warning("trigger %s: the failed start was not recorded: %s", trigger.id,
                            exc)
        return ApplicationError(message, type=kind, non_retryable=True)

    @activity.defn(name="mirror_run")
    async def mirror_run(self, record: RunRecord) -> None:
        """The mirror's run upsert, then event triggers when the run has ended."""
        await self._mirror.mirror_run(record)
        if record.status in TERMINAL_RUN_STATUSES:
            metrics.run_finished(record, record.workflow_slug or record.workflow_id)
            await self._fire_events(record)
            # After the events: a write retried because an event start failed logs once.
            log_failed_run(record)

    async def _fire_events(self, record: RunRecord) -> None:
        if self._client is None:
            return
        for trigger in await self._triggers.event_triggers(record.environment,
                                                           record.workflow_id):
            try:
                config = EventConfig.model_validate(trigger.config)
                data = event_input(trigger, config, record)
            except (JMESPathError, ValueError) as exc:
                log.warning("event trigger %s skipped: %s", trigger.id, exc)
                continue
            if data is None:
                continue
            start = TriggeredStart(trigger_id=str(trigger.id), environment=trigger.environment,
                                   trigger="event", input=data, source_run_id=record.run_id)
            try:
                await self._client.start_workflow(
                    TRIGGERED_START_WORKFLOW, start,
                    id=event_launcher_id(record.run_id, str(trigger.id)),
                    task_queue=activity.info().task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"event trigger '{trigger.name}' from run {record.run_id}",
                )
            except WorkflowAlreadyStartedError:
                continue  # a retried mirror write: this firing already happened
            except ApplicationError as exc:  # its input is over the payload limit
                log.warning("event trigger %s skipped: %s", trigger.id, exc.message)
                continue
            except RPCError:
                raise  # transient: the mirror write retries and the id keeps it single
            log.info("event trigger %s started from run %s", trigger.id, record.run_id)
