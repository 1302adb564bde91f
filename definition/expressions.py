"""JMESPath expressions as definitions use them (``transform.expression``, ``condition.expression``,
a trigger's ``when``): the save-time compile check and one-line error text."""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions

FUNCTIONS = frozenset(Functions.FUNCTION_TABLE)


def compile_expression(expr: str) -> str | None:
    """Why a JMESPath expression does not compile, or None when it does (for save-time checks)."""
    if not expr.strip():
        return "the expression is empty"
    try:
        parsed = jmespath.compile(expr)
    except JMESPathError as err:
        return describe(err)
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



def describe(err: JMESPathError) -> str:
    """A JMESPath error on one line."""
    # ParseError's text spans lines with a caret under the offending token; keep it on one line.
    return " ".join(str(err).split())

