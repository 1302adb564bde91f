"""`{{templates}}` rendered in Jinja2's sandbox with StrictUndefined. Pure functions.

Names resolve against the step's mapped inputs first, then the context
(``input``, ``steps``, ``inputs``, ``outputs``), as the design card fixes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import jinja2
    from jinja2 import meta
    from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(ValueError):
    """A template that does not parse or names something missing."""


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _finalize(value: Any) -> Any:
    # Structured values print as JSON, which is what a prompt author expects to see.
    return _tojson(value) if isinstance(value, dict | list) else value


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters["tojson"] = _tojson
    return env


def parse_error(source: str) -> str | None:
    """The syntax error of a template, or None when it parses."""
    try:
        _environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def referenced_names(source: str) -> set[str]:
    """Top-level names a template reads (for save-time checks)."""
    return set(meta.find_undeclared_variables(_environment().parse(source)))


@lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def render(source: str, mapped: dict[str, Any], context: dict[str, Any]) -> str:
    """Render with mapped inputs shadowing context roots; dicts and lists render as JSON."""
    variables = {**context, **mapped}
    try:
        return _compiled(source).render(variables)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined variable: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from exc
