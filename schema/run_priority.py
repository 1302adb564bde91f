"""How a run is ordered in its task queue: Temporal's task priority and fairness key.

Priority 1 goes first, 5 last; Temporal's default is 3. Within a priority, runs of different
fairness keys (by default, different workflows) take turns, so one workflow's flood of runs
does not starve another's. Child runs, map batches and every activity inherit their run's.
"""

from __future__ import annotations

from temporalio.common import Priority

from schema.run import RunWorkflowInput

SCHEDULED_PRIORITY = 4
"""Runs a schedule fires (and backfills) yield to runs people start (3 unless they say)."""


def run_priority(run: RunWorkflowInput) -> Priority:
    """The priority and fairness key a run is started with."""
    return Priority(priority_key=run.priority, fairness_key=run.fairness_key or run.workflow_slug)


def scheduled_priority(trigger_id: str) -> Priority:
    """What a schedule's fires start with: below interactive runs, fair across schedules."""
    return Priority(priority_key=SCHEDULED_PRIORITY, fairness_key=f"schedule-{trigger_id}"[:64])
