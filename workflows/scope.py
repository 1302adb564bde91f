"""What a step kind may use of the run it runs in: the scope, the runner's protocol, failure.

The step kinds depend on this module only, never on ``workflows/runner.py`` (which imports
them to dispatch). Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.control import ApprovalDecision
    from schema.definition import Step
    from schema.run import ChildDefinition, RunLimits, SeedStep, StepError, StepRecord, StepStatus

from workflows.ledger import BudgetLedger
from workflows.outcome import StepOutcome


class StepFailed(Exception):
    """Raised inside the interpreter when a step ends in failure."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class RunScope:
    """What the steps of one run (or one map batch) share."""

    run_id: str
    environment: str
    id_prefix: str
    """Prefix of the ids of child workflows started from here: unique per scope."""
    mirror: bool = True
    mirror_runs: bool = True
    approvals: bool = True
    ledger: BudgetLedger | None = None
    """The budget this scope draws from (shared by its branches and items); None: none."""
    children: list[ChildDefinition] = field(default_factory=list)
    seeds: dict[str, SeedStep] = field(default_factory=dict)
    partial_seeds: dict[str, SeedStep] = field(default_factory=dict)
    limits: RunLimits = field(default_factory=RunLimits)
    workflow_slug: str | None = None
    side_effects: bool = True
    """False in a preview: http_request writes (POST, PUT, PATCH, DELETE) are skipped."""
    llm_cache: str = "off"
    """``use``: llm calls identical to recorded ones are answered from the record."""


class Runner(Protocol):
    """The part of ``StepRunner`` a step kind calls back into."""

    scope: RunScope
    steps: dict[str, StepRecord]
    waiting: dict[str, str]
    decisions: dict[str, ApprovalDecision]

    async def mirror_step(self, record: StepRecord, *, written: bool = False) -> None:
        """Keep the record and have the run's writer mirror it."""

    async def run_sequence(self, steps: list[Step], context: dict[str, Any], *,
                           index: int | None = None, parent: str | None = None,
                           start: int = 0) -> Any:
        """Run steps in order; returns the output of the last step that ran."""

    async def finish(self, record: StepRecord, status: StepStatus, *,
                     outcome: StepOutcome | None = None, error: StepError | None = None,
                     attempts: int | None = None) -> None:
        """Close a step record and mirror it."""
