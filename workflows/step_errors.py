"""How a step's failure is named and how many attempts it took. Deterministic."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from schema.errors import ErrorType
    from schema.run import StepError

from definition.context import MappingError
from definition.templates import TemplateError


def step_error(exc: BaseException) -> StepError:
    """Name a failure the way the mirror and the API show it."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
    if isinstance(cause, ApplicationError):
        return StepError(type=cause.type or ErrorType.INTERNAL, message=cause.message,
                         retryable=not cause.non_retryable)
    if isinstance(cause, TimeoutError):
        return StepError(type="step_timeout", message=f"step timed out ({cause.type})")
    if isinstance(cause, MappingError):
        return StepError(type=ErrorType.MAPPING, message=str(cause))
    if isinstance(cause, TemplateError):
        return StepError(type=cause.type, message=str(cause))
    return StepError(type=ErrorType.INTERNAL,
                     message=f"{type(cause).__name__}: {cause}"[:1000])


def attempts_of(exc: BaseException, max_attempts: int) -> int:
    """The attempts a failed activity took: as it reported, else from its retry state."""
    if isinstance(exc, ApplicationError):
        detail = exc.details[0] if exc.details else None
        attempt = detail.get("attempt") if isinstance(detail, dict) else None
        return attempt if isinstance(attempt, int) else 1
    if isinstance(exc, ActivityError):
        # The attempt number the activity itself reported is exact; the policy is a fallback.
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.details:
            detail = cause.details[0]
            if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
                return int(detail["attempt"])
        if exc.retry_state is not None and exc.retry_state.name == "MAXIMUM_ATTEMPTS_REACHED":
            return max_attempts
        return 1
    return 0
