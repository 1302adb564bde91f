"""A worker that keeps no runs in memory (``temporal.max_cached_workflows = 0``) replays each
run from its history at every task, and still runs every step kind to the same result."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueKind

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import Service
from tests.e2e.test_control_replay import _setup
from tests.fakes.llm_server import FakeLlmServer
from tests.reconcile_support import wait_api


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.temporal.max_cached_workflows = 0
    return settings


async def test_a_worker_without_a_cache_runs_every_kind(service: Service,
                                                        llm: FakeLlmServer) -> None:
    slug = await _setup(service)
    started = (await service.run(slug, {"topics": ["x", "y"]})).json()["run"]
    # Every task replays the run so far: slower than a cached run, past `wait` under load.
    run = await wait_api(service, started["id"], ("completed", "failed"), within=120)
    assert run["status"] == "completed", run.get("error")
    assert run["outputJson"] == {"each": [{"t": "x"}, {"t": "y"}],
                                 "fan": [1, {"t": "y"}], "single": None}

    # Nothing was kept between tasks: every workflow task went to the run's own queue, none
    # to a worker's sticky one (a cached run's later tasks do).
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    queues = [e.workflow_task_scheduled_event_attributes.task_queue.kind
              for e in history.events
              if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
    assert len(queues) > 3
    assert TaskQueueKind.TASK_QUEUE_KIND_STICKY not in queues
