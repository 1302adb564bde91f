"""Spans of our own inside the SDK's activity spans (README: Traces).

The SDK's ``TracingInterceptor`` gives each activity a ``RunActivity:<name>`` span in the
run's trace; this interceptor, placed inside it, adds a span per step (``step <id>``) and,
for a model call, a ``chat <model>`` span carrying the OpenTelemetry GenAI semantic
conventions read from the activity's request and result models; for a tool call, the tool's
name and target host. Prompts and outputs are attributes only with ``capture_content``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, Status, StatusCode, Tracer, get_current_span
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from schema.activities import LlmRequest, LlmResult, ToolRequest, ToolResult
from schema.run import RunRecord, StepRecords

_KINDS = {"llm_call": "llm", "tool_call": "tool", "transform_step": "transform"}


class StepSpans(Interceptor):
    """Worker interceptor: step, LLM and tool spans from the activities' own models."""

    def __init__(self, tracer: Tracer, *, capture_content: bool = False) -> None:
        self.tracer = tracer
        self.capture_content = capture_content

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap every activity."""
        return _Inbound(next, self)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, root: StepSpans) -> None:
        super().__init__(next)
        self.root = root

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        request = input.args[0] if input.args else None
        _record_trace_id(request)
        kind = _KINDS.get(name)
        step_id = getattr(request, "step_id", None)
        if kind is None or not isinstance(step_id, str):
            return await self.next.execute_activity(input)
        tracer = self.root.tracer
        with tracer.start_as_current_span(f"step {step_id}", attributes={
                "step.id": step_id, "step.type": kind,
                "promptpilot.run_id": getattr(request, "run_id", "")}) as step:
            if isinstance(request, LlmRequest):
                with tracer.start_as_current_span(f"chat {request.model}") as span:
                    _llm_request(span, request, self.root.capture_content)
                    result = await _run(self.next, input, span)
                    if isinstance(result, LlmResult):
                        _llm_result(span, result, self.root.capture_content)
                    return result
            if isinstance(request, ToolRequest):
                with tracer.start_as_current_span(f"execute_tool {request.tool_name}") as span:
                    _tool_request(span, request, self.root.capture_content)
                    result = await _run(self.next, input, span)
                    if isinstance(result, ToolResult) and result.trace.error:
                        span.set_status(Status(StatusCode.ERROR, result.trace.error[:200]))
                    return result
            return await _run(self.next, input, step)


def _record_trace_id(request: Any) -> None:
    """A run record written by the mirror carries the trace it is in (the run's trace)."""
    record = request.run if isinstance(request, StepRecords) else request
    if isinstance(record, RunRecord) and record.trace_id is None:
        context = get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")


async def _run(next: ActivityInboundInterceptor, input: ExecuteActivityInput, span: Span) -> Any:
    try:
        return await next.execute_activity(input)
    except BaseException as e:
        span.set_status(Status(StatusCode.ERROR, type(e).__name__))
        span.set_attribute("error.type", type(e).__name__)
        raise


def _llm_request(span: Span, request: LlmRequest, capture: bool) -> None:
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.request.model", request.model)
    if request.provider:
        span.set_attribute("gen_ai.provider.name", request.provider)
    if request.temperature is not None:
        span.set_attribute("gen_ai.request.temperature", request.temperature)
    if request.max_tokens is not None:
        span.set_attribute("gen_ai.request.max_tokens", request.max_tokens)
    if capture:
        messages = ([{"role": "system", "content": request.system}] if request.system else []) \
            + [{"role": "user", "content": request.user}]
        span.set_attribute("gen_ai.input.messages", json.dumps(messages))


def _llm_result(span: Span, result: LlmResult, capture: bool) -> None:
    span.set_attribute("gen_ai.provider.name", result.provider)
    span.set_attribute("gen_ai.response.model", result.model)
    span.set_attribute("gen_ai.usage.input_tokens", result.tokens_in)
    span.set_attribute("gen_ai.usage.output_tokens", result.tokens_out)
    if result.cost is not None:
        span.set_attribute("promptpilot.cost_usd", result.cost)
    span.set_attribute("promptpilot.attempt", result.attempt)
    if capture:
        span.set_attribute("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "content": result.text}]))


def _tool_request(span: Span, request: ToolRequest, capture: bool) -> None:
    span.set_attribute("gen_ai.operation.name", "execute_tool")
    span.set_attribute("gen_ai.tool.name", request.tool_name)
    url = request.args.get("url")
    if isinstance(url, str):
        host = urlsplit(url).hostname
        if host:
            span.set_attribute("server.address", host)
    if capture:
        span.set_attribute("gen_ai.tool.call.arguments", json.dumps(request.args, default=str))
