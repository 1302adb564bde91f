"""Per-step activity options: the step's retry policy, timeouts and UI summary. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from schema.definition import (
    DEFAULT_LLM_RETRY,
    DEFAULT_TOOL_RETRY,
    DEFAULT_TRANSFORM_RETRY,
    LlmStep,
    RetryConfig,
    Step,
    ToolStep,
)

# Failures that no retry can fix; activities also mark these non_retryable themselves.
NON_RETRYABLE_TYPES = [
    "provider_bad_request",
    "provider_auth",
    "provider_not_found",
    "missing_credentials",
    "unknown_provider",
    "output_schema_violation",
    "tool_not_configured",
    "tool_bad_input",
    "tool_forbidden_target",
    "unknown_tool",
    "transform_error",
    "budget_exceeded",
]


@dataclass(frozen=True)
class ActivityOptions:
    """What the interpreter hands to `execute_activity` for one step."""

    activity: str
    retry_policy: RetryPolicy
    start_to_close: timedelta
    heartbeat: timedelta | None
    summary: str


def retry_policy(config: RetryConfig) -> RetryPolicy:
    """A definition's retryConfig as a Temporal RetryPolicy."""
    return RetryPolicy(
        maximum_attempts=config.max_attempts,
        initial_interval=timedelta(seconds=config.initial_interval_seconds),
        backoff_coefficient=config.backoff_coefficient,
        maximum_interval=timedelta(seconds=config.maximum_interval_seconds),
        non_retryable_error_types=NON_RETRYABLE_TYPES,
    )


def step_options(step: Step, provider: str = "",
                 model: str | None = None) -> ActivityOptions:
    """Options for a step (the kinds that are no activity get a transform's: their retry
    config bounds the attempts counted when an activity under them fails); the summary makes
    the Temporal UI read like the definition."""
    label = f"{step.id}" if not step.name else f"{step.id} ({step.name})"
    if isinstance(step, LlmStep):
        return ActivityOptions(
            activity="llm_call",
            retry_policy=retry_policy(step.retry_config or DEFAULT_LLM_RETRY),
            start_to_close=timedelta(seconds=step.timeout_seconds or 120),
            # The LLM activity heartbeats while the request is in flight, so a lost worker
            # is noticed in seconds rather than after the whole start-to-close timeout.
            heartbeat=timedelta(seconds=10),
            summary=f"{label} · llm {provider}/{model or step.model or 'models'}".strip(),
        )
    if isinstance(step, ToolStep):
        return ActivityOptions(
            activity="tool_call",
            retry_policy=retry_policy(step.retry_config or DEFAULT_TOOL_RETRY),
            start_to_close=timedelta(seconds=step.timeout_seconds or 60),
            heartbeat=None,
            summary=f"{label} · tool {step.tool_name}",
        )
    return ActivityOptions(
        activity="transform",
        retry_policy=retry_policy(step.retry_config or DEFAULT_TRANSFORM_RETRY),
        start_to_close=timedelta(seconds=step.timeout_seconds or 10),
        heartbeat=None,
        summary=f"{label} · transform",
    )
