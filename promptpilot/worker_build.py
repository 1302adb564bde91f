"""The worker's parts and its construction: the interpreter workflow and every activity on one
task queue, of one deployment build.

``promptpilot worker`` (or ``python worker.py``) runs one; ``promptpilot dev`` runs one too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.agent import AgentActivities
from activities.budget import llm_worst_case
from activities.evaluations import EvaluationActivities
from activities.expected_failures import ExpectedFailures
from activities.llm import LlmActivities
from activities.mirror import MirrorActivities
from activities.recorded_answers import RecordedAnswers
from activities.self_mirror import SelfMirror
from activities.streaming import Streams
from activities.tools import ToolActivities
from activities.transform import TransformActivities
from activities.triggers import TriggerActivities
from promptpilot import tracing
from store.daily_spend import DailySpend
from store.deltas import StepDeltas
from store.evaluations import Evaluations
from store.llm_answers import LlmAnswers
from store.provider_gate import ProviderGate
from store.runs import Store
from workflows.evaluation import EvaluationWorkflow
from workflows.interpreter import InterpreterWorkflow
from workflows.map_batch import MapBatchWorkflow
from workflows.triggered import TriggeredStartWorkflow

log = logging.getLogger("promptpilot.worker")


class WorkerParts:
    """The activity objects a worker owns, so they can be closed with it."""

    def __init__(self, settings: Any, store: Store, client: Client | None = None) -> None:
        self.settings = settings
        # Provider limits, 429 pauses and breakers are shared through Postgres.
        self.records = RecordedAnswers(LlmAnswers(store.engine, store.raw), settings.llm_cache)
        # Streamed text goes to the run's subscribers as NOTIFYs, never into history.
        self.streams = Streams(StepDeltas(store.raw).publish, enabled=settings.llm.stream,
                               interval=settings.llm.stream_interval_ms / 1000)
        # llm and tool steps write their own rows from their activities.
        own_rows = SelfMirror(store)
        self.llm = LlmActivities(settings, ProviderGate(store.engine), DailySpend(store.engine),
                                 self.records, self.streams, own_rows)
        self.agents = AgentActivities(self.llm)
        self.evaluations = EvaluationActivities(Evaluations(store.engine), self.llm)
        self.tools = ToolActivities(settings, mirror=own_rows)
        self.mirror = MirrorActivities(store)
        self.transforms = TransformActivities(store.upsert_steps)
        # Wraps mirror_run to fire event triggers; without a client they do not fire.
        self.triggers = TriggerActivities(store, self.mirror, client, settings)

    def activities(self) -> Sequence[Callable[..., Any]]:
        """Every activity the interpreter may schedule."""
        return [
            self.llm.call,
            self.agents.turn,
            llm_worst_case,
            self.records.lookup,
            self.records.lookup_turn,
            self.evaluations.evaluate_case,
            self.evaluations.record_evaluation,
            self.tools.call,
            self.transforms.transform_step,
            self.triggers.mirror_run,
            self.mirror.mirror_step,
            self.mirror.mirror_steps,
            self.triggers.resolve_triggered_start,
        ]

    async def aclose(self) -> None:
        """Release HTTP clients."""
        await self.tools.aclose()
        await self.llm.aclose()


def workflow_runner(*, sandboxed: bool = True) -> WorkflowRunner:
    """How the worker runs the interpreter.

    Sandboxed (CI's replays, or ``PROMPTPILOT_TEMPORAL__WORKFLOW_SANDBOX=true``): Temporal's
    sandbox, which re-imports the ``workflows`` package for each run and refuses
    non-deterministic calls in it. Jinja2 and JMESPath are deterministic and shared with the
    host (they import parts of themselves lazily, which the sandbox would redo per run).

    Unsandboxed (the default worker): the interpreter is our own code, never the users'
    (they write JSON), and every live and recorded history is replayed in the sandbox by
    the tests, so the per-run re-import (over a third of the worker's CPU, measured) buys
    nothing in production.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default
                                   .with_passthrough_modules("jinja2", "markupsafe", "jmespath"))


def build_worker(client: Client, task_queue: str, parts: WorkerParts, *,
                 version: WorkerDeploymentVersion, sandboxed: bool = False) -> Worker:
    """A worker of one deployment build serving the interpreter and all step activities.

    Every workflow is PINNED: a run's workflow tasks go to the build it started on until it
    ends, so a new interpreter never replays an old run's history (README: Upgrading the
    interpreter).
    """
    return Worker(
        client,
        task_queue=task_queue,
        deployment_config=WorkerDeploymentConfig(
            version=version, use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED),
        workflows=[InterpreterWorkflow, TriggeredStartWorkflow, MapBatchWorkflow,
                   EvaluationWorkflow],
        workflow_runner=workflow_runner(sandboxed=sandboxed),
        activities=parts.activities(),
        max_concurrent_activities=parts.settings.temporal.max_concurrent_activities,
        max_concurrent_workflow_tasks=parts.settings.temporal.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=parts.settings.temporal.max_concurrent_local_activities,
        max_cached_workflows=parts.settings.temporal.max_cached_workflows,
        # Expected failures (a refused target, a budget) log one line, not a traceback.
        interceptors=[ExpectedFailures(), *step_spans(parts.settings)],
    )


def step_spans(settings: Any) -> list[Interceptor]:
    """Our step, LLM and tool spans when tracing is on (README: Traces)."""
    tracer = tracing.tracer()
    if tracer is None:
        return []
    from activities.tracing import StepSpans
    return [StepSpans(tracer, capture_content=settings.tracing.capture_content)]

