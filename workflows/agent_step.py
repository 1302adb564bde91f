"""An agent step: the model chooses tools for up to ``maxTurns`` turns, then answers.
Deterministic.

Every model turn is the ``agent_turn`` activity (its retry policy, a heartbeat timeout); every
tool call is the ``tool_call`` activity, or a child run for ``workflow:<slug>``; the calls of
one turn run concurrently. A worker lost mid-agent resumes from the history: finished turns and
tool calls are replayed, never made again.

- A tool the step does not list is refused (the model reads "tool X is not available to this
  step" as the result) and never runs; ``http_request`` only reaches ``allowedHosts``, and a
  preview skips its writes.
- A tool's failure goes back to the model as the tool's result, up to ``MAX_TOOL_ERRORS`` per
  step; then the step fails ``tool_failed``.
- ``maxTurns`` model turns without a final answer fail the step ``agent_max_turns``.
- Every model turn is ``workflows.agent_turn.model_turn``: under a run budget it first reserves
  its worst case and settles at what it was billed; with ``llmCache: use`` an identical turn
  recorded before answers it (cost 0, the turn's ``cachedFrom`` naming it). Tool calls are
  always made.
- History stays bounded: the conversation travels compact (``AgentMessage``), each tool result
  cut to ``RESULT_CHARS`` in it (the record keeps the full result).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from schema.activities import (
        AgentMessage,
        AgentTool,
        AgentToolCall,
        AgentTurnRequest,
        ToolRequest,
        ToolResult,
    )
    from schema.definition import (
        DEFAULT_TOOL_RETRY,
        AgentStep,
        WorkflowStep,
    )
    from schema.errors import ErrorType
    from schema.model_ref import resolve_model
    from schema.run import StepError, StepRecord

from definition.templates import TemplateError, render
from workflows import child
from workflows.agent_turn import TurnStopped, model_turn
from workflows.options import retry_policy
from workflows.outcome import OutcomeFailed, StepOutcome
from workflows.scope import Runner

MAX_TOOL_ERRORS = 3
"""Tool failures an agent step passes back to its model before the step fails."""
RESULT_CHARS = 16_000
"""Longest tool result (as JSON text) the conversation carries to the next turn."""


def model_name(entry: str) -> str:
    """The name the model calls a tool by (providers allow [A-Za-z0-9_-])."""
    if entry.startswith("workflow:"):
        return "workflow__" + entry.removeprefix("workflow:")
    return entry.replace(":", "__").replace("/", "__")


def offered(step: AgentStep) -> list[AgentTool]:
    """The tools offered to the model (registry schemas filled in by the activity)."""
    tools = []
    for entry in step.tools:
        if entry.startswith("workflow:"):
            slug = entry.removeprefix("workflow:")
            tools.append(AgentTool(
                name=model_name(entry), entry=entry,
                description=f"Runs the stored workflow '{slug}'; the arguments are its inputs.",
                parameters={"type": "object", "additionalProperties": True}))
        else:
            tools.append(AgentTool(name=model_name(entry), entry=entry))
    return tools


def _render(name: str, source: str, mapped: dict[str, Any], context: dict[str, Any],
            runner: Runner) -> str:
    try:
        return render(source, mapped, context, runner.scope.limits)
    except TemplateError as exc:
        raise exc.renamed(name) from None


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + " …(cut)"


def _host_allowed(url: Any, hosts: list[str]) -> bool:
    if not isinstance(url, str):
        return False
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h.lower() or host.endswith("." + h.lower()) for h in hosts)


class _Agent:
    def __init__(self, runner: Runner, step: AgentStep, record: StepRecord) -> None:
        self.runner, self.step, self.record = runner, step, record
        self.scope = runner.scope
        self.tools = {t.name: t for t in offered(step)}
        self.errors = 0
        self.warnings: list[str] = []

    async def call_tool(self, turn: int, call: AgentToolCall) -> dict[str, Any]:
        """One tool call's entry in the turn: arguments, result or error, duration."""
        started = workflow.now()
        entry: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
        tool = self.tools.get(call.name) or self._server_tool(call.name)
        try:
            if tool is None:
                entry["refused"] = True
                raise _ToolError(f"tool {call.name} is not available to this step")
            entry["tool"] = tool.entry
            entry["result"] = await self._run(turn, call, tool)
        except _ToolError as exc:
            entry["error"] = str(exc)
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):
                raise
            cause = exc.cause
            entry["error"] = cause.message if isinstance(cause, ApplicationError) else str(exc)
            entry["errorType"] = cause.type if isinstance(cause, ApplicationError) else None
        except OutcomeFailed as exc:
            entry["error"] = exc.error.message
            entry["errorType"] = str(exc.error.type)
        entry["durationMs"] = (workflow.now() - started).total_seconds() * 1000
        return entry

    def _server_tool(self, name: str) -> AgentTool | None:
        """``mcp__<server>__<tool>`` when the step lists the whole server ``mcp:<server>``."""
        for entry in self.step.tools:
            prefix = model_name(entry) + "__"
            if entry.startswith("mcp:") and "/" not in entry and name.startswith(prefix) \
                    and len(name) > len(prefix):
                return AgentTool(name=name, entry=f"{entry}/{name.removeprefix(prefix)}")
        return None

    async def _run(self, turn: int, call: AgentToolCall, tool: AgentTool) -> Any:
        if tool.entry.startswith("workflow:"):
            return await self._child(call, tool.entry.removeprefix("workflow:"))
        args = dict(call.arguments)
        if tool.entry == "http_request":
            if not _host_allowed(args.get("url"), self.step.allowed_hosts or []):
                raise _ToolError(f"http_request may only reach {self.step.allowed_hosts} "
                                 "from this step")
            method = str(args.get("method") or "GET").upper()
            if not self.scope.side_effects and method not in ("GET", "HEAD"):
                raise _ToolError(f"a {method} is a side effect: a preview does not send it")
        result: ToolResult = await workflow.execute_activity(
            "tool_call",
            ToolRequest(run_id=self.scope.run_id, step_id=self.step.id, tool_name=tool.entry,
                        args=args,
                        call_key=f"{self.scope.id_prefix}/{self.step.id}/{turn}/{call.id}"),
            result_type=ToolResult, start_to_close_timeout=timedelta(
                seconds=self.step.timeout_seconds or 60),
            retry_policy=retry_policy(DEFAULT_TOOL_RETRY),
            summary=f"{self.step.id} · turn {turn} · tool {tool.entry}")
        return result.output

    async def _child(self, call: AgentToolCall, slug: str) -> Any:
        as_step = WorkflowStep(id=self.step.id, type="workflow", workflow_slug=slug)
        shadow = self.record.model_copy(deep=True)
        outcome = await child.run_child(self.runner, as_step, call.arguments, {}, shadow)
        self.child_cost = (getattr(self, "child_cost", 0.0) or 0.0) + (outcome.cost or 0.0)
        # The agent's own record stays the one the runner writes.
        self.runner.steps[self.step.id] = self.record
        return outcome.output


class _ToolError(Exception):
    pass


def _outcome(agent: _Agent, turns: list[dict[str, Any]], output: Any,
             rendered: dict[str, Any], provider: str, model: str) -> StepOutcome:
    costs = [t.get("cost") for t in turns]
    cost = None if any(c is None for c in costs) else sum(float(c or 0.0) for c in costs)
    child_cost = getattr(agent, "child_cost", 0.0)
    if cost is not None:
        cost += child_cost
    return StepOutcome(
        output=output, attempts=1,
        tokens_in=sum(int(t.get("tokensIn") or 0) for t in turns),
        tokens_out=sum(int(t.get("tokensOut") or 0) for t in turns),
        cached_tokens=sum(int(t.get("cachedTokens") or 0) for t in turns),
        cost=cost, model=model, provider=provider, rolls_up=True, warnings=agent.warnings,
        rendered={**rendered, "turns": turns})


async def run_agent_step(runner: Runner, step: AgentStep, mapped: dict[str, Any],
                         context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Turns until the model answers without calling a tool; see the module docstring."""
    scope = runner.scope
    system = _render("promptSystem", step.prompt_system, mapped, context, runner) \
        if step.prompt_system else None
    user = _render("promptUser", step.prompt_user, mapped, context, runner)
    provider, model = resolve_model(step.model, step.provider)
    agent = _Agent(runner, step, record)
    rendered: dict[str, Any] = {"system": system, "user": user}
    messages = [AgentMessage(role="user", text=user)]
    turns: list[dict[str, Any]] = []
    for turn in range(1, step.max_turns + 1):
        request = AgentTurnRequest(
            run_id=scope.run_id, step_id=step.id, turn=turn, provider=provider, model=model,
            system=system, messages=messages, tools=list(agent.tools.values()),
            output_schema=step.output_schema, repair_attempts=step.repair_attempts,
            temperature=step.temperature, max_tokens=step.max_tokens,
            environment=scope.environment)
        try:
            answered = await model_turn(scope, step, request)
        except TurnStopped as stop:
            raise OutcomeFailed(stop.error, _outcome(agent, turns, None, rendered, provider,
                                                     model)) from None
        result = answered.result
        entry: dict[str, Any] = {
            "turn": turn, "model": f"{provider}/{model}", "tokensIn": result.tokens_in,
            "tokensOut": result.tokens_out, "cachedTokens": result.cached_tokens,
            "cost": result.cost, "latencyMs": result.latency_ms, "text": result.text,
            "toolCalls": []}
        if answered.cached_from is not None:
            entry["cachedFrom"] = answered.cached_from
            agent.warnings += result.warnings
        turns.append(entry)
        if not result.tool_calls:
            return _outcome(agent, turns, result.output, rendered, provider, model)
        calls = list(await asyncio.gather(
            *(agent.call_tool(turn, call) for call in result.tool_calls)))
        entry["toolCalls"] = calls
        messages = [*messages, AgentMessage(role="assistant", text=result.text,
                                            tool_calls=result.tool_calls)]
        for call in calls:
            failed = "error" in call
            if failed and not call.get("refused"):
                agent.errors += 1
            messages.append(AgentMessage(
                role="tool", call_id=call["id"], is_error=failed,
                text=(f"error: {call['error']}" if failed else _text(call.get("result")))))
        if agent.errors > MAX_TOOL_ERRORS:
            raise OutcomeFailed(StepError(
                type=ErrorType.TOOL_FAILED, message=(
                    f"agent {step.id}: {agent.errors} tool calls failed (more than "
                    f"{MAX_TOOL_ERRORS}); last: {calls[-1].get('error')}")),
                _outcome(agent, turns, None, rendered, provider, model))
    raise OutcomeFailed(StepError(
        type=ErrorType.AGENT_MAX_TURNS, message=(
            f"agent {step.id} made {step.max_turns} turns (maxTurns) without a final answer")),
        _outcome(agent, turns, None, rendered, provider, model))
