"""Every run ends, and its record tells the truth: templates that never finish, an input the
worker cannot decode and step outputs over the limit each fail the run at once, with a named
error type, the same in the mirror and in Temporal (issue 12)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from promptpilot.temporal import connect
from schema.run import RunWorkflowInput
from schema.workflow_names import WORKFLOW_NAME
from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer


def prompt_workflow(slug: str, prompt: str) -> dict[str, Any]:
    """One llm step whose prompt reads the run's input ``n``."""
    return {"id": slug, "name": "template limits",
            "variables": [{"name": "n", "type": "integer", "required": True}],
            "steps": [{"id": "ask", "type": "llm", "model": "gpt-4o-mini", "promptUser": prompt}]}


async def temporal_status(service: Service, run_id: str) -> WorkflowExecutionStatus | None:
    client = await connect(service.settings, "dev")
    return (await client.get_workflow_handle(run_id).describe()).status


# Forms that pass the save-time checks (the size comes from the input) and, before issue 12,
# failed their workflow task on every retry: an OverflowError outside TemplateError, a 100 MB
# render over the payload limit, the deadlock detector.
NEVER_ENDING = [
    ("range", "{% for i in range(input.n) %}x{% endfor %}", 10**8),
    ("repetition", "{{ 'x' * input.n }}", 10**8),
    ("nested loops", "{% for i in range(input.n) %}{% for j in range(input.n) %}x{% endfor %}"
                     "{% endfor %}", 10**5),
]


@pytest.mark.parametrize(("case", "prompt", "n"), NEVER_ENDING, ids=[c[0] for c in NEVER_ENDING])
async def test_unbounded_template_fails_its_run_within_seconds(
        service: Service, llm: FakeLlmServer, case: str, prompt: str, n: int) -> None:
    slug = unique_slug("tpl")
    await service.create_workflow(prompt_workflow(slug, prompt))

    started = time.monotonic()
    response = await service.run(slug, {"n": n})
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "failed", (case, run)
    assert elapsed < 10, elapsed
    step = run["steps"][0]
    assert step["status"] == "failed"
    assert step["error"]["type"] == "template_limit"
    assert step["error"]["message"].startswith("promptUser: ")
    assert "limits.template_max_" in step["error"]["message"]
    assert run["error"]["type"] == "template_limit"
    assert llm.count(OPENAI_PATH) == 0
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.FAILED


VISIBLY_UNBOUNDED = [
    ("range of constants", "{% for i in range(10**8) %}x{% endfor %}",
     "limits.template_max_operations"),
    ("constant repetition", "{{ 'x' * 100000000 }}", "limits.template_max_output_chars"),
    ("nested constant loops", "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}"
                              "{% endfor %}", "limits.template_max_operations"),
    ("self-recursive macro", "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(input.n) }}",
     "can call itself"),
]


@pytest.mark.parametrize(("case", "prompt", "named"), VISIBLY_UNBOUNDED,
                         ids=[c[0] for c in VISIBLY_UNBOUNDED])
async def test_visibly_unbounded_template_is_refused_when_saved(
        service: Service, case: str, prompt: str, named: str) -> None:
    slug = unique_slug("tpl")
    response = await service.http.post("/api/workflows", json=prompt_workflow(slug, prompt))

    assert response.status_code == 422, (case, response.text)
    problems = response.json()["error"]["problems"]
    assert [p["pointer"] for p in problems] == ["/steps/0/promptUser"], problems
    assert problems[0]["stepId"] == "ask"
    assert named in problems[0]["message"]
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404


async def test_the_same_template_within_the_limits_is_saved_and_runs(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("tpl")
    await service.create_workflow(prompt_workflow(
        slug, "{% for i in range(300) %}{% for j in range(input.n) %}x{% endfor %}{% endfor %}"))
    run = (await service.run(slug, {"n": 300})).json()["run"]
    assert run["status"] == "completed", run
    assert llm.requests[-1].body["messages"][-1]["content"] == "x" * 90_000


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


@pytest.mark.parametrize("known", [True, False], ids=["its workflow", "an unknown workflow"])
async def test_input_too_deep_to_decode_fails_the_run_input_invalid(service: Service,
                                                                     known: bool) -> None:
    # Started straight through a Temporal client, past the API's own depth check: before
    # issue 12 the worker failed to decode it on every workflow task retry, forever.
    slug = unique_slug("deep")
    created = await service.create_workflow({
        "id": slug, "name": "deep", "steps": [{"id": "echo", "type": "transform"}]})
    definition = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]
    if not known:  # the failed row cannot be written: the run ends all the same
        created["id"] = str(uuid.uuid4())
    run_id = str(uuid.uuid4())
    client: Client = await connect(service.settings, "dev")

    started = time.monotonic()
    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(
            WORKFLOW_NAME, RunWorkflowInput(
                run_id=run_id, environment="dev", workflow_id=created["id"], workflow_slug=slug,
                workflow_version=1, definition=definition["definition"],
                input={"doc": nested(250)}),
            id=run_id, task_queue=service.settings.temporal.task_queue)
    assert time.monotonic() - started < 10

    cause = failure.value.cause
    assert getattr(cause, "type", None) == "input_invalid", cause
    assert await temporal_status(service, run_id) == WorkflowExecutionStatus.FAILED
    response = await service.http.get(f"/api/workflows/runs/{run_id}")
    if not known:
        assert response.status_code == 404
        return
    run = response.json()["run"]
    assert run["status"] == "failed"
    assert run["error"]["type"] == "input_invalid"
    assert "cannot be decoded" in run["error"]["message"]
    assert run["steps"] == []


@pytest.mark.parametrize("over", [0, 1], ids=["at the limit", "one byte past it"])
async def test_step_output_limit_applies_to_every_kind(service: Service, over: int) -> None:
    # A transform passing its input through: its output is {"s": "..."}, 8 bytes + the text.
    limit = 10_000
    service.settings.limits.max_step_output_bytes = limit
    slug = unique_slug("out")
    await service.create_workflow({
        "id": slug, "name": "output limit",
        "variables": [{"name": "s", "type": "string", "required": True}],
        "steps": [{"id": "echo", "type": "transform", "inputMapping": {"s": "input.s"}},
                  {"id": "after", "type": "transform", "expression": "length(s)",
                   "inputMapping": {"s": "outputs.echo.s"}}]})

    run = (await service.run(slug, {"s": "x" * (limit - 8 + over)})).json()["run"]

    steps = {s["stepId"]: s for s in run["steps"]}
    if not over:
        assert run["status"] == "completed", run
        assert steps["after"]["outputJson"] == limit - 8
        return
    assert run["status"] == "failed"
    assert steps["echo"]["status"] == "failed"
    assert steps["echo"]["outputJson"] is None
    assert steps["echo"]["error"]["type"] == "output_too_large"
    assert "10,001 bytes" in steps["echo"]["error"]["message"]
    assert "10,000-byte limit" in steps["echo"]["error"]["message"]
    assert "after" not in steps
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.FAILED


async def test_unexpected_interpreter_error_fails_the_run_internal_error(service: Service) -> None:
    # A rerun started past the API from a step its definition does not have: the interpreter
    # meets a KeyError it has no handler for. Before issue 12 that failed the workflow task on
    # every retry; now the run fails internal_error at once, in Temporal and in the mirror.
    slug = unique_slug("bug")
    created = await service.create_workflow({
        "id": slug, "name": "bug", "steps": [{"id": "echo", "type": "transform"}]})
    definition = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]
    run_id = str(uuid.uuid4())
    client: Client = await connect(service.settings, "dev")

    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(
            WORKFLOW_NAME, RunWorkflowInput(
                run_id=run_id, environment="dev", workflow_id=created["id"], workflow_slug=slug,
                workflow_version=1, definition=definition["definition"], input={},
                from_step_id="nope"),
            id=run_id, task_queue=service.settings.temporal.task_queue)

    assert getattr(failure.value.cause, "type", None) == "internal_error"
    assert await temporal_status(service, run_id) == WorkflowExecutionStatus.FAILED
    run = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
    assert run["status"] == "failed"
    assert run["error"] == {"type": "internal_error", "message": "KeyError: 'nope'",
                            "retryable": False, "details": None}
