"""Dot-path resolution and template rendering: pure functions, no Temporal."""

from __future__ import annotations

import pytest

from definition.context import (
    MappingError,
    new_context,
    path_dependency,
    record_step,
    resolve_mapping,
    resolve_path,
)
from definition.templates import TemplateError, parse_error, referenced_names, render


@pytest.fixture
def context() -> dict[str, object]:
    ctx = new_context({"query": "ai", "limit": 3})
    record_step(ctx, "step1", {"q": "ai"}, {"query": "ai feeds", "tags": ["a", "b"]}, "completed")
    return ctx


def test_context_has_the_seed_shape(context: dict[str, object]) -> None:
    assert context == {
        "input": {"query": "ai", "limit": 3},
        "steps": {"step1": {"input": {"q": "ai"},
                            "output": {"query": "ai feeds", "tags": ["a", "b"]},
                            "status": "completed"}},
        "inputs": {"step1": {"q": "ai"}},
        "outputs": {"step1": {"query": "ai feeds", "tags": ["a", "b"]}},
    }


@pytest.mark.parametrize(("path", "expected"), [
    ("steps.step1.output.query", "ai feeds"),
    ("outputs.step1", {"query": "ai feeds", "tags": ["a", "b"]}),
    ("input.limit", 3),
    ("outputs.step1.tags.1", "b"),
    ("outputs.step1.tags.-1", "b"),
    ("inputs.step1.q", "ai"),
])
def test_paths_resolve(context: dict[str, object], path: str, expected: object) -> None:
    assert resolve_path(context, path) == expected


@pytest.mark.parametrize(("path", "missing"), [
    ("steps.step2.output", "steps.step2"),
    ("outputs.step1.nope", "outputs.step1.nope"),
    ("outputs.step1.tags.5", "outputs.step1.tags.5"),
])
def test_missing_segment_is_named(context: dict[str, object], path: str, missing: str) -> None:
    with pytest.raises(MappingError, match=f"'{missing}' is not present"):
        resolve_path(context, path)


def test_unknown_root_is_refused(context: dict[str, object]) -> None:
    with pytest.raises(MappingError, match="must start with one of"):
        resolve_path(context, "env.SECRET")


def test_mapping_binds_each_name(context: dict[str, object]) -> None:
    assert resolve_mapping(context, {"q": "steps.step1.output.query", "n": "input.limit"}) == {
        "q": "ai feeds", "n": 3}


def test_path_dependency_for_save_time_checks() -> None:
    assert path_dependency("input.query") == ("input", None)
    assert path_dependency("outputs.step2.x") == ("step", "step2")
    assert path_dependency("steps.s1") == ("step", "s1")


def test_render_prefers_mapped_inputs_then_context(context: dict[str, object]) -> None:
    text = render("{{query}} / {{input.query}} / {{outputs.step1.tags}}", {"query": "mapped"},
                  context)
    assert text == 'mapped / ai / ["a", "b"]'


def test_render_names_the_missing_variable(context: dict[str, object]) -> None:
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        render("Hello {{missing}}", {}, context)


def test_render_is_sandboxed(context: dict[str, object]) -> None:
    with pytest.raises(TemplateError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, context)


def test_parse_errors_and_names() -> None:
    assert parse_error("{{ unclosed") is not None
    assert parse_error("{{ fine }}") is None
    assert referenced_names("{{ a.b }} {% if c %}{{ d }}{% endif %}") == {"a", "c", "d"}
