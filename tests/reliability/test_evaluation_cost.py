"""What an evaluation costs with and without recorded model answers: 20 past runs of a
5-step workflow (llm, llm, transform, llm, transform)."""

from __future__ import annotations

import time

from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.e2e.test_evaluations import _finished
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer


async def test_an_evaluation_over_20_past_runs_pays_only_without_the_record(
        service: Service, llm: FakeLlmServer) -> None:
    # A 5-step workflow (llm, llm, transform, llm, transform) and 20 past runs of it; the
    # unchanged candidate evaluated with the record (llmCache: use) and without it.
    slug = unique_slug("eval-20")
    definition = chain(slug, 3)
    definition["steps"].insert(2, {"id": "t1", "type": "transform",
                                   "inputMapping": {"v": "outputs.s2"}})
    definition["steps"].append({"id": "t2", "type": "transform",
                                "inputMapping": {"v": "outputs.s3"}})
    await service.create_workflow(definition)
    for i in range(20):
        assert (await service.run(slug, {"topic": f"{slug}-{i}"})).json()["run"]["status"] \
            == "completed"
    figures = {}
    for mode in ("use", "off"):
        calls = llm.count(OPENAI_PATH)
        began = time.monotonic()
        started = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
            "candidate": {"version": 1}, "dataset": {"fromRuns": {"limit": 20}},
            "assertions": [{"type": "jmespath", "expression": "output != null"}],
            "llmCache": mode, "concurrency": 4})
        evaluation = await _finished(service, started.json()["evaluation"]["id"])
        figures[mode] = (time.monotonic() - began, evaluation["summary"]["costUsd"],
                         llm.count(OPENAI_PATH) - calls)
        assert evaluation["summary"]["passRate"] == 1.0
    print(f"[evaluation, 20 past runs of a 5-step workflow] with the record: "
          f"{figures['use'][0]:.1f}s ${figures['use'][1]} {figures['use'][2]} calls; without: "
          f"{figures['off'][0]:.1f}s ${figures['off'][1]:.6f} {figures['off'][2]} calls")
    assert figures["use"][2] == 0
    assert figures["use"][1] == 0
    assert figures["off"][2] == 60  # 3 model calls in each of 20 cases
    assert figures["off"][1] > 0
