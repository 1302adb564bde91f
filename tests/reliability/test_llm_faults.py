"""A misbehaving model server: 429 storms, 5xx bursts, hangs, 400s and a 3 MB answer."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import (
    OPENAI_PATH,
    FakeLlmServer,
    hang,
    ok,
    rate_limited,
    server_error,
    status,
)
from tests.reliability.conftest import Record, assert_exactly_once, llm_chain

FAST_RETRY = {"maxAttempts": 10, "initialIntervalSeconds": 0.1, "backoffCoefficient": 1.0,
              "maximumIntervalSeconds": 0.2}


async def _run(service: Service, steps: int = 2, **llm: Any) -> tuple[dict[str, Any], float]:
    slug = unique_slug("llmfault")
    await service.create_workflow(llm_chain(slug, steps, retryConfig=FAST_RETRY, **llm))
    began = time.monotonic()
    response = await service.run(slug, {"topic": "faults"}, )
    assert response.status_code == 200, response.text
    return response.json()["run"], time.monotonic() - began


async def test_429_storm_honours_retry_after(service: Service, llm: FakeLlmServer,
                                             record: Record) -> None:
    llm.enqueue(*[rate_limited(retry_after=0.4) for _ in range(6)])
    run, seconds = await _run(service)
    assert run["status"] == "completed", run
    await assert_exactly_once(service.store.engine, run["id"], ["s1", "s2"])
    assert run["steps"][0]["attempts"] == 7
    assert llm.count(OPENAI_PATH) == 8
    # Retry-After (0.4 s) overrides the policy's 0.1-0.2 s: six waits of at least 0.4 s.
    assert seconds >= 6 * 0.4
    record(seconds, fault="6 x 429 with Retry-After 0.4s", attempts=7)


async def test_5xx_burst_is_retried(service: Service, llm: FakeLlmServer,
                                    record: Record) -> None:
    llm.enqueue(server_error(500), server_error(502), server_error(503), server_error(504),
                ok(), server_error(500), server_error(503))
    run, seconds = await _run(service)
    assert run["status"] == "completed", run
    await assert_exactly_once(service.store.engine, run["id"], ["s1", "s2"])
    assert [s["attempts"] for s in run["steps"]] == [5, 3]
    record(seconds, fault="bursts of 500/502/503/504", attempts=[5, 3])


async def test_hang_past_the_step_timeout_is_retried(service: Service, llm: FakeLlmServer,
                                                     record: Record) -> None:
    llm.enqueue(hang(8))
    run, seconds = await _run(service, timeoutSeconds=1.5)
    assert run["status"] == "completed", run
    await assert_exactly_once(service.store.engine, run["id"], ["s1", "s2"])
    assert run["steps"][0]["attempts"] == 2
    assert 1.5 <= seconds < 8  # the timeout, not the hang, decided when to retry
    record(seconds, fault="model hangs 8s past a 1.5s step timeout", attempts=2)


async def test_400_fails_at_once(service: Service, llm: FakeLlmServer, record: Record) -> None:
    llm.enqueue(status(400, "bad request: context too long"))
    run, seconds = await _run(service)
    assert run["status"] == "failed", run
    assert llm.count(OPENAI_PATH) == 1  # never retried
    step = run["steps"][0]
    assert step["status"] == "failed"
    assert step["error"]["type"] == "provider_bad_request"
    assert [s["stepId"] for s in run["steps"]] == ["s1"]  # s2 never ran
    record(seconds, fault="400 from the model", attempts=1)


async def test_3mb_answer_fails_clearly_without_retries(service: Service, llm: FakeLlmServer,
                                                        record: Record) -> None:
    # Answers over Temporal's 2 MB leave history (payload storage); the step output limit,
    # lowered to 2 MB here, is what bounds one.
    service.settings.limits.max_step_output_bytes = 2_000_000
    llm.enqueue(ok("x" * 3_000_000))
    run, seconds = await _run(service)
    assert run["status"] == "failed", run
    assert llm.count(OPENAI_PATH) == 1
    step = run["steps"][0]
    assert step["error"]["type"] == "output_too_large"
    assert "limit" in step["error"]["message"]
    assert seconds < 15
    record(seconds, fault="3 MB model answer", attempts=step["attempts"])
