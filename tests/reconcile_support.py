"""Helpers for runs that end outside the interpreter: waiting runs, direct starts, a bad deploy.

A *bad deploy* is a worker whose build of the interpreter workflow (same type name) fails
every workflow task, the way a non-deterministic change would: Temporal retries the task
and the run never moves again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from schema.definition import WorkflowDefinition
from schema.run import RunRecord, RunStatus, RunWorkflowInput
from schema.workflow_names import WORKFLOW_NAME
from store.runs import Store
from tests.conftest import Service

BAD_DEPLOY_MESSAGE = "this build cannot replay the run (a bad deploy)"


def waiting(slug: str) -> dict[str, Any]:
    """A transform, then an approval step that waits (for ten minutes) for a person."""
    return {"id": slug, "name": "waits for a person",
            "steps": [{"id": "prep", "type": "transform", "expression": "{ok: `true`}"},
                      {"id": "review", "type": "approval", "message": "Go on?",
                       "timeoutSeconds": 600, "onTimeout": "reject"}]}


async def api_run(service: Service, run_id: str) -> dict[str, Any]:
    """The run as the API shows it."""
    response = await service.http.get(f"/api/workflows/runs/{run_id}")
    assert response.status_code in (200, 202), response.text
    run: dict[str, Any] = response.json()["run"]
    return run


async def wait_api(service: Service, run_id: str, statuses: tuple[str, ...],
                   within: float = 30) -> dict[str, Any]:
    """Poll the API until the run is in one of ``statuses``."""
    deadline = time.monotonic() + within
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = await api_run(service, run_id)
        if run["status"] in statuses:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not reach {statuses} within {within} s: {run}")


async def wait_step(service: Service, run_id: str, step_id: str, status: str,
                    within: float = 20) -> None:
    """Poll until a step of the run has ``status``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        steps = {s["stepId"]: s["status"] for s in (await api_run(service, run_id))["steps"]}
        if steps.get(step_id) == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"step {step_id} of run {run_id} never reached {status}")


async def start_waiting_run(service: Service) -> str:
    """A run of ``waiting`` through the API, once its approval step waits."""
    slug = f"waits-{uuid.uuid4().hex[:10]}"
    await service.create_workflow(waiting(slug))
    started = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                      json={"input": {}})
    assert started.status_code == 202, started.text
    run_id = str(started.json()["run"]["id"])
    await wait_step(service, run_id, "review", "waiting")
    return run_id


async def start_directly(service: Service, client: Client, definition: dict[str, Any], *,
                         task_queue: str | None = None, pending_row: bool = False,
                         **options: Any) -> WorkflowHandle[Any, Any]:
    """Start the interpreter straight through Temporal (as an operator or a script may), with
    ``options`` such as an execution timeout; ``pending_row`` records it first, as the API
    does."""
    workflow_row = await service.create_workflow(definition)
    run_id = str(uuid.uuid4())
    run_input = RunWorkflowInput(
        run_id=run_id, environment="dev", workflow_id=workflow_row["id"],
        workflow_slug=definition["id"], workflow_version=1,
        definition=WorkflowDefinition.model_validate(workflow_row["definition"]))
    if pending_row:
        await service.store.create_run(RunRecord(
            run_id=run_id, environment="dev", workflow_id=workflow_row["id"],
            workflow_version=1, status="pending"))
    return await client.start_workflow(
        WORKFLOW_NAME, run_input, id=run_id,
        task_queue=task_queue or service.settings.temporal.task_queue, **options)


@workflow.defn(name=WORKFLOW_NAME)
class BadDeployWorkflow:
    """The interpreter's type name with a body that fails every workflow task."""

    @workflow.run
    async def run(self, payload: dict[str, Any]) -> None:
        """Fail the task (not the workflow): Temporal retries it forever."""
        del payload
        raise RuntimeError(BAD_DEPLOY_MESSAGE)


DEPLOY = {"fixed": False}
"""Whether the build that ``FixableDeployWorkflow`` stands for has been fixed (this process)."""


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class FixableDeployWorkflow:
    """A bad build until ``DEPLOY["fixed"]``; then the run goes on (and waits)."""

    @workflow.run
    async def run(self, payload: dict[str, Any]) -> None:
        """Fail the task while the build is bad, else wait for a day."""
        del payload
        if not DEPLOY["fixed"]:
            raise RuntimeError(BAD_DEPLOY_MESSAGE)
        await workflow.sleep(timedelta(days=1))


def bad_deploy_worker(client: Client, *, fixable: bool = False) -> Worker:
    """A worker of the bad build, on its own task queue (``worker.task_queue``)."""
    build: type = FixableDeployWorkflow if fixable else BadDeployWorkflow
    return Worker(client, task_queue=f"bad-deploy-{uuid.uuid4().hex[:10]}",
                  workflows=[build], workflow_runner=UnsandboxedWorkflowRunner())


async def start_stalled(service: Service, client: Client, worker: Worker, store: Store, *,
                        mirror_status: RunStatus = "completed") -> str:
    """A run the mirror says ``mirror_status`` about (what its interpreter wrote before the
    bad deploy) while Temporal keeps retrying its workflow task on the bad build."""
    slug = f"stalls-{uuid.uuid4().hex[:10]}"
    row = await service.create_workflow(waiting(slug))
    run_id = str(uuid.uuid4())
    await store.create_run(RunRecord(run_id=run_id, environment="dev",
                                     workflow_id=row["id"], workflow_version=1,
                                     status="pending"))
    await store.upsert_run(RunRecord(run_id=run_id, environment="dev", workflow_id=row["id"],
                                     workflow_version=1, status=mirror_status))
    # A short task timeout: the SDK lets a retried failing task time out rather than fail it
    # again, so the second problem (and the server's report) comes after one timeout.
    await client.start_workflow(WORKFLOW_NAME, {"runId": run_id}, id=run_id,
                                task_queue=worker.task_queue,
                                task_timeout=timedelta(seconds=2))
    return run_id
