"""What Temporal says about a run, in the words the mirror records.

A run's workflow id is its run id. ``temporal_view`` describes the latest execution of that
id; a closed one costs one more call for its close event alone (not its history), a stalled
one a short read from the end of its history for the last workflow task failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from schema.errors import ErrorType
from schema.run import RunResult, RunStatus, StepError

REPORTED_PROBLEMS = SearchAttributeKey.for_keyword_list("TemporalReportedProblems")
"""Set by the server (1.28+) while a run's workflow task keeps failing or timing out."""
CANCEL_REASON_PREFIX = "cancelled by "
"""A termination whose reason starts so is a cancel that outlived its grace period."""
STALLED_ATTEMPTS = 3
"""Where the server has no reported-problems attribute: the attempt that counts as stalled."""
_MESSAGE_CHARS = 2000

# For each way Temporal closes a run: the mirror statuses that already agree with it (the
# interpreter's own failure is kept when the run was then terminated or timed out).
AGREEING: dict[WorkflowExecutionStatus, frozenset[str]] = {
    WorkflowExecutionStatus.COMPLETED: frozenset({"completed"}),
    WorkflowExecutionStatus.FAILED: frozenset({"failed"}),
    WorkflowExecutionStatus.CANCELED: frozenset({"cancelled"}),
    WorkflowExecutionStatus.TERMINATED: frozenset({"failed", "cancelled"}),
    WorkflowExecutionStatus.TIMED_OUT: frozenset({"failed"}),
}


@dataclass(frozen=True)
class TemporalView:
    """One run as Temporal sees it, and what the mirror should say."""

    status: RunStatus
    temporal_status: WorkflowExecutionStatus | None = None
    """None: Temporal has no such workflow."""
    error: StepError | None = None
    result: RunResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def agrees(self, mirror_status: str) -> bool:
        """Whether a mirror row in ``mirror_status`` already tells this truth."""
        if self.status == "running":
            return mirror_status in ("pending", "running")
        if self.status == "stalled":
            return mirror_status == "stalled"
        agreeing = AGREEING.get(self.temporal_status) if self.temporal_status else None
        return mirror_status in (agreeing or {self.status})


async def temporal_view(client: Client, run_id: str) -> TemporalView | None:
    """The latest execution of a run's workflow id; None when Temporal has none."""
    try:
        description = await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    status = description.status or WorkflowExecutionStatus.RUNNING
    started = description.start_time
    if status == WorkflowExecutionStatus.RUNNING:
        if not is_stalled(description):
            return TemporalView("running", status, started_at=started)
        return TemporalView("stalled", status, error=await task_failure(client, description),
                            started_at=started)
    event = await close_event(client, run_id, description.run_id)
    closed, error, result = await _closed(client, description, status, event)
    return TemporalView(closed, status, error=error, result=result, started_at=started,
                        finished_at=description.close_time)


async def _closed(client: Client, description: WorkflowExecutionDescription,
                  status: WorkflowExecutionStatus, event: HistoryEvent
                  ) -> tuple[RunStatus, StepError | None, RunResult | None]:
    """A closed run's mirror status, error and (completed) result, from its close event."""
    if status == WorkflowExecutionStatus.COMPLETED:
        return "completed", None, await _result(client, event)
    if status == WorkflowExecutionStatus.TERMINATED:
        attributes = event.workflow_execution_terminated_event_attributes
        reason, identity = attributes.reason, attributes.identity
        if reason.startswith(CANCEL_REASON_PREFIX):
            return "cancelled", _error(ErrorType.CANCELLED, reason), None
        message = f"terminated by {identity or 'an unknown client'}: {reason or 'no reason given'}"
        return "failed", _error(ErrorType.TERMINATED, message, {
            "identity": identity, "reason": reason}), None
    if status == WorkflowExecutionStatus.TIMED_OUT:
        return "failed", _timed_out(description), None
    if status == WorkflowExecutionStatus.CANCELED:
        return "cancelled", _error(ErrorType.CANCELLED,
                                   "the run was cancelled through Temporal"), None
    return "failed", await _failure(client, event), None


def is_stalled(description: WorkflowExecutionDescription) -> bool:
    """A running run whose workflow task keeps failing (or timing out)."""
    if description.typed_search_attributes.get(REPORTED_PROBLEMS):
        return True
    pending = description.raw_description.pending_workflow_task
    return pending.attempt >= STALLED_ATTEMPTS


async def close_event(client: Client, workflow_id: str, run_id: str | None) -> HistoryEvent:
    """The event that closed an execution, read alone."""
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id or ""),
            history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
        ))
    return response.history.events[-1] if response.history.events else HistoryEvent()


async def task_failure(client: Client, description: WorkflowExecutionDescription) -> StepError:
    """Why the workflow task keeps failing: the last failure recorded near the history's end
    (after its first failure, a task's retries are not written to history)."""
    attempt = description.raw_description.pending_workflow_task.attempt
    problems = description.typed_search_attributes.get(REPORTED_PROBLEMS) or []
    details: dict[str, Any] = {"attempt": attempt, "problems": list(problems)}
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace, maximum_page_size=50,
            execution=WorkflowExecution(workflow_id=description.id,
                                        run_id=description.run_id)))
    message = "its workflow task keeps failing; the Temporal UI shows why"
    for event in response.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attributes = event.workflow_task_failed_event_attributes
            details["cause"] = WorkflowTaskFailedCause.Name(attributes.cause)
            message = await _message(client, attributes.failure) or details["cause"]
            break
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            message = "its workflow task keeps timing out (a worker that hangs or crashes)"
            break
    return _error(ErrorType.WORKFLOW_TASK_FAILED,
                  f"stalled: Temporal retries its workflow task (attempt {attempt}): {message}",
                  details)


async def _result(client: Client, event: HistoryEvent) -> RunResult | None:
    payloads = event.workflow_execution_completed_event_attributes.result.payloads
    if not payloads:
        return None
    try:
        decoded = await client.data_converter.decode(payloads, [RunResult])
    except Exception:  # a result of another shape: the status alone is still the truth
        return None
    result = decoded[0]
    return result if isinstance(result, RunResult) else None


async def _failure(client: Client, event: HistoryEvent) -> StepError:
    failure = event.workflow_execution_failed_event_attributes.failure
    kind = failure.application_failure_info.type or ErrorType.WORKFLOW_FAILED
    message = await _message(client, failure) or "the run failed in Temporal"
    return _error(kind, message)


async def _message(client: Client, failure: Failure) -> str:
    """A failure's message through the converter, so an encoded one (the payload codec
    encrypts failure messages) reads as written."""
    try:
        return str(await client.data_converter.decode_failure(failure))
    except Exception:  # a key no longer in the ring: what the event itself says
        return failure.message


def _timed_out(description: WorkflowExecutionDescription) -> StepError:
    config = description.raw_description.execution_config
    limit = config.workflow_execution_timeout.ToTimedelta().total_seconds() \
        or config.workflow_run_timeout.ToTimedelta().total_seconds()
    what = f"its execution timeout of {limit:g} s" if limit else "its execution timeout"
    return _error(ErrorType.RUN_TIMED_OUT, f"the run was ended by Temporal: it exceeded {what}",
                  {"timeoutSeconds": limit or None})


def _error(kind: str, message: str, details: dict[str, Any] | None = None) -> StepError:
    return StepError(type=kind, message=message[:_MESSAGE_CHARS], details=details)
