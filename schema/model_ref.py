"""How a step's `model` (and optional `provider`) names its provider. Pure."""

from __future__ import annotations

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-", "openai"),
    ("claude-", "anthropic"),
)


def resolve_model(model: str, provider: str | None = None) -> tuple[str, str]:
    """Return ``(provider, model)``: explicit provider, else ``provider/model``, else by prefix.

    An unrecognised model yields provider ``""``, which validation reports as unknown.
    """
    if provider:
        return provider, model
    if "/" in model:
        head, _, tail = model.partition("/")
        return head, tail
    for prefix, name in _PREFIXES:
        if model.startswith(prefix):
            return name, model
    return "", model
