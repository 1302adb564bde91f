"""Provider limits hold across every run: what the model server sees is what was declared.

The limits, a 429's pause and the circuit breaker live in Postgres (``store.provider_gate``),
so they hold across runs and workers alike; these tests drive many runs at once through the
API against the local model server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from promptpilot.llm_settings import ProviderLimits
from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    FakeLlmServer,
    rate_limited,
    server_error,
)

RPS = 10


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with a 10 requests/second limit on OpenAI and a quick breaker."""
    settings.llm.limits = {"openai": ProviderLimits(requests_per_second=RPS)}
    settings.llm.breaker_failures = 3
    settings.llm.breaker_open_seconds = 5.0
    return settings


def busiest_second(times: list[float]) -> int:
    """The most requests that arrived within any one second."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def _run(service: Service, slug: str, run_input: dict[str, Any]) -> dict[str, Any]:
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 60},
                                       json={"input": run_input})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["run"]
    return run


async def test_a_declared_rate_is_what_the_provider_sees(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("rps")
    await service.create_workflow(chain(slug, 3))

    started = time.monotonic()
    runs = await asyncio.gather(*(_run(service, slug, {"topic": f"t{i}"}) for i in range(20)))
    elapsed = time.monotonic() - started

    assert [r["status"] for r in runs] == ["completed"] * 20
    times = [r.at for r in llm.requests if r.path == OPENAI_PATH]
    assert len(times) == 60
    seen = busiest_second(times)
    print(f"[provider limit {RPS}/s] 60 calls from 20 runs in {elapsed:.1f}s, "
          f"busiest second at the model server: {seen}")
    assert seen <= RPS
    waited = [s for r in runs for s in r["steps"]
              if any("limits" in w for w in s.get("warnings") or [])]
    assert waited, "the wait for the limit shows on the steps that waited"
    log = waited[0]["attemptLog"][-1]
    assert log["queuedMs"] > 0


async def test_a_429_slows_every_run_on_that_provider_only(
        service: Service, llm: FakeLlmServer) -> None:
    openai_slug, anthropic_slug = unique_slug("on-openai"), unique_slug("on-anthropic")
    await service.create_workflow(chain(openai_slug, 1))
    await service.create_workflow(chain(anthropic_slug, 1, model="claude-haiku-4-5"))
    llm.enqueue_at(OPENAI_PATH, rate_limited(retry_after=3))

    first = asyncio.create_task(_run(service, openai_slug, {"topic": "a"}))
    deadline = time.monotonic() + 20
    while llm.count(OPENAI_PATH) < 1 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # polling the model server's record: no event to await
    await asyncio.sleep(0.3)  # the 429 answered and recorded: the pause is set
    paused_at = time.monotonic()
    others = await asyncio.gather(_run(service, openai_slug, {"topic": "b"}),
                                  _run(service, anthropic_slug, {"topic": "c"}))
    runs = [await first, *others]

    assert [r["status"] for r in runs] == ["completed"] * 3
    anthropic_at = [r.at for r in llm.requests if r.path == ANTHROPIC_PATH]
    openai_at = sorted(r.at for r in llm.requests if r.path == OPENAI_PATH)
    # Anthropic is called at once; the second OpenAI run, which never met a 429 itself,
    # waits out the first run's Retry-After like the first does.
    assert anthropic_at[0] - paused_at < 2.0
    assert len(openai_at) == 3
    assert openai_at[1] - openai_at[0] >= 2.5


async def test_a_failing_provider_is_short_circuited_and_the_step_says_so(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("breaker")
    await service.create_workflow(chain(slug, 1))  # up to 5 attempts, the llm default
    llm.enqueue_at(OPENAI_PATH, *(server_error(500) for _ in range(3)))

    run = await _run(service, slug, {"topic": "x"})

    assert run["status"] == "completed"
    step = run["steps"][0]
    assert llm.count(OPENAI_PATH) == 4  # 3 failures open the breaker; no call while open
    types = [e.get("errorType") for e in step["attemptLog"]]
    assert "provider_short_circuited" in types
    short = next(e for e in step["attemptLog"] if e.get("errorType") ==
                 "provider_short_circuited")
    assert "short-circuited" in short["message"]
    assert "the call was not made" in short["message"]
