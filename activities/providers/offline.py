"""The ``offline`` provider: a deterministic stand-in model for demos and tests, no network.

With an output schema it answers a JSON value generated from the schema (strings made from the
prompt's words); without one it echoes the prompt. Same request, same answer; it costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from activities.providers.completion import Completion
from activities.providers.registry import register
from activities.streaming import TextSink
from promptpilot.settings import Settings
from schema.activities import LlmRequest

_STOPWORD_TEXT = (
    "a an and are as at be by for from in into is it of on or that the this to with you your "
    "please return give me find write about using use json only reply generate create suggest "
    "list make web search query show which what how"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_FORMATS = {
    "date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00Z",
    "email": "offline@example.com", "uri": "https://example.com/offline", "url":
    "https://example.com/offline", "uuid": "00000000-0000-4000-8000-000000000000",
}


def estimate_tokens(text: str) -> int:
    """Roughly four characters per token."""
    return math.ceil(len(text) / 4)


def keywords(text: str, limit: int = 8) -> list[str]:
    """The first distinct content words of a text, lower-cased."""
    seen: list[str] = []
    for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9_'-]*", text.lower()):
        if len(word) > 1 and word not in _STOPWORDS and word not in seen:
            seen.append(word)
        if len(seen) >= limit:
            break
    return seen


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _string(schema: dict[str, Any], words: list[str], name: str, index: int) -> str:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    rotated = words[index:] + words[:index] if words else [name]
    text = " ".join(rotated)
    min_len, max_len = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < min_len:
        text = (text + " ") * (min_len // (len(text) + 1) + 1)
    return text[: int(max_len)] if max_len is not None else text


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    value: float = 1
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        value = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    return math.ceil(value) if integer else float(value)


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def example_for_schema(
    schema: Any, words: list[str], name: str = "value", index: int = 0
) -> Any:
    """A JSON value that satisfies simple schemas, derived deterministically from ``words``."""
    if not isinstance(schema, dict):
        return _string({}, words, name, index)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("allOf", "anyOf", "oneOf"):
        if schema.get(combinator):
            return example_for_schema({**schema[combinator][0], **{
                k: v for k, v in schema.items() if k != combinator}}, words, name, index)
    kind = _type_of(schema)
    if kind == "object":
        properties: dict[str, Any] = dict(schema.get("properties", {}))
        for key in schema.get("required", []):
            properties.setdefault(key, {"type": "string"})
        return {key: example_for_schema(sub, words, key, index) for key, sub in properties.items()}
    if kind == "array":
        size = max(int(schema.get("minItems", 0)), 1 + _digest(" ".join(words) + name) % 3)
        if "maxItems" in schema:
            size = min(size, int(schema["maxItems"]))
        items = schema.get("items", {})
        return [example_for_schema(items, words, name, index + i) for i in range(size)]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, words, name, index)


def offline_answer(request: LlmRequest, model: str) -> str:
    """The offline model's text for a request: JSON for a schema, else a tagged echo."""
    if request.output_schema is not None:
        value = example_for_schema(request.output_schema, keywords(request.user))
        return json.dumps(value, ensure_ascii=False)
    echo = " ".join(request.user.split())
    digest = hashlib.sha256(f"{request.system}\n{request.user}".encode()).hexdigest()[:8]
    return f"[offline model {model}] {digest} {echo[:200]}"


class OfflineProvider:
    """Deterministic, free and local; never touches the network."""

    async def complete(self, request: LlmRequest, model: str,
                       on_text: TextSink | None = None) -> Completion:
        """Answer from the request alone; streamed a few words at a time."""
        text = offline_answer(request, model)
        if on_text is not None:
            words = re.findall(r"\s*\S+\s*|\s+", text)
            for start in range(0, len(words), 3):
                await on_text("".join(words[start:start + 3]))
        prompt = (request.system or "") + request.user
        return Completion(text=text, tokens_in=estimate_tokens(prompt),
                          tokens_out=estimate_tokens(text))

    async def aclose(self) -> None:
        """Nothing to release."""


@register("offline")
def build(name: str, settings: Settings) -> OfflineProvider:
    """The offline provider needs no settings."""
    return OfflineProvider()
