"""Evaluations: a candidate over past runs, checked by assertions against the baseline (each
past run's own output), as a durable workflow of ordinary mirrored runs; and the CLI's gate."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from promptpilot.temporal import connect
from tests.cli_support import cli_env, promptpilot
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.e2e.test_replay import replayer
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok

TITLED = {"type": "object", "required": ["title"]}


def titled(slug: str, prompt: str = "A title for {{topic}} as JSON") -> dict[str, Any]:
    return {"id": slug, "name": "titles",
            "variables": [{"name": "topic", "type": "string", "required": True}],
            "steps": [{"id": "title", "type": "llm", "model": "gpt-4o-mini",
                       "promptUser": prompt, "outputSchema": {"type": "object"},
                       "inputMapping": {"topic": "input.topic"}}]}


async def _past_runs(service: Service, llm: FakeLlmServer, slug: str, count: int) -> None:
    llm.enqueue(*(ok(json.dumps({"title": f"t{i}"})) for i in range(count)))
    for i in range(count):
        run = (await service.run(slug, {"topic": f"{slug}-{i}"})).json()["run"]
        assert run["status"] == "completed", run


async def _finished(service: Service, evaluation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = (await service.http.get(f"/api/evaluations/{evaluation_id}")).json()
        if found["evaluation"]["status"] != "running":
            evaluation: dict[str, Any] = found["evaluation"]
            return evaluation
        await asyncio.sleep(0.2)
    raise AssertionError(f"evaluation {evaluation_id} did not finish")


async def test_a_candidate_that_breaks_the_schema_on_two_of_five_runs_regresses(
        service: Service, llm: FakeLlmServer, tmp_path: Path) -> None:
    slug = unique_slug("eval")
    await service.create_workflow(titled(slug))
    await _past_runs(service, llm, slug, 5)
    candidate = titled(slug, "A short title for {{topic}} as JSON")
    body = {"candidate": {"definition": candidate},
            "dataset": {"fromRuns": {"limit": 5}},
            "assertions": [{"type": "jsonSchema", "schema": TITLED}], "concurrency": 1}
    llm.enqueue(*(ok(json.dumps({"title": "x"})) for _ in range(3)),
                *(ok(json.dumps({"name": "no title"})) for _ in range(2)))

    started = await service.http.post(f"/api/workflows/{slug}/evaluations", json=body)

    assert started.status_code == 202, started.text
    assert started.json()["evaluation"]["status"] == "running"
    evaluation = await _finished(service, started.json()["evaluation"]["id"])
    assert evaluation["status"] == "completed", evaluation
    summary = evaluation["summary"]
    assert summary["passRate"] == 0.6
    assert summary["baselinePassRate"] == 1.0
    assert len(summary["regressions"]) == 2
    failed = [c for c in evaluation["cases"] if not c["passed"]]
    assert all(c["regression"] for c in failed)
    assert failed[0]["diff"][0]["path"] in ("/title", "/name")
    # Each case's candidate run is an ordinary run, trigger evaluation, that can be opened.
    run = (await service.http.get(
        f"/api/workflows/runs/{failed[0]['candidateRunId']}")).json()["run"]
    assert run["trigger"] == "evaluation"
    # The evaluation workflow (its fan-out of child runs) replays deterministically.
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(f"eval-{evaluation['id']}").fetch_history()
    replayed = await replayer(service.settings).replay_workflow(
        history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure

    # The CLI gate over the same: exit 1, the regressions listed.
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(candidate))
    assertions = tmp_path / "assertions.json"
    assertions.write_text(json.dumps(body["assertions"]))
    llm.enqueue(*(ok(json.dumps({"title": "x"})) for _ in range(3)),
                *(ok(json.dumps({"name": "no title"})) for _ in range(2)))
    gate = await promptpilot("eval", slug, "--candidate", str(path), "--from-runs", "5",
                             "--assertions", str(assertions), "--fail-under", "0.95",
                             "--no-cache", env=cli_env(url=service.url, key=DEV_KEY))
    assert gate.code == 1, gate.stdout + gate.stderr
    assert "3/5 passed" in gate.stdout
    assert gate.stdout.count("regression (run") == 2


async def test_an_unchanged_candidate_with_recorded_answers_calls_no_model(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("eval-same")
    await service.create_workflow(titled(slug))
    await _past_runs(service, llm, slug, 3)
    calls = llm.count(OPENAI_PATH)

    started = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
        "candidate": {"version": 1}, "dataset": {"fromRuns": {"limit": 3}},
        "assertions": [{"type": "jsonSchema", "schema": TITLED}], "llmCache": "use"})
    evaluation = await _finished(service, started.json()["evaluation"]["id"])

    assert evaluation["summary"]["passRate"] == 1.0
    assert evaluation["summary"]["regressions"] == []
    assert llm.count(OPENAI_PATH) == calls  # every call answered from the past runs' record
    assert evaluation["summary"]["costUsd"] == 0


async def test_a_bad_evaluation_request_is_a_422(service: Service) -> None:
    slug = unique_slug("eval-bad")
    await service.create_workflow(titled(slug))
    both = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
        "candidate": {"version": 1, "definition": titled(slug)},
        "dataset": {"cases": [{"input": {"topic": "a"}}]},
        "assertions": [{"type": "contains", "value": "a"}]})
    empty = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
        "candidate": {"version": 1}, "dataset": {"fromRuns": {"limit": 5}},
        "assertions": [{"type": "contains", "value": "a"}]})
    assert both.status_code == 422
    assert "exactly one of version or definition" in both.text
    assert empty.status_code == 422
    assert "dataset is empty" in empty.text


async def test_an_llm_judge_decides_by_its_rubric_on_both_sides(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("eval-judge")
    await service.create_workflow(titled(slug))
    verdict = '{{"pass": {}, "reason": "{}"}}'
    # Per case, in order: the candidate's run, the baseline's run, the judge on each.
    llm.enqueue(ok('{"title": "Nile"}'), ok('{"title": "Nile"}'),
                ok(verdict.format("true", "names the river")),
                ok(verdict.format("true", "names the river")),
                ok('{"title": "?"}'), ok('{"title": "Amazon"}'),
                ok(verdict.format("false", "names no river")),
                ok(verdict.format("true", "names the river")))

    started = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
        "candidate": {"version": 1},
        "dataset": {"cases": [{"input": {"topic": "a"}}, {"input": {"topic": "b"}}]},
        "assertions": [{"type": "llmJudge", "rubric": "The title names a river."}],
        "llmCache": "off", "concurrency": 1})
    evaluation = await _finished(service, started.json()["evaluation"]["id"])

    assert evaluation["status"] == "completed", evaluation
    assert evaluation["summary"]["passRate"] == 0.5
    assert evaluation["summary"]["regressions"] == [1]
    second = evaluation["cases"][1]
    assert second["assertions"][0] == {"type": "llmJudge", "passed": False,
                                       "message": "names no river"}
    assert second["judgeCost"] > 0
    judge = llm.requests[-1].body["messages"]
    assert "The title names a river." in judge[-1]["content"]

