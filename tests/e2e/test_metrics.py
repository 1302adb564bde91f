"""`GET /metrics`: counters and histograms move after a run; outside localhost a key is needed."""

from __future__ import annotations

import re

import httpx
import pytest

from devstack.process import free_port
from promptpilot.metrics_server import serve_metrics
from promptpilot.settings import Settings
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import FakeLlmServer, ok

_SDK_PORT: list[int] = []
"""Picked when the first test here starts (not at collection: minutes before, when another
process could take it); the SDK's runtime keeps serving it for the others."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with the Temporal SDK's metrics on a port of their own."""
    if not _SDK_PORT:
        _SDK_PORT.append(free_port())
    settings.metrics.temporal_sdk_port = _SDK_PORT[0]
    return settings


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels...}`` (labels matched as a subset), 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_run_moves_the_counters_and_histograms(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("metrics")
    await service.create_workflow(chain(slug, 2))
    before = (await service.http.get("/metrics")).text
    llm.enqueue(ok("a", tokens_in=100, tokens_out=10), ok("b", tokens_in=200, tokens_out=20))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "completed"

    after = await service.http.get("/metrics")

    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert _value(text, "promptpilot_runs_started_total", workflow=slug) == 1
    assert _value(text, "promptpilot_runs_finished_total", workflow=slug,
                  status="completed") == 1
    model = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o-mini"}
    tokens = _value(text, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", **model)
    assert tokens - _value(before, "gen_ai_client_token_usage_sum",
                           gen_ai_token_type="input", **model) == 300
    calls = _value(text, "gen_ai_client_operation_duration_seconds_count", **model)
    assert calls - _value(before, "gen_ai_client_operation_duration_seconds_count",
                          **model) == 2
    assert _value(text, "promptpilot_step_duration_seconds_count", kind="llm") >= 2
    assert re.search(r"^promptpilot_llm_cost_usd_total\{", text, re.M)


async def test_metrics_need_a_key_from_outside_localhost(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.url) as http:
        local = await http.get("/metrics")
        outside = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        keyed = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9",
                                                     "Authorization": f"Bearer {DEV_KEY}"})
    assert local.status_code == 200
    assert outside.status_code == 401
    assert keyed.status_code == 200


async def test_the_worker_serves_its_metrics_on_its_port() -> None:
    port = free_port()
    serve_metrics(port)
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert "# HELP promptpilot_runs_started_total" in response.text
    assert "# HELP gen_ai_client_token_usage" in response.text


async def test_the_worker_serves_the_temporal_sdks_own_metrics(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("sdk-metrics")
    await service.create_workflow(chain(slug, 1))
    assert (await service.run(slug, {"topic": "x"})).json()["run"]["status"] == "completed"
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{_SDK_PORT[0]}/metrics")
    assert response.status_code == 200
    assert "temporal_workflow_task_execution_latency" in response.text
    assert "temporal_activity_execution_latency" in response.text


def test_the_grafana_dashboard_reads_metrics_that_exist() -> None:
    import json
    from pathlib import Path

    import activities.metrics as ours

    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json")
                           .read_text())
    assert dashboard["uid"] == "promptpilot"
    assert dashboard["schemaVersion"] >= 36
    from prometheus_client import Counter, Histogram

    names = {next(iter(m.describe())).name for m in vars(ours).values()
             if isinstance(m, Counter | Histogram)}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) == 8
    for expr in exprs:
        used = re.findall(r"rate\(([a-z_]+)\[", expr)  # the series each panel reads
        assert used, expr
        for name in used:
            assert any(name.startswith(n) for n in names), (name, names)
