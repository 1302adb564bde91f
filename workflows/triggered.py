"""The triggered start: what a Schedule (or an event trigger) starts instead of a definition.

It resolves the trigger's workflow version by policy in an activity at fire time, so the
definition enters history deterministically and a schedule never runs a stale copy, then
runs the interpreter as a child whose workflow id is the run id. Waiting for the child keeps
the schedule's overlap policy about real runs.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from schema.run import RunResult, RunWorkflowInput
    from schema.run_labels import run_details, run_summary
    from schema.search_attributes import SA_ENVIRONMENT, SA_SLUG, SA_TRIGGER, SA_VERSION
    from schema.triggers import ResolveStart, TriggeredStart

from schema.workflow_names import TRIGGERED_START_WORKFLOW, WORKFLOW_NAME

RUN_ID_NAMESPACE = uuid.UUID("5f0b7e52-4d0e-4a53-9a43-3f1f4c7f2b11")


def run_id_for(launcher_id: str) -> str:
    """The run id a triggered start uses: stable per launcher workflow id, so never doubled."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, launcher_id))


@workflow.defn(name=TRIGGERED_START_WORKFLOW)
class TriggeredStartWorkflow:
    """Resolve the definition now, then run it as a child workflow."""

    @workflow.run
    async def run(self, start: TriggeredStart) -> RunResult:
        """Start one run for the trigger and return its result."""
        run_id = run_id_for(workflow.info().workflow_id)
        run_input: RunWorkflowInput = await workflow.execute_activity(
            "resolve_triggered_start", ResolveStart(start=start, run_id=run_id),
            result_type=RunWorkflowInput, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
            summary=f"resolve trigger {start.trigger_id}",
        )
        result: RunResult = await workflow.execute_child_workflow(
            WORKFLOW_NAME, run_input, id=run_id, result_type=RunResult,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SLUG, run_input.workflow_slug),
                SearchAttributePair(SA_ENVIRONMENT, run_input.environment),
                SearchAttributePair(SA_TRIGGER, run_input.trigger),
                SearchAttributePair(SA_VERSION, run_input.workflow_version),
            ]),
            static_summary=run_summary(run_input), static_details=run_details(run_input),
        )
        return result
