"""`condition` steps and `when` guards: JMESPath over the run context. Deterministic.

Truthiness is JMESPath's: null, false, "", [] and {} are false; everything else (0 too) is
true. Expressions see the context (``input``, ``steps``, ``inputs``, ``outputs``) with the
step's mapped inputs on top, so ``outputs.classify.label == 'urgent'`` or a mapped ``label``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import jmespath
    from jmespath.exceptions import JMESPathError

    from schema.definition import ConditionStep
    from schema.run import StepError, StepRecord

from workflows.outcome import OutcomeFailed, StepOutcome

if TYPE_CHECKING:
    from workflows.scope import Runner


class ExpressionError(ValueError):
    """An expression that fails when evaluated."""


def truthy(value: Any) -> bool:
    """JMESPath's truthiness (0 is true, unlike Python's)."""
    return not (value is None or value is False or value in ("", [], {}))


def evaluate(expression: str, scope: dict[str, Any]) -> Any:
    """Evaluate a JMESPath expression; raises ExpressionError with a one-line reason."""
    try:
        return jmespath.search(expression, scope)
    except JMESPathError as exc:
        raise ExpressionError(" ".join(str(exc).split())) from None


async def run_condition(runner: Runner, step: ConditionStep, mapped: dict[str, Any],
                        context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Choose `then` or `else`; the output says which and why."""
    try:
        value = evaluate(step.expression, {**context, **mapped})
    except ExpressionError as exc:
        raise OutcomeFailed(StepError(type="expression_error",
                                      message=f"expression: {exc}")) from None
    result = truthy(value)
    target = step.then if result else step.else_
    return StepOutcome(output={"result": result, "value": value, "next": target},
                       jump=target, cost=0.0)
