"""The ``agent_turn`` activity: one model turn of an agent step, with tools offered.

OpenAI (and compatible servers) through Chat Completions ``tools`` / ``tool_calls``; Anthropic
through Messages ``tools`` / ``tool_use`` / ``tool_result`` blocks; both on the providers' own
SDK clients (``LlmActivities.provider``). The conversation arrives compact
(``AgentMessage``) and is rendered into the provider's shape here. A final answer is checked
against ``outputSchema`` with the llm steps' repair loop (re-prompt with the problems).
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import openai
from anthropic.types import ToolUseBlock
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm import LlmActivities, _heartbeating
from activities.log_context import working_on
from activities.mcp_client import McpTool, McpUnavailable, ToolLists, parse_entry
from activities.pricing import price
from activities.providers import errors
from activities.providers.anthropic_provider import (
    DEFAULT_MAX_TOKENS,
    SCHEMA_INSTRUCTION,
    AnthropicProvider,
)
from activities.providers.anthropic_provider import read_stream as read_anthropic_stream
from activities.providers.openai_provider import STREAM_PARAMS, OpenAIProvider, completion_of
from activities.providers.openai_provider import read_stream as read_openai_stream
from activities.providers.validation import validated_output
from activities.repair import REPAIR_INSTRUCTION
from activities.streaming import TextStream
from activities.tools.registry import get_tool
from schema.activities import (
    AgentMessage,
    AgentTool,
    AgentToolCall,
    AgentTurnRequest,
    AgentTurnResult,
)
from schema.errors import ErrorType

_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def tool_parameters(tool: AgentTool) -> tuple[str, dict[str, Any]]:
    """(description, JSON Schema of the arguments) of one offered tool."""
    if tool.parameters is not None:
        return tool.description, tool.parameters
    spec = get_tool(tool.entry)
    if spec is None:
        return tool.description, _ANY_OBJECT
    return spec.description, spec.input_schema()


def _arguments(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"_value": value}


def openai_messages(request: AgentTurnRequest) -> list[dict[str, Any]]:
    """The compact conversation as Chat Completions messages."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.role == "assistant":
            msg: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                msg["tool_calls"] = [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for c in m.tool_calls]
            out.append(msg)
        else:
            out.append({"role": "tool", "tool_call_id": m.call_id or "", "content": m.text})
    return out


def anthropic_messages(request: AgentTurnRequest) -> list[dict[str, Any]]:
    """The compact conversation as Messages content blocks (tool results grouped into the
    user message that follows the assistant's tool_use blocks)."""
    out: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.text:
                blocks.append({"type": "text", "text": m.text})
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                       for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            block = {"type": "tool_result", "tool_use_id": m.call_id or "", "content": m.text,
                     "is_error": m.is_error}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
    return out


class AgentActivities:
    """Agent turns on the llm activities' provider clients (built once, reused)."""

    def __init__(self, llm: LlmActivities) -> None:
        self.llm = llm
        self._mcp_tools = ToolLists()

    async def _server_tools(self, server: str) -> list[McpTool]:
        """A server's tools, listed at most once a minute per worker."""
        try:
            return await self._mcp_tools.get(self.llm.settings.mcp, server)
        except McpUnavailable as exc:
            raise ApplicationError(str(exc), type=ErrorType.TOOL_FAILED) from exc

    async def _offered(self, offered: list[AgentTool]) -> list[tuple[str, str, dict[str, Any]]]:
        """(name, description, schema) of every tool the model may call; an ``mcp:<server>``
        entry offers each tool of that server as ``mcp__<server>__<tool>``."""
        tools: list[tuple[str, str, dict[str, Any]]] = []
        for tool in offered:
            if not tool.entry.startswith("mcp:"):
                tools.append((tool.name, *tool_parameters(tool)))
                continue
            server, only = parse_entry(tool.entry)
            for found in await self._server_tools(server):
                if only is None or found.name == only:
                    tools.append((f"mcp__{server}__{found.name}", found.description,
                                  found.input_schema))
        return tools

    @activity.defn(name="agent_turn")
    async def turn(self, request: AgentTurnRequest) -> AgentTurnResult:
        """One turn: the model's tool calls, or its final answer (checked against the
        schema, repaired up to ``repairAttempts`` times)."""
        with working_on(request.run_id, request.step_id):
            started = time.perf_counter()
            result = AgentTurnResult(attempt=activity.info().attempt)
            current = request
            for repair in range(request.repair_attempts + 1):
                # Heartbeats while the model answers: a lost worker shows in seconds.
                text, calls, usage = await _heartbeating(self._call(current, repair))
                result.tokens_in += usage[0]
                result.tokens_out += usage[1]
                result.cached_tokens += usage[2]
                result.text, result.tool_calls = text, calls
                if calls or request.output_schema is None:
                    result.output = None if calls else text
                    break
                try:
                    result.output = validated_output(text, request.output_schema)
                    break
                except ApplicationError as exc:
                    if repair >= request.repair_attempts:
                        raise
                    problems = exc.message
                    current = current.model_copy(update={"messages": [
                        *current.messages, AgentMessage(role="assistant", text=text),
                        AgentMessage(role="user", text=REPAIR_INSTRUCTION.format(
                            answer=text[:4000], problems=problems))]})
            result.cost, warnings = price(request.provider, request.model, result.tokens_in,
                                          result.tokens_out, result.cached_tokens)
            result.warnings = warnings
            result.latency_ms = (time.perf_counter() - started) * 1000
            if self.llm.records is not None:
                await self.llm.records.record_turn(request, result)
            return result

    async def _call(self, request: AgentTurnRequest, repair: int = 0,
                    ) -> tuple[str, list[AgentToolCall], tuple[int, int, int]]:
        provider = self.llm.provider(request.provider)
        tools = await self._offered(request.tools)
        live = self.llm.streams.open(request.run_id, request.step_id, activity.info().attempt,
                                     turn=request.turn, **({"repair": repair} if repair else {}))
        try:
            if isinstance(provider, OpenAIProvider):
                return await _openai_turn(provider, request, tools, live)
            if isinstance(provider, AnthropicProvider):
                return await _anthropic_turn(provider, request, tools, live)
        finally:
            if live is not None:
                await live.close()
        raise ApplicationError(
            f"provider '{request.provider}' does not support agent steps (tool calls): use an "
            "OpenAI, OpenAI-compatible or Anthropic model", type=ErrorType.PROVIDER_BAD_REQUEST,
            non_retryable=True)


Tools = list[tuple[str, str, dict[str, Any]]]
TurnAnswer = tuple[str, list[AgentToolCall], tuple[int, int, int]]


async def _openai_turn(provider: OpenAIProvider, request: AgentTurnRequest, tools: Tools,
                       live: TextStream | None) -> TurnAnswer:
    params: dict[str, Any] = {"model": request.model, "messages": openai_messages(request)}
    if tools:
        params["tools"] = [{"type": "function", "function": {
            "name": name, "description": about, "parameters": schema}}
            for name, about, schema in tools]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_tokens is not None:
        params["max_completion_tokens"] = request.max_tokens
    with errors.sdk_errors(provider.name, openai):
        if live is not None and provider.streams:
            streamed = await read_openai_stream(
                provider.name, await provider.client.chat.completions.create(
                    **params, **STREAM_PARAMS), live.write)
            done = completion_of(streamed.text, streamed.usage)
            calls = [AgentToolCall(id=c.id, name=c.name, arguments=_arguments(c.arguments))
                     for _, c in sorted(streamed.calls.items())]
        else:
            response = await provider.client.chat.completions.create(**params)
            try:
                message = response.choices[0].message
            except (AttributeError, IndexError, TypeError) as exc:
                raise errors.bad_response(provider.name, "no choices in the completion") from exc
            done = completion_of(message.content or "", response.usage)
            calls = [AgentToolCall(id=c.id, name=c.function.name,
                                   arguments=_arguments(c.function.arguments))
                     for c in (message.tool_calls or []) if c.type == "function"]
    return done.text, calls, (done.tokens_in, done.tokens_out, done.cached_tokens)


async def _anthropic_turn(provider: AnthropicProvider, request: AgentTurnRequest, tools: Tools,
                          live: TextStream | None) -> TurnAnswer:
    system = request.system or ""
    if request.output_schema is not None:
        instruction = SCHEMA_INSTRUCTION + json.dumps(request.output_schema)
        system = f"{system}\n\n{instruction}" if system else instruction
    params: dict[str, Any] = {"model": request.model, "messages": anthropic_messages(request),
                              "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    if system:
        params["system"] = system
    if tools:
        params["tools"] = [{"name": name, "description": about, "input_schema": schema}
                           for name, about, schema in tools]
    if request.temperature is not None:
        params["extra_body"] = {"temperature": request.temperature}
    with errors.sdk_errors(provider.name, anthropic):
        reply = (await read_anthropic_stream(provider.name, provider.client, params, live.write)
                 if live is not None else await provider.client.messages.create(**params))
    done = provider.completion(reply)
    calls = [AgentToolCall(id=b.id, name=b.name,
                           arguments=b.input if isinstance(b.input, dict) else {})
             for b in reply.content if isinstance(b, ToolUseBlock)]
    return done.text, calls, (done.tokens_in, done.tokens_out, done.cached_tokens)
