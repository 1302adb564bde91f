"""The step every variant runs: the transform step's work (JMESPath over the mapped input)."""

from __future__ import annotations

from typing import Any

import jmespath

EXPRESSION = "{v: v, n: n}"


def apply(value: dict[str, Any]) -> dict[str, Any]:
    """What the ``transform`` activity computes for the bench definition's steps."""
    result: dict[str, Any] = jmespath.search(EXPRESSION, value)
    return result


def definition(slug: str, steps: int) -> dict[str, Any]:
    """A chain of ``steps`` transforms, each fed the previous output."""
    body = [{"id": f"t{i}", "type": "transform", "expression": EXPRESSION,
             "inputMapping": {"v": "input.topic", "n": "input.n"} if i == 1
             else {"v": f"outputs.t{i - 1}.v", "n": f"outputs.t{i - 1}.n"}}
            for i in range(1, steps + 1)]
    return {"id": slug, "name": f"bench {steps}",
            "variables": [{"name": "topic", "type": "string", "required": True},
                          {"name": "n", "type": "integer", "required": True}],
            "steps": body}
