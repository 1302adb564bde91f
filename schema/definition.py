"""The workflow definition DSL: a workflow's slug, typed variables and steps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schema.base import CamelModel
from schema.bounds import VersionNumber

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
VariableType = Literal["string", "number", "integer", "boolean", "object", "array"]


class RetryConfig(CamelModel):
    """Per-step retry policy; becomes a Temporal RetryPolicy."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    backoff_coefficient: float = Field(default=2.0, ge=1, le=10)
    maximum_interval_seconds: float = Field(default=60.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _interval_order(self) -> RetryConfig:
        if self.maximum_interval_seconds < self.initial_interval_seconds:
            raise ValueError("maximumIntervalSeconds must be >= initialIntervalSeconds")
        return self


# LLM steps without retryConfig: up to 5 attempts. Retryable failures (429, 5xx, 529,
# timeouts, connection errors, unreadable responses) wait Retry-After / retry-after-ms when
# the provider sends one, else exponential backoff with full jitter, uniform(0, min(30 s,
# 1 s * 2**(attempt-1))), passed as next_retry_delay (Temporal has no jitter knob). 400, 401,
# 403, 404, 422, missing keys, budget and schema failures (after repairs) never retry.
DEFAULT_LLM_RETRY = RetryConfig(
    max_attempts=5, initial_interval_seconds=1.0, backoff_coefficient=2.0,
    maximum_interval_seconds=30.0,
)
DEFAULT_TOOL_RETRY = RetryConfig(max_attempts=3)
DEFAULT_TRANSFORM_RETRY = RetryConfig(max_attempts=3)


class Variable(CamelModel):
    """A typed workflow input: name, type, required, default, sample value."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: VariableType = "string"
    required: bool = False
    default: Any = None
    description: str | None = None
    sample_value: Any = None


class _StepBase(CamelModel):
    id: str = Field(pattern=STEP_ID_PATTERN)
    name: str | None = None
    input_mapping: dict[str, str] = Field(default_factory=dict)
    retry_config: RetryConfig | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)
    when: str | None = Field(default=None, min_length=1)
    """A JMESPath guard over the context; the step is recorded `skipped` when it is falsy."""

    @property
    def label(self) -> str:
        """A human name for logs and summaries."""
        return self.name or self.id


class ModelChoice(CamelModel):
    """One model of a multi-model llm step."""

    provider: str | None = None
    model: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


DEFAULT_REPAIR_ATTEMPTS = 1
"""Re-prompts with the validation errors when an answer fails ``outputSchema``."""


class LlmStep(_StepBase):
    """Calls a model with rendered prompts.

    Either ``model`` (the single-model form) or ``models`` with ``mode`` (parallel
    fans out to every model, fallback tries them in order), never both.
    """

    type: Literal["llm"]
    model: str | None = Field(default=None, min_length=1)
    provider: str | None = None
    models: list[ModelChoice] | None = Field(default=None, min_length=1, max_length=8)
    mode: Literal["parallel", "fallback"] = "fallback"
    prompt_system: str | None = None
    prompt_user: str | None = Field(default=None, min_length=1)
    prompt_id: str | None = Field(default=None, pattern=SLUG_PATTERN)
    """A stored prompt (slug) used instead of inline prompts; resolved when a run starts."""
    prompt_version: VersionNumber | None = None
    output_schema: dict[str, Any] | None = None
    repair_attempts: int = Field(default=DEFAULT_REPAIR_ATTEMPTS, ge=0, le=5)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)

    @model_validator(mode="after")
    def _one_model_form(self) -> LlmStep:
        if (self.model is None) == (self.models is None):
            raise ValueError("give either 'model' or 'models', not both and not neither")
        if self.models is not None and self.provider is not None:
            raise ValueError("'provider' belongs inside each entry of 'models'")
        return self

    def targets(self) -> list[ModelChoice]:
        """The models to call, in order; the single-model form is a list of one."""
        if self.models is not None:
            return [
                m.model_copy(update={"temperature": m.temperature if m.temperature is not None
                                     else self.temperature,
                                     "max_tokens": m.max_tokens or self.max_tokens})
                for m in self.models
            ]
        return [ModelChoice(provider=self.provider, model=self.model or "",
                            temperature=self.temperature, max_tokens=self.max_tokens)]


class ToolStep(_StepBase):
    """Runs a registered tool with mapped arguments."""

    type: Literal["tool"]
    tool_name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class TransformStep(_StepBase):
    """Passes mapped inputs through, or reshapes them with a JMESPath expression."""

    type: Literal["transform"]
    expression: str | None = None


class ConditionStep(_StepBase):
    """Evaluates a JMESPath expression over the context and jumps to `then` or `else`.

    Without a target for the chosen side the run goes on with the next step; the steps a
    jump passes over are recorded `skipped`.
    """

    type: Literal["condition"]
    expression: str = Field(min_length=1)
    then: str | None = None
    else_: str | None = Field(default=None, alias="else")


class ParallelStep(_StepBase):
    """Runs branches of steps concurrently; output: the branches' last outputs."""

    type: Literal["parallel"]
    branches: list[list[Step]] | dict[str, list[Step]] = Field(min_length=1, max_length=20)
    fail_fast: bool = False

    def named_branches(self) -> list[tuple[str, list[Step]]]:
        """Branches with their names (list branches are named by position)."""
        if isinstance(self.branches, dict):
            return list(self.branches.items())
        return [(str(i), b) for i, b in enumerate(self.branches)]


class MapStep(_StepBase):
    """Runs `steps` for every item of the list at `items`, in child workflows of batches."""

    type: Literal["map"]
    items: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1, max_length=50)
    concurrency: int = Field(default=10, ge=1, le=500)
    batch_size: int = Field(default=50, ge=1, le=500)


class ApprovalStep(_StepBase):
    """Waits for a person to approve or reject (an update), with an optional timeout."""

    type: Literal["approval"]
    message: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=30 * 86400)
    on_timeout: Literal["approve", "reject", "fail"] = "fail"
    on_reject: Literal["fail", "continue"] = "fail"


class WorkflowStep(_StepBase):
    """Runs another stored workflow as a child run; its mapped inputs are the child's input."""

    type: Literal["workflow"]
    workflow_slug: str = Field(pattern=SLUG_PATTERN)
    version: VersionNumber | None = None


AGENT_MAX_TURNS = 50
"""The most turns an agent step may ask for (a larger ``maxTurns`` is refused at save, 422)."""


class AgentStep(_StepBase):
    """A model that chooses tools for several turns, then answers (README: Agent steps).

    ``tools``: registry tool names, ``workflow:<slug>`` (a child run) or ``mcp:<server>`` /
    ``mcp:<server>/<tool>``; a tool the list does not name is never run.
    """

    type: Literal["agent"]
    model: str = Field(min_length=1)
    provider: str | None = None
    prompt_system: str | None = None
    prompt_user: str = Field(min_length=1)
    tools: list[str] = Field(default_factory=list, max_length=64)
    max_turns: int = Field(default=8, ge=1, le=AGENT_MAX_TURNS)
    allowed_hosts: list[str] | None = None
    """Hosts ``http_request`` may reach from this agent (required when it lists the tool)."""
    output_schema: dict[str, Any] | None = None
    repair_attempts: int = Field(default=DEFAULT_REPAIR_ATTEMPTS, ge=0, le=5)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


Step = Annotated[
    LlmStep | ToolStep | TransformStep | ConditionStep | ParallelStep | MapStep | ApprovalStep
    | WorkflowStep | AgentStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("llm", "tool", "transform", "condition", "parallel", "map", "approval", "workflow",
              "agent")
ParallelStep.model_rebuild()
MapStep.model_rebuild()


def nested_steps(step: Step) -> list[Step]:
    """Steps that live inside a parallel step's branches, recursively (not a map's)."""
    if not isinstance(step, ParallelStep):
        return []
    found: list[Step] = []
    for _, branch in step.named_branches():
        for inner in branch:
            found += [inner, *nested_steps(inner)]
    return found


class WorkflowDefinition(CamelModel):
    """A whole workflow: its slug (`id`, or `slug` as the URLs call it), variables and steps."""

    id: str = Field(pattern=SLUG_PATTERN)
    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)
    """The same value as `id` (what every URL and response calls it); either may be given."""
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    variables: list[Variable] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1, max_length=2000)
    max_cost_usd: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _id_from_slug(cls, data: Any) -> Any:
        # A definition may name itself by `slug` alone: that is its id.
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("slug"), str):
            return {**data, "id": data["slug"]}
        return data

    @field_validator("slug")
    @classmethod
    def _slug_is_id(cls, slug: str | None, info: ValidationInfo) -> str | None:
        given = info.data.get("id")
        if slug is not None and given is not None and slug != given:
            raise ValueError(f"slug '{slug}' (/slug) and id '{given}' (/id) differ: they name "
                             "the same thing, give one or make them equal")
        return slug

    def step_index(self, step_id: str) -> int:
        """Position of a step; raises KeyError when it is not defined."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)
