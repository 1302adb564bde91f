"""The transform activity passes input through or reshapes it with JMESPath."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from bench.transform_activity import transform
from definition.expressions import compile_expression
from schema.activities import TransformRequest, TransformResult
from schema.errors import ErrorType

DATA = {"results": [{"title": "a", "url": "u1", "score": 3}, {"title": "b", "url": "u2",
                                                             "score": 9}]}


async def run(value: Any, expression: str | None = None) -> TransformResult:
    request = TransformRequest(run_id="r", step_id="s", input=value, expression=expression)
    result: TransformResult = await ActivityEnvironment().run(transform, request)
    return result


async def test_pass_through() -> None:
    result = await run(DATA)
    assert result.output == DATA
    assert result.attempt == 1


async def test_jmespath_reshapes() -> None:
    expression = "{titles: results[].title, best: max_by(results, &score).url}"
    result = await run(DATA, expression)
    assert result.output == {"titles": ["a", "b"], "best": "u2"}
    assert (await run(DATA, "results[?score > `5`].title | [0]")).output == "b"
    assert (await run(DATA, "missing")).output is None


@pytest.mark.parametrize(("expression", "problem"), [
    ("results[", "Incomplete expression"),
    ("nope(results)", "unknown function nope()"),
    ("length(results[0].score)", "invalid type"),
    ("", "empty"),
])
async def test_bad_expression(expression: str, problem: str) -> None:
    with pytest.raises(ApplicationError) as info:
        await run(DATA, expression)
    err = info.value
    assert err.type == ErrorType.TRANSFORM
    assert err.non_retryable
    assert repr(expression) in err.message
    assert problem in err.message


def test_compile_expression() -> None:
    assert compile_expression("results[].title") is None
    assert compile_expression("sort_by(results, &score)[-1]") is None
    assert "Incomplete expression" in (compile_expression("a.[") or "")
    assert compile_expression("foo(a)") == "unknown function foo()"
