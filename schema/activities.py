"""One request and one result model per activity, so every payload is typed on both ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    model_serializer,
    model_validator,
)

from schema.base import CamelModel
from schema.run import RunRecord, StepRecord


class AttemptEntry(CamelModel):
    """One activity attempt of an llm call: the attemptLog entry shown on the step."""

    number: int
    status: Literal["completed", "failed"]
    model: str | None = None
    error_type: str | None = None
    message: str | None = None
    retryable: bool | None = None
    retry_delay_seconds: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queued_ms: float | None = None
    """How long the attempt waited for its provider's limits (README: Provider limits)."""
    cost_usd: float | None = None
    """What a failed attempt spent before it failed (its calls were billed all the same): a
    retry counts it against the call's budget, and the run's ledger settles it."""


class RepairEntry(CamelModel):
    """One structured-output repair: a re-prompt carrying the previous validation errors."""

    number: int
    reason: str
    valid: bool
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    latency_ms: float = 0.0


class StepSelfWrite(CamelModel):
    """A step's own mirror writes, made by its regular activity instead of a mirror local
    activity: ``record`` (the step's "running" record, with its input) at each attempt's
    start, then its finished form when the attempt answers."""

    record: StepRecord
    started: bool = False
    """The interpreter wrote the "running" row (with records that were waiting): the first
    attempt writes only its finished row."""
    prompt_ref: dict[str, Any] | None = None
    """An llm step's stored prompt (``rendered.promptRef``)."""

    @field_serializer("record")
    def _lean(self, value: StepRecord) -> dict[str, Any]:
        """Only what differs from the defaults travels (the activity input is kept in the
        history): reading it back gives the same record."""
        return value.model_dump(mode="json", exclude_defaults=True)


class SelfWritten(CamelModel):
    """What an activity that wrote its own step's row says of it."""

    finished_at: datetime | None = None
    """When the work finished by the activity's clock (the time its row holds)."""
    mirrored: str | None = None
    """``schema.run.record_digest`` of the finished record the activity wrote; None: it
    wrote none (the interpreter writes the record)."""


class LlmRequest(CamelModel):
    """A rendered LLM call: what the Temporal UI shows as the activity input."""

    run_id: str
    step_id: str
    provider: str
    model: str
    system: str | None = None
    user: str
    output_schema: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    repair_attempts: int = Field(default=0, ge=0)
    budget_usd: float | None = None
    """The most this call (with its repairs) may spend; refused before calling when it could
    cost more. None: no budget."""
    environment: str | None = None
    workflow_slug: str | None = None
    """Whose daily spend limits the call counts against (README: Cost and budgets)."""
    mirror: StepSelfWrite | None = None
    """The step's rows, written by the activity itself (a one-model step, no budget)."""


LLM_WORST_CASE_ACTIVITY = "llm_worst_case"
"""The local activity that prices an llm call's worst case before the run reserves it."""


LLM_RECORDED_ACTIVITY = "llm_recorded"
"""The local activity that looks an llm call up in the recorded answers (``llmCache: use``)."""


class CostEstimate(CamelModel):
    """The most one llm call could cost (None: the model has no known price), and why."""

    usd: float | None
    basis: str


class ModelUsage(CamelModel):
    """What one model call used: tokens, cost, latency, the attempt that answered, warnings."""

    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    latency_ms: float = 0.0
    attempt: int = 1
    warnings: list[str] = Field(default_factory=list)


class LlmResult(ModelUsage, SelfWritten):
    """The model's answer with usage; `output` is parsed JSON when a schema was given."""

    output: Any = None
    text: str = ""
    provider: str
    model: str
    attempt_log: list[AttemptEntry] = Field(default_factory=list)
    repairs: list[RepairEntry] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _text_once(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A text answer is its own output: it travels once."""
        data: dict[str, Any] = handler(self)
        if isinstance(self.output, str) and self.text == self.output:
            data.pop("text", None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _text_back(cls, data: Any) -> Any:
        if isinstance(data, dict) and "text" not in data and isinstance(data.get("output"), str):
            return {**data, "text": data["output"]}
        return data


class ToolRequest(CamelModel):
    """A tool invocation with its final arguments."""

    run_id: str
    step_id: str
    tool_name: str
    args: dict[str, Any] = Field(default_factory=dict)
    call_key: str | None = None
    """The same on every attempt of this call, different for every step of every run (and
    every map item): what an ``Idempotency-Key`` is derived from."""
    mirror: StepSelfWrite | None = None
    """The step's rows, written by the activity itself."""


class ToolTrace(CamelModel):
    """What a tool was called with, what it returned and how long it took."""

    tool_name: str
    args: dict[str, Any]
    result: Any = None
    error: str | None = None
    duration_ms: float


class ToolResult(SelfWritten):
    """A tool's output and its trace."""

    output: Any = None
    trace: ToolTrace
    attempt: int = 1

    @model_serializer(mode="wrap")
    def _output_once(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A trace whose result is the output itself says so instead of holding a copy (the
        activity result is kept in the history)."""
        data: dict[str, Any] = handler(self)
        if self.output is not None and self.trace.result is self.output:
            trace = {k: v for k, v in data["trace"].items() if k != "result"}
            data["trace"] = {**trace, "resultIsOutput": True}
        return data

    @model_validator(mode="before")
    @classmethod
    def _output_back(cls, data: Any) -> Any:
        trace = data.get("trace") if isinstance(data, dict) else None
        if isinstance(trace, dict) and trace.get("resultIsOutput"):
            trace = {k: v for k, v in trace.items() if k != "resultIsOutput"}
            return {**data, "trace": {**trace, "result": data.get("output")}}
        return data


class TransformRequest(CamelModel):
    """A transform over the step's mapped input."""

    run_id: str
    step_id: str
    input: Any = None
    expression: str | None = None


class TransformResult(CamelModel):
    """The reshaped value."""

    output: Any = None
    attempt: int = 1


class TransformStepRequest(TransformRequest):
    """A transform run by the interpreter as a local activity, which mirrors itself.

    ``record`` is the step's record (with its input) when the mirror is on: the activity
    writes it as completed, after ``pending`` (finished steps not yet mirrored), in one
    round trip. Local activity inputs never reach the Temporal history.
    """

    record: StepRecord | None = None
    pending: list[StepRecord] = Field(default_factory=list)
    run: RunRecord | None = None
    """The run's "running" record, when no write has carried it yet: written first."""


class TransformStepResult(TransformResult):
    """The reshaped value, when the work ran by the activity's clock, and whether the
    activity's own mirror write landed (when it did not, the interpreter writes it)."""

    started_at: datetime
    finished_at: datetime
    mirrored: bool = False


class RecordedCall(CamelModel):
    """A recorded model answer found for a call: its result and the call it came from."""

    result: LlmResult
    run_id: str
    step_id: str
    recorded_at: datetime


class RecordLookup(CamelModel):
    """What the recorded answers hold for one call: ``call`` is None on a miss."""

    call: RecordedCall | None = None


AGENT_TURN_ACTIVITY = "agent_turn"
"""One model turn of an agent step (``activities/agent.py``)."""
AGENT_RECORDED_ACTIVITY = "agent_turn_recorded"
"""The local activity that looks an agent turn up in the recorded answers (``llmCache: use``)."""


class AgentToolCall(CamelModel):
    """A tool call the model asked for: its id (the provider's), model-facing name, arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class AgentMessage(CamelModel):
    """One message of an agent's conversation, in a provider-neutral compact form:
    ``user`` (text), ``assistant`` (text and tool calls) or ``tool`` (one call's result)."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    call_id: str | None = None
    is_error: bool = False


class AgentTool(CamelModel):
    """A tool offered to the model: the name it calls, what it is, its arguments' schema."""

    name: str
    entry: str
    """The step's ``tools`` entry it comes from (``web_search``, ``workflow:<slug>``)."""
    description: str = ""
    parameters: dict[str, Any] | None = None
    """None: the activity fills in the registry tool's schema."""


class AgentTurnRequest(CamelModel):
    """One model turn: the conversation so far (compact), the tools offered."""

    run_id: str
    step_id: str
    turn: int
    provider: str
    model: str
    system: str | None = None
    messages: list[AgentMessage]
    tools: list[AgentTool] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    repair_attempts: int = 0
    temperature: float | None = None
    max_tokens: int | None = None
    environment: str | None = None
    """Whose recorded answers the turn is kept in and looked up in."""


class AgentTurnResult(ModelUsage):
    """The model's turn: tool calls to make, or the final answer (``output``)."""

    text: str = ""
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    output: Any = None


class RecordedTurn(CamelModel):
    """A recorded agent turn found for an identical one: its answer and the turn it came from."""

    result: AgentTurnResult
    run_id: str
    step_id: str
    recorded_at: datetime


class TurnLookup(CamelModel):
    """What the recorded answers hold for one agent turn: ``turn`` is None on a miss."""

    turn: RecordedTurn | None = None
