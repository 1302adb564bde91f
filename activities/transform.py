"""The ``transform`` activity: pass the mapped input through, or reshape it with JMESPath.

Seed 000 transforms "pass through input"; an optional ``expression`` (https://jmespath.org)
selects and reshapes it, e.g. ``{titles: results[].title, first: results[0].url}``.
"""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.activities import TransformRequest, TransformResult
from schema.errors import ErrorType

FUNCTIONS = frozenset(Functions.FUNCTION_TABLE)


def compile_expression(expr: str) -> str | None:
    """Why a JMESPath expression does not compile, or None when it does (for save-time checks)."""
    if not expr.strip():
        return "the expression is empty"
    try:
        parsed = jmespath.compile(expr)
    except JMESPathError as err:
        return _describe(err)
    tree: dict[str, Any] = dict(parsed.parsed)
    return _unknown_function(tree)


def _unknown_function(node: dict[str, Any]) -> str | None:
    # jmespath only notices unknown functions when it evaluates them; catch them at save time.
    if node.get("type") == "function_expression" and node["value"] not in FUNCTIONS:
        return f"unknown function {node['value']}()"
    for child in node.get("children", []):
        if isinstance(child, dict) and (problem := _unknown_function(child)):
            return problem
    return None


@activity.defn(name="transform")
async def transform(request: TransformRequest) -> TransformResult:
    """Evaluate the step's expression over its input; without one, return the input unchanged."""
    attempt = activity.info().attempt
    if request.expression is None:
        return TransformResult(output=request.input, attempt=attempt)
    if problem := compile_expression(request.expression):
        raise _error(request.expression, problem)
    try:
        output: Any = jmespath.search(request.expression, request.input)
    except JMESPathError as err:
        raise _error(request.expression, _describe(err)) from None
    activity.logger.debug("transform of step %s (run %s) done", request.step_id, request.run_id)
    return TransformResult(output=output, attempt=attempt)


def _error(expression: str, problem: str) -> ApplicationError:
    return ApplicationError(
        f"JMESPath expression {expression!r} failed: {problem}",
        {"expression": expression, "problem": problem},
        type=ErrorType.TRANSFORM,
        non_retryable=True,
    )


def _describe(err: JMESPathError) -> str:
    # ParseError's text spans lines with a caret under the offending token; keep it on one line.
    return " ".join(str(err).split())
