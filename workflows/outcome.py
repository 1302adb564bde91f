"""What a finished step contributes to its record and the run totals. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.run import StepError, StepRecord, StepWork


class StepOutcome(StepWork):
    """What a finished (or failed, for its partial spend) step contributes to its record:
    its work (the fields of ``StepWork``) and what the runner does with it."""

    output: Any = None
    attempts: int = 1
    jump: str | None = None
    """A condition's chosen target: the steps before it are skipped."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    """When the activity itself says the work ran (local activities: ``workflow.now()``
    stands still while a chain of them runs in one workflow task)."""
    mirrored: bool = False
    """The activity already wrote the step's finished record into the mirror."""
    mirrored_as: str | None = None
    """The digest of the finished record the step's activity wrote (``StepSelfWrite``):
    the runner's own record with the same digest is not written again."""
    rolls_up: bool = False
    """The cost is the sum of work recorded elsewhere (map items, a child run): add it to the
    run's total even when unknown (None)."""

    def merge_into(self, record: StepRecord) -> None:
        """Copy the step's output and work onto its record (a ``rendered`` of None keeps the
        record's, e.g. a skip reason); the times and flags stay the runner's."""
        record.output = self.output
        for name in StepWork.model_fields:
            value = getattr(self, name)
            if name != "rendered" or value is not None:
                setattr(record, name, value)


class OutcomeSkipped(Exception):
    """A step kind chose not to run (a preview's side effect): the step is recorded
    ``skipped`` with ``reason``, and later steps read its output as null."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutcomeFailed(Exception):
    """A step kind failed; ``partial`` (when given) is still recorded on the step."""

    def __init__(self, error: StepError, partial: StepOutcome | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.partial = partial
