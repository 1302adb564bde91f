"""Run-time limits from the settings: what each run carries, and the worker's payload guard.

``run_limits(settings)`` is what every starter puts in ``RunWorkflowInput.limits`` (child
runs and map batches inherit their parent's), so a replay applies the limits the run
started with.

``guarded(converter_class, max_bytes)`` wraps the payload converter: a payload the worker
would hand Temporal over ``max_bytes`` raises a non-retryable ``ApplicationError``
``payload_too_large`` (naming its size and the limit) where it is made, instead of reaching
the SDK's own size check, which fails the workflow task and retries it forever. Made in
workflow code (an activity's or child run's input, the run's result) the error surfaces at
the ``execute_activity`` / ``execute_child_workflow`` call in the step, which then fails;
made by an activity (its result) the activity fails once. Clients (the API's starts) are
not checked: the API bounds what it accepts. A local activity's input never reaches the
server (only its result is recorded), so it is checked only when external storage is on:
the SDK's storage step offloads it like any other payload, and one over the storage's
maximum would fail the workflow task, over and over. In workflow code a
payload nested deeper than the decoder goes (200 levels) fails the run ``payload_invalid``
rather than the workflow task, over and over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import ValidationError
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadConverter,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from promptpilot.settings import Settings
from schema.errors import ErrorType
from schema.limits import LimitsSettings
from schema.run import RunLimits


def run_limits(settings: Settings) -> RunLimits:
    """The limits a run started now carries."""
    return template_limits(settings.limits).model_copy(
        update={"max_payload_bytes": settings.max_payload_bytes})


def template_limits(limits: LimitsSettings) -> RunLimits:
    """The run limits a definition's templates are checked against when it is saved."""
    return RunLimits(template_max_output_chars=limits.template_max_output_chars,
                     template_max_operations=limits.template_max_operations,
                     max_step_output_bytes=limits.max_step_output_bytes)


class PayloadGuard(PayloadConverter, WithSerializationContext):
    """A payload converter that refuses payloads over ``max_bytes`` (see the module)."""

    inner_class: ClassVar[type[PayloadConverter]]
    max_bytes: ClassVar[int]
    check_local_inputs: ClassVar[bool] = False
    _shared_inner: ClassVar[PayloadConverter | None] = None

    def __init__(self, inner: PayloadConverter | None = None,
                 context: SerializationContext | None = None) -> None:
        self._inner = inner if inner is not None else self._context_free_inner()
        self._activity = context if isinstance(context, ActivitySerializationContext) else None
        self._workflow_id = context.workflow_id \
            if isinstance(context, WorkflowSerializationContext) else None

    @classmethod
    def _context_free_inner(cls) -> PayloadConverter:
        """One inner converter per guard class, made once. The SDK makes a data converter
        (and so this guard, nullary) twice per workflow activation; a new pydantic
        converter each time was ~2 % of the worker's event loop in B4. Context-free
        converters hold no state (a context makes a new one: ``with_context``)."""
        inner = cls._shared_inner
        if inner is None:
            inner = cls._shared_inner = cls.inner_class()
        return inner

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """Convert, then refuse what is over the limit."""
        payloads = self._inner.to_payloads(values)
        in_workflow = workflow.in_workflow()
        if in_workflow:
            if self._activity is not None and self._activity.is_local \
                    and not self.check_local_inputs:
                return payloads  # a local activity's input stays in this process
        elif not activity.in_activity():
            return payloads  # a client's start or signal: the API bounds what it sends
        for payload in payloads:
            size = payload.ByteSize()
            if size > self.max_bytes:
                raise ApplicationError(
                    f"{self._what(in_workflow)} is {size:,} bytes, over the "
                    f"{self.max_bytes:,}-byte limit for one Temporal payload "
                    "(limits.max_payload_bytes)", {"sizeBytes": size, "limitBytes": self.max_bytes},
                    type=ErrorType.PAYLOAD_TOO_LARGE, non_retryable=True)
        return payloads

    def from_payloads(self, payloads: Sequence[Payload],
                      type_hints: list[type] | None = None) -> list[Any]:
        """Convert; in workflow code, a payload too deep to decode fails the run."""
        try:
            return self._inner.from_payloads(payloads, type_hints)
        except ValidationError as exc:
            if not workflow.in_workflow() or "recursion limit" not in str(exc):
                raise
            raise ApplicationError(
                "a payload is nested deeper than the 200 levels the worker can decode",
                type=ErrorType.PAYLOAD_INVALID, non_retryable=True) from None

    def with_context(self, context: SerializationContext) -> PayloadGuard:
        """The same guard around the inner converter's contextual copy."""
        inner = self._inner.with_context(context) \
            if isinstance(self._inner, WithSerializationContext) else self._inner
        return type(self)(inner, context)

    def _what(self, in_workflow: bool) -> str:
        if not in_workflow:  # the activity's own context is not always passed down
            return f"the result of {activity.info().activity_type}"
        if self._activity is not None:
            return f"the input of {self._activity.activity_type}"
        if self._workflow_id is not None and in_workflow \
                and self._workflow_id != workflow.info().workflow_id:
            return "the input of child workflow " + self._workflow_id
        return "a workflow payload (its result or failure)"


def guarded(inner: type[PayloadConverter], max_bytes: int, *,
            check_local_inputs: bool = False) -> type[PayloadConverter]:
    """``inner`` behind the payload guard, as the nullary class a ``DataConverter`` takes
    (``check_local_inputs`` when external storage would offload local activities' inputs)."""
    return type("GuardedPayloadConverter", (PayloadGuard,),
                {"inner_class": inner, "max_bytes": max_bytes,
                 "check_local_inputs": check_local_inputs,
                 "__doc__": f"{inner.__name__} refusing payloads over {max_bytes:,} bytes."})
