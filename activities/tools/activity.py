"""The ``tool_call`` activity: look a tool up, validate its arguments, run it and trace it."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.expected_failures import is_expected
from activities.log_context import working_on
from activities.mcp_client import McpUnavailable, call_tool, parse_entry
from activities.self_mirror import SelfMirror, tool_completed
from activities.tools.registry import ToolContext, ToolSpec, get_tool, known_tools
from promptpilot.settings import Settings
from schema.activities import ToolRequest, ToolResult, ToolTrace
from schema.errors import ErrorType

TRACE_RESULT_CHARS = 64 * 1024
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key",
                            "x-subscription-token", "api-key"})


class ToolActivities:
    """Runs registered tools; holds the one HTTP client they share."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                 mirror: SelfMirror | None = None):
        self._mirror = mirror or SelfMirror(None)
        # Tools decide about redirects themselves (http_request follows them by hand,
        # vetting every hop: see http_request).
        self._context = ToolContext(settings, httpx.AsyncClient(
            transport=transport, follow_redirects=False,
            timeout=settings.tools.http_timeout_seconds,
        ))

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._context.http.aclose()

    @activity.defn(name="tool_call")
    async def call(self, request: ToolRequest) -> ToolResult:
        """Run one tool call; errors are ApplicationErrors typed with schema.errors.ErrorType.
        With ``request.mirror``, the step's rows are written here (``SelfMirror``)."""
        own = request.mirror
        await self._mirror.started(own, activity.info().attempt)
        result = await self._run(request)
        if own is not None:
            result.finished_at = datetime.now(UTC)
            result.mirrored = await self._mirror.finished(own, tool_completed(own, result))
        return result

    async def _run(self, request: ToolRequest) -> ToolResult:
        if request.tool_name.startswith("mcp:"):
            with working_on(request.run_id, request.step_id):
                return await self._mcp(request)
        spec = get_tool(request.tool_name)
        if spec is None:
            raise ApplicationError(
                f"unknown tool {request.tool_name!r}; known tools: {sorted(known_tools())}",
                type=ErrorType.UNKNOWN_TOOL, non_retryable=True,
            )
        with working_on(request.run_id, request.step_id):
            return await self._call(spec, request)

    async def _mcp(self, request: ToolRequest) -> ToolResult:
        """An MCP server's tool (``mcp:<server>/<tool>``): its error is the step's, unretried."""
        server, tool = parse_entry(request.tool_name)
        started = time.perf_counter()
        if tool is None:
            raise ApplicationError(f"{request.tool_name!r} names no tool of the server",
                                   type=ErrorType.UNKNOWN_TOOL, non_retryable=True)
        try:
            output, is_error = await call_tool(self._context.settings.mcp, server, tool,
                                               request.args)
        except McpUnavailable as exc:
            raise ApplicationError(str(exc), type=ErrorType.TOOL_FAILED) from exc
        if is_error:
            raise ApplicationError(f"{request.tool_name}: {output}",
                                   type=ErrorType.TOOL_FAILED, non_retryable=True)
        trace = ToolTrace(tool_name=request.tool_name, args=_redacted(request.args),
                          result=_traced(output),
                          duration_ms=(time.perf_counter() - started) * 1000)
        return ToolResult(output=output, trace=trace, attempt=activity.info().attempt)

    async def _call(self, spec: ToolSpec, request: ToolRequest) -> ToolResult:
        args = _validate(spec, request.args)
        shown_args = _redacted(request.args)
        started = time.perf_counter()
        try:
            context = replace(self._context, call_key=request.call_key
                              or f"{request.run_id}/{request.step_id}")
            output = await spec.fn(args, context)
        except Exception as err:
            failure = _as_application_error(err)
            trace = ToolTrace(tool_name=spec.name, args=shown_args, error=failure.message,
                              duration_ms=_ms_since(started))
            # An expected failure's one line is its run's (activities.expected_failures).
            say = activity.logger.debug if is_expected(failure) else activity.logger.warning
            say("tool %s failed after %.1f ms (%s): %s", spec.name, trace.duration_ms,
                failure.type, failure.message)
            raise ApplicationError(
                failure.message, *failure.details, {"trace": trace.model_dump(mode="json")},
                type=failure.type, non_retryable=failure.non_retryable,
                next_retry_delay=failure.next_retry_delay,
            ) from err
        trace = ToolTrace(tool_name=spec.name, args=shown_args, result=_traced(output),
                          duration_ms=_ms_since(started))
        activity.logger.info("tool %s done in %.1f ms (run %s, step %s)", spec.name,
                             trace.duration_ms, request.run_id, request.step_id)
        return ToolResult(output=output, trace=trace, attempt=activity.info().attempt)


def _validate(spec: ToolSpec, raw: dict[str, Any]) -> Any:
    try:
        return spec.input_model.model_validate(raw)
    except ValidationError as err:
        problems = [
            {"field": ".".join(str(part) for part in e["loc"]) or "(args)", "message": e["msg"]}
            for e in err.errors(include_url=False, include_input=False)
        ]
        listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise ApplicationError(
            f"invalid arguments for tool {spec.name!r}: {listed}", {"fields": problems},
            type=ErrorType.TOOL_BAD_INPUT, non_retryable=True,
        ) from None


def _as_application_error(err: Exception) -> ApplicationError:
    if isinstance(err, ApplicationError):
        return err
    # An unexpected exception is a bug or an unforeseen outage: let the retry policy decide.
    return ApplicationError(f"{type(err).__name__}: {err}", type=ErrorType.TOOL_FAILED)


def _traced(output: Any) -> Any:
    """The output as the trace shows it: whole when small; a large one (a fetched page) is
    named by its size, not copied, since the step's output holds it already and each copy
    weighs on every payload the step record travels in."""
    size = len(json.dumps(output, default=str))
    if size <= TRACE_RESULT_CHARS:
        return output
    return {"omitted": f"{size:,} characters: the step's output holds them", "chars": size}


def _redacted(args: dict[str, Any]) -> dict[str, Any]:
    headers = args.get("headers")
    if not isinstance(headers, dict):
        return args
    masked = {k: "***" if str(k).lower() in SECRET_HEADERS else v for k, v in headers.items()}
    return {**args, "headers": masked}


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
