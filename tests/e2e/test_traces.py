"""Traces: one run is one trace (API start, workflow, activities) with a span per step and
the GenAI conventions on the model calls; no prompt text unless capture_content says so."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from promptpilot import logs, tracing
from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import FakeLlmServer, ok
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.ui_login import sign_in

SECRET_TOPIC = "zebra-topic-7731"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A local OTLP/HTTP receiver and a provider of this test's own exporting to it."""
    received = OtlpReceiver().start()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=f"{received.endpoint}/v1/traces")))
    tracing.configure(provider)
    yield received
    tracing.configure(None)
    provider.shutdown()
    received.stop()


@pytest.fixture
def settings(settings: Settings, receiver: OtlpReceiver) -> Settings:
    """The test settings, made after tracing is on (the service's clients take it)."""
    settings.tracing.ui_url = "http://traces.example/trace/{trace_id}"
    return settings


async def test_a_run_is_one_trace_with_a_span_per_step(
        service: Service, llm: FakeLlmServer, receiver: OtlpReceiver) -> None:
    lines = io.StringIO()
    handler = logs.configure("json", "INFO", lines)
    level = logging.getLogger().level
    slug = unique_slug("traces")
    await service.create_workflow(chain(slug, 2))
    llm.enqueue(ok("first answer", tokens_in=100, tokens_out=10),
                ok("second answer", tokens_in=200, tokens_out=20))
    try:
        run = (await service.run(slug, {"topic": SECRET_TOPIC})).json()["run"]
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    assert run["status"] == "completed"
    fetched = (await service.http.get(f"/api/workflows/runs/{run['id']}")).json()["run"]

    provider = tracing.provider()
    assert provider is not None
    provider.force_flush()
    spans = [s for s in receiver.spans
             if s.trace_id == fetched["traceId"]]
    names = [s.name for s in spans]
    assert any(n.startswith("StartWorkflow:") for n in names), names
    assert "step s1" in names, names
    assert "step s2" in names, names
    # Every span of this run shares its trace; the run's record names it.
    assert {s.trace_id for s in receiver.spans if s.attributes.get("promptpilot.run_id")
            == run["id"]} == {fetched["traceId"]}
    # The run's JSON log lines carry its trace id.
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    traced = {e["trace_id"] for e in logged if e.get("run_id") == run["id"] and e["trace_id"]}
    assert traced == {fetched["traceId"]}, logged[-3:]
    step = next(s for s in spans if s.name == "step s1")
    assert step.attributes["step.id"] == "s1"
    assert step.attributes["step.type"] == "llm"
    chat = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert len(chat) == 2
    first = next(s for s in chat if s.parent_span_id == step.span_id)
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert first.attributes["gen_ai.usage.input_tokens"] == 100
    assert first.attributes["gen_ai.usage.output_tokens"] == 10
    assert "promptpilot.cost_usd" in first.attributes
    # The inspector's run page links the trace.
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        await sign_in(browser)
        page = await browser.get(f"/ui/runs/{run['id']}")
    assert f'href="http://traces.example/trace/{fetched["traceId"]}"' in page.text
    # No prompt or output text by default.
    everything = repr([s.attributes for s in receiver.spans])
    assert SECRET_TOPIC not in everything
    assert "first answer" not in everything
