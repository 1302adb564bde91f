"""Rendering is bounded: every render ends in text or a TemplateError, within its limits,
whatever the template and the data (pure functions, no Temporal)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from definition.context import new_context
from definition.template_budget import MAX_MACRO_DEPTH
from definition.templates import TemplateError, TemplateLimit, render
from schema.errors import ErrorType
from schema.run import RunLimits

SMALL = RunLimits(template_max_output_chars=1_000, template_max_operations=100)
MEGA = RunLimits(template_max_output_chars=1_000_000)


def rendered(source: str, limits: RunLimits = SMALL, **inputs: Any) -> str:
    return render(source, {}, new_context(inputs), limits)


def refused(source: str, limits: RunLimits = SMALL, **inputs: Any) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        rendered(source, limits, **inputs)
    return caught.value


def test_output_at_the_limit_renders_and_one_past_it_is_refused() -> None:
    assert rendered("{{ input.s }}", s="x" * 1_000) == "x" * 1_000
    error = refused("{{ input.s }}!", s="x" * 1_000)
    assert isinstance(error, TemplateLimit)
    assert error.type == ErrorType.TEMPLATE_LIMIT
    assert "longer than 1,000 characters (limits.template_max_output_chars)" in str(error)


def test_loop_iterations_within_the_budget_render_and_one_more_is_refused() -> None:
    # range() itself is one operation: 99 iterations + 1 call is the whole budget of 100.
    assert rendered("{% for i in range(input.n) %}{% endfor %}ok", n=99) == "ok"
    error = refused("{% for i in range(input.n) %}{% endfor %}ok", n=100)
    assert error.type == ErrorType.TEMPLATE_LIMIT
    assert "100 operations" in str(error)
    assert "limits.template_max_operations" in str(error)
    # Iterating data (no range) is counted too.
    assert rendered("{% for x in input.xs %}{% endfor %}ok", xs=[0] * 100) == "ok"
    assert refused("{% for x in input.xs %}{% endfor %}ok", xs=[0] * 101).type \
        == ErrorType.TEMPLATE_LIMIT


@pytest.mark.parametrize(("source", "inputs"), [
    ("{% for i in range(input.n) %}x{% endfor %}", {"n": 10**8}),
    ("{{ 'x' * input.n }}", {"n": 10**8}),
    ("{% for i in range(input.n) %}{% for j in range(input.n) %}x{% endfor %}{% endfor %}",
     {"n": 10**5}),
    ("{{ [0] * input.n }}", {"n": 10**8}),
    ("{{ input.s ~ input.s }}", {"s": "x" * 600_000}),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s|length }}", {}),
    ("{{ 'x'|center(input.n) }}", {"n": 10**8}),
    ("{{ 'x'.ljust(input.n) }}", {"n": 10**8}),
    ("{{ '{:>{w}}'.format('x', w=input.n) }}", {"n": 10**8}),
    ("{{ '%*d' % (input.n, 1) }}", {"n": 10**8}),
    ("{{ 'ab'|replace('', input.s) }}", {"s": "y" * 500_000}),
    ("{{ input.b ** input.e }}", {"b": 10, "e": 10**8}),
    ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", {}),
    ("{% for x in input.xs recursive %}{{ loop(input.xs) }}{% endfor %}", {"xs": [1]}),
    ("{% macro big() %}" + "y" * 5_000 + "{% endmacro %}"
     "{% for i in range(50000) %}{{ big()|length }}{% endfor %}", {}),
])
def test_unbounded_renders_stop_quickly_with_template_limit(source: str,
                                                            inputs: dict[str, Any]) -> None:
    started = time.perf_counter()
    error = refused(source, MEGA, **inputs)
    assert error.type == ErrorType.TEMPLATE_LIMIT, error
    assert time.perf_counter() - started < 2


def test_macros_nest_to_the_depth_limit_and_no_deeper() -> None:
    source = ("{% macro m(n) %}{% if n < input.depth %}{{ m(n + 1) }}{% else %}{{ n }}{% endif %}"
              "{% endmacro %}{{ m(1) }}")
    assert rendered(source, RunLimits(), depth=MAX_MACRO_DEPTH) == str(MAX_MACRO_DEPTH)
    error = refused(source, RunLimits(), depth=MAX_MACRO_DEPTH + 1)
    assert f"nested more than {MAX_MACRO_DEPTH} deep" in str(error)


@pytest.mark.parametrize(("source", "message"), [
    ("{{ 1 / input.zero }}", "ZeroDivisionError"),
    ("{{ 2.0 ** 10000 }}", "OverflowError"),
    ("{% for x in input.n %}{% endfor %}", "TypeError"),
    ("{{ input.missing }}", "undefined variable"),
    ("{{ input.s.__class__ }}", "unsafe"),
    ("{{ lipsum(3) }}", "lipsum"),            # random text: not deterministic, not offered
    ("{{ [1, 2]|random }}", "random"),
    ("{{ input.s.nope() }}", "undefined"),
])
def test_every_other_failure_is_a_template_error(source: str, message: str) -> None:
    error = refused(source, RunLimits(), zero=0, n=3, s="abc")
    assert error.type == ErrorType.TEMPLATE
    assert not isinstance(error, TemplateLimit)
    assert message in str(error)


def test_ordinary_templates_render_as_before() -> None:
    context = new_context({"topic": "durable execution", "items": ["a", "b"]})
    source = ("About {{ input.topic|upper }} ({{ n }}):{% for i in input['items'] %} "
              "{{ loop.index }}.{{ i }}{% endfor %} {{ input }} {{ '%05.1f'|format(3.14159) }}")
    assert render(source, {"n": 2}, context) == (
        'About DURABLE EXECUTION (2): 1.a 2.b {"items": ["a", "b"], "topic": '
        '"durable execution"} 003.1')


# -- property: a render always ends, in text within the cap or in a TemplateError ----------

NAMES = ["input.n", "input.s", "input.xs", "input.d", "i", "7", "'ab'", "[1, 2]", "10**6"]
EXPRESSIONS = st.recursive(
    st.sampled_from(NAMES),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["*", "+", "**", "~", "%", "//"]), inner)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(["upper", "join", "list", "length", "center(10**7)",
                                          "replace('', 'zz')", "tojson", "sort", "sum"]))
        .map(lambda t: f"({t[0]}|{t[1]})"),
        inner.map(lambda e: f"range({e})"),
        st.tuples(inner, st.sampled_from(["ljust", "zfill", "split"]), inner)
        .map(lambda t: f"{t[0]}.{t[1]}({t[2]})"),
    ),
    max_leaves=6)
BLOCKS = st.recursive(
    EXPRESSIONS.map(lambda e: "{{ " + e + " }}") | st.just("text "),
    lambda inner: st.one_of(
        st.tuples(EXPRESSIONS, inner).map(
            lambda t: "{% for i in " + t[0] + " %}" + t[1] + "{% endfor %}"),
        st.tuples(EXPRESSIONS, inner).map(
            lambda t: "{% if " + t[0] + " %}" + t[1] + "{% endif %}"),
        st.lists(inner, min_size=2, max_size=3).map("".join),
        inner.map(lambda b: "{% macro m(i) %}" + b + "{{ m(i) }}{% endmacro %}{{ m(1) }}"),
    ),
    max_leaves=5)
INPUTS = st.fixed_dictionaries({
    "n": st.integers(min_value=-3, max_value=10**9),
    "s": st.text(max_size=20),
    "xs": st.lists(st.integers(min_value=0, max_value=10**6), max_size=5),
    "d": st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=BLOCKS, inputs=INPUTS)
def test_any_render_ends_in_text_or_a_template_error(source: str,
                                                      inputs: dict[str, Any]) -> None:
    limits = RunLimits(template_max_output_chars=20_000, template_max_operations=5_000)
    started = time.perf_counter()
    try:
        text = render(source, {}, new_context(inputs), limits)
    except TemplateError:
        pass
    else:
        assert len(text) <= limits.template_max_output_chars
        assert render(source, {}, new_context(inputs), limits) == text  # deterministic
    assert time.perf_counter() - started < 5
