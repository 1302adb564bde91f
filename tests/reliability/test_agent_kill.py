"""kill -9 of the worker mid-agent: after the first tool call finished, while the second model
turn is in flight. The new worker resumes from the history without calling the tool again."""

from __future__ import annotations

import subprocess

import httpx
from temporalio.api.enums.v1 import EventType

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from store.runs import Store
from tests.conftest import unique_slug
from tests.e2e.test_agent_steps import agent
from tests.e2e.test_worker_crash import api_only, start_worker, workers
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok, tool_calls
from tests.reliability.conftest import wait_status, wait_until
from tests.reliability.test_worker_kill import _kill

__all__ = ["api_only", "workers"]


async def test_kill_after_a_tool_call_does_not_call_it_again(
    settings: Settings, api_only: httpx.AsyncClient, workers: list[subprocess.Popen[bytes]],
    llm: FakeLlmServer, store: Store,
) -> None:
    slug = unique_slug("kill-agent")
    created = await api_only.post("/api/workflows", json=agent(slug, "gpt-4o-mini"))
    assert created.status_code == 201, created.text
    # Turn 1 calls web_search; turn 2's first call hangs: the worker dies with it in flight.
    llm.enqueue(tool_calls([("web_search", {"query": "otters"})]), hang(60), ok("answer"))
    workers.append(start_worker(settings))
    started = await api_only.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {"topic": "otters"}})
    run_id = started.json()["run"]["id"]
    await wait_until(lambda: llm.count(OPENAI_PATH) >= 2, 30)
    _kill(workers[0])
    workers.append(start_worker(settings))
    run = await wait_status(api_only, run_id, 90)
    assert run["status"] == "completed", run
    assert run["steps"][0]["outputJson"] == "answer"
    assert llm.count(OPENAI_PATH) == 3  # turn 1 once, turn 2 twice (the killed call)
    client = await connect(settings, "dev")
    history = await client.get_workflow_handle(run_id).fetch_history()
    tools = [e for e in history.events
             if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
             and e.activity_task_scheduled_event_attributes.activity_type.name == "tool_call"]
    assert len(tools) == 1
    started_tools = [e for e in history.events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                     and e.activity_task_started_event_attributes.scheduled_event_id
                     == tools[0].event_id]
    assert [e.activity_task_started_event_attributes.attempt for e in started_tools] == [1]
