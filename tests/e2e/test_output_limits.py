"""A model answer too large for a Temporal payload fails the step once, clearly (CI subset of
tests/reliability: the rest of the fault suite runs with `make test-reliability`)."""

from __future__ import annotations

from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok
from tests.reliability.conftest import llm_chain


async def test_3mb_answer_fails_without_retries(service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("big")
    await service.create_workflow(llm_chain(slug, 1))
    llm.enqueue(ok("x" * 3_000_000))
    response = await service.run(slug, {"topic": "big"})
    run = response.json()["run"]
    assert run["status"] == "failed", run
    assert run["steps"][0]["error"]["type"] == "output_too_large"
    assert llm.count(OPENAI_PATH) == 1
