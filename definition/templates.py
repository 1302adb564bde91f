"""`{{templates}}` rendered in Jinja2's sandbox with StrictUndefined, bounded. Pure functions.

Names resolve against the step's mapped inputs first, then the context
(``input``, ``steps``, ``inputs``, ``outputs``), as the design card fixes. A render ends in
text or in ``TemplateError``, whatever the template and the data: its work and sizes are
bounded by the run's ``RunLimits`` (``definition/template_sandbox.py``), and every other
exception a render raises is reported as a template error.
"""

from __future__ import annotations

import json
from functools import lru_cache
from itertools import islice
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import jinja2
    from jinja2 import meta

    from schema.errors import ErrorType
    from schema.run import RunLimits

from definition.template_budget import (
    CHARS_PER_OPERATION,
    TemplateLimitExceeded,
    current_budget,
    end_budget,
    start_budget,
)
from definition.template_sandbox import BoundedEnvironment

_DEFAULT_LIMITS = RunLimits()
_BATCH = 256


class TemplateError(ValueError):
    """A template that does not parse, names something missing, or fails as it renders."""

    type: str = ErrorType.TEMPLATE

    def renamed(self, prefix: str) -> TemplateError:
        """The same error with a prefix (the field it came from)."""
        return type(self)(f"{prefix}: {self}")


class TemplateLimit(TemplateError):
    """A render that went over one of its limits (``template_limit``)."""

    type = ErrorType.TEMPLATE_LIMIT


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _finalize(value: Any) -> Any:
    # Structured values print as JSON, which is what a prompt author expects to see.
    text = _tojson(value) if isinstance(value, (dict, list)) else value  # a tuple: faster
    if type(text) is str and len(text) >= CHARS_PER_OPERATION:
        budget = current_budget()
        if budget is not None:  # None while compiling constants
            budget.spend(len(text) // CHARS_PER_OPERATION)
    return text


@lru_cache(maxsize=1)
def _environment() -> BoundedEnvironment:
    env = BoundedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters["tojson"] = _tojson
    env.guard_filters()
    return env


def parse_error(source: str) -> str | None:
    """The syntax error of a template, or None when it parses."""
    try:
        _environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def syntax_tree(source: str) -> jinja2.nodes.Template:
    """A template's syntax tree as written (for save-time checks); raises
    TemplateSyntaxError."""
    return _environment().written(source)


def referenced_names(source: str) -> set[str]:
    """Top-level names a template reads (for save-time checks)."""
    return set(meta.find_undeclared_variables(syntax_tree(source)))


@lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def render(source: str, mapped: dict[str, Any], context: dict[str, Any],
           limits: RunLimits | None = None) -> str:
    """Render with mapped inputs shadowing context roots; dicts and lists render as JSON.

    Raises ``TemplateLimit`` over a limit and ``TemplateError`` for anything else.
    """
    limits = limits or _DEFAULT_LIMITS
    try:
        template = _compiled(source)
        token = start_budget(limits)
        try:
            return _stream(template, {**context, **mapped}, limits.template_max_output_chars)
        finally:
            end_budget(token)
    except TemplateError:
        raise
    except TemplateLimitExceeded as exc:
        raise TemplateLimit(str(exc)) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined variable: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except workflow.NondeterminismError:
        raise  # the sandbox refused something: a redeploy heals it, so the task retries
    except RecursionError:
        raise TemplateLimit("the template nests too deeply") from None
    except MemoryError:
        raise TemplateLimit("the template ran out of memory") from None
    except Exception as exc:  # a render fails its step, never the task
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


def _stream(template: jinja2.Template, variables: dict[str, Any], max_chars: int) -> str:
    """The rendered text, stopped once it grows past ``max_chars``: read in batches of
    chunks (a loop per chunk would double the cost of a render); what a batch can add
    past the cap is bounded by the operation budget."""
    chunks = template.root_render_func(template.new_context(variables))
    parts: list[str] = []
    size = 0
    while batch := list(islice(chunks, _BATCH)):
        part = "".join(batch)
        size += len(part)
        if size > max_chars:
            raise TemplateLimit(
                f"the rendered text is longer than {max_chars:,} characters "
                "(limits.template_max_output_chars)")
        parts.append(part)
    return parts[0] if len(parts) == 1 else "".join(parts)
