"""A model answer over the step output limit fails the step once, clearly (CI subset of
tests/reliability: the rest of the fault suite runs with `make test-reliability`)."""

from __future__ import annotations

from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok
from tests.reliability.conftest import llm_chain


async def test_answer_over_the_step_output_limit_fails_without_retries(
        service: Service, llm: FakeLlmServer) -> None:
    # Payloads over Temporal's 2 MB leave history (tests/e2e/test_large_payloads.py), so
    # what bounds an answer is the step output limit.
    service.settings.limits.max_step_output_bytes = 2_000_000
    slug = unique_slug("big")
    await service.create_workflow(llm_chain(slug, 1))
    llm.enqueue(ok("x" * 3_000_000))
    response = await service.run(slug, {"topic": "big"})
    run = response.json()["run"]
    assert run["status"] == "failed", run
    assert run["steps"][0]["error"]["type"] == "output_too_large"
    assert "2,000,000-byte limit" in run["steps"][0]["error"]["message"]
    assert llm.count(OPENAI_PATH) == 1
