"""Pure helpers of the control-flow kinds, without Temporal."""

from __future__ import annotations

import pytest

from definition.context import new_context, record_step, resolve_path
from schema.definition import Variable
from schema.run import SeedStep
from workflows.child import child_input
from workflows.control import ExpressionError, evaluate, truthy
from workflows.map_step import reusable


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), (False, False), ("", False), ([], False), ({}, False),
    (0, True), (0.0, True), ("no", True), ([0], True), (True, True),
])
def test_truthiness_is_jmespaths(value: object, expected: bool) -> None:
    assert truthy(value) is expected


def test_expressions_read_the_context_and_fail_in_one_line() -> None:
    context = new_context({"score": 7})
    assert evaluate("input.score > `5`", context) is True
    with pytest.raises(ExpressionError, match="abs"):
        evaluate("abs(input)", context)


def test_paths_through_a_skipped_step_read_null() -> None:
    context = new_context({})
    record_step(context, "gone", None, None, "skipped")
    assert resolve_path(context, "outputs.gone.deep.field") is None
    assert resolve_path(context, "steps.gone.status") == "skipped"


def test_child_input_fills_defaults_and_lists_problems() -> None:
    variables = [Variable(name="topic", type="string", required=True),
                 Variable(name="n", type="integer", default=3)]
    assert child_input(variables, {"topic": "x"}) == ({"topic": "x", "n": 3}, [])
    _, problems = child_input(variables, {"n": True, "extra": 1})
    assert problems == ["unknown input 'extra'", "required input 'topic' is missing",
                        "input 'n' must be of type integer"]


def test_map_reuses_only_completed_items_with_the_same_value() -> None:
    seed = SeedStep(step_id="m", source_record_id="r", input={"items": [1, 2, 3, 4]},
                    output=[10, 20, None, 40], failed_items=[2])
    assert reusable(seed, [1, 9, 3, 4, 5]) == {0: 10, 3: 40}
    assert reusable(None, [1]) == {}
