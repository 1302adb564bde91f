"""What a JSON request body must be beyond parseable: bounded depth, real text, finite numbers.

Python's decoder accepts all three of these and each broke something further in: a value
nested ~200 levels deep cannot be decoded by the worker (pydantic's JSON parser stops at 200)
and past ~250 pydantic cannot serialise it (a 500 with the run row already written); a lone
surrogate (``"\\ud800"``) is refused by Postgres (a 500); ``NaN`` and ``Infinity`` are not
JSON at all. Each problem is reported with a JSON pointer to where it is.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from schema.problems import pointer

# Cheap looks at the raw bytes (C-speed searches) decide whether a body needs parsing here at
# all; most bodies never do. It cannot nest deeper than it has brackets; a lone surrogate needs
# a `\\ud800`-`\\udfff` escape; a non-finite number a bare word, a three-digit exponent or a
# run of 309 digits. Parsed, a body is cleared in C when it serialises back to UTF-8 with
# `allow_nan=False`; only a body that does not is walked to name where.
_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_DIGITS = bytes.maketrans(b"0123456789E", b"9999999999e")
_SURROGATE = re.compile("[\ud800-\udfff]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # +1 and -1 as signed bytes
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')


def _deeper_than(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests more than ``limit`` levels: the running sum of its brackets
    outside strings (+1 opening, -1 closing), computed in C."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    steps = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > limit


def _may_overflow(body: bytes) -> bool:
    """Whether a body may hold NaN, Infinity or a number a float cannot hold."""
    if b"NaN" in body or b"Infinity" in body:
        return True
    digits = body.translate(_DIGITS)
    return b"e999" in digits or b"e+999" in digits or b"9" * 309 in digits


def _clean(value: Any) -> bool:
    """Whether a decoded body holds only real text and finite numbers (checked in C)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError):  # a _NonFinite, an infinite float, a lone surrogate
        return False
    return True


class _NonFinite:
    """Stands in for a NaN or Infinity literal, so the walk can say where it was."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _float(literal: str) -> float | _NonFinite:
    # 1e400 is a JSON number, but as a float it is Infinity, which Postgres refuses.
    number = float(literal)
    return _NonFinite(literal) if math.isinf(number) else number


@dataclass(frozen=True)
class BodyProblem:
    """Why a body is refused: the error code, what to tell the caller, and where."""

    code: str
    message: str
    pointer: str


def body_problem(body: bytes, max_depth: int) -> BodyProblem | None:
    """The first problem of a request body, or None (also when it is not JSON at all: the
    route reports that as it always has)."""
    encoding = json.detect_encoding(body)
    if encoding != "utf-8":
        try:
            body = body.decode(encoding).encode()
        except UnicodeError:
            return None
    deep = _deeper_than(body, max_depth)
    numbers = _may_overflow(body)
    if not (deep or numbers or _ESCAPE.search(body)):
        return None
    try:
        value = json.loads(body, parse_constant=_NonFinite,
                           parse_float=_float if numbers else float)
    except RecursionError:
        return _too_deep(_deep_pointer(body, max_depth), max_depth)
    except ValueError:
        return None
    if deep and (path := _deep_path(value, max_depth, 1, [])) is not None:
        return _too_deep(pointer(*path), max_depth)
    return None if _clean(value) else value_problem(value, max_depth)


def _deep_path(node: Any, max_depth: int, depth: int,
               path: list[str | int]) -> list[str | int] | None:
    """The path to the first object or array past ``max_depth``, in document order (the
    recursion goes no deeper than the limit, at most 512)."""
    if depth > max_depth:
        return list(path)
    if isinstance(node, dict | list):
        for key, item in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(item, dict | list):
                path.append(key)
                if (found := _deep_path(item, max_depth, depth + 1, path)) is not None:
                    return found
                path.pop()
    return None


def value_problem(value: Any, max_depth: int, *, text: bool = True) -> BodyProblem | None:
    """The first problem of a decoded JSON value (depth; with ``text``, strings and numbers)."""
    if not isinstance(value, dict | list):
        return _scalar_problem(value, ()) if text else None
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            return _too_deep(pointer(*path), max_depth)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1, (*path, key)))
            elif text and (problem := _scalar_problem(item, (*path, key))):
                return problem
            if text and isinstance(key, str) and _SURROGATE.search(key):
                return _lone_surrogate((*path, key), "a key")
    return None


def _scalar_problem(item: Any, path: tuple[str | int, ...]) -> BodyProblem | None:
    if isinstance(item, str) and _SURROGATE.search(item):
        return _lone_surrogate(path, "text")
    if isinstance(item, _NonFinite):
        return BodyProblem("validation_error", f"{pointer(*path) or '/'}: {item.literal[:40]} "
                           "is not a finite number (JSON has no NaN or Infinity, and a number "
                           "past 1.8e308 reads as Infinity)", pointer(*path))
    return None


def _lone_surrogate(path: tuple[str | int, ...], what: str) -> BodyProblem:
    # The pointer spells the surrogate as its escape: the answer must be valid text itself.
    where = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", pointer(*path))
    return BodyProblem("validation_error", f"{where or '/'}: {what} with a lone UTF-16 surrogate "
                       "escape (\\ud800-\\udfff without its pair) is not valid Unicode", where)


def _too_deep(where: str, max_depth: int) -> BodyProblem:
    return BodyProblem("json_too_deep", f"{where or '/'}: the body nests objects and arrays more "
                       f"than {max_depth} levels deep (PROMPTPILOT_LIMITS__MAX_JSON_DEPTH)", where)


def _deep_pointer(body: bytes, max_depth: int) -> str:
    """Where a body too deep for Python's decoder first passes ``max_depth``, by its tokens."""
    kinds: list[bytes] = []
    path: list[str | int] = []
    last = b'""'
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            if len(kinds) == max_depth:
                return pointer(*path)
            kinds.append(token)
            path.append(0 if token == b"[" else "")
        elif token in (b"]", b"}"):
            if kinds:
                kinds.pop()
                path.pop()
        elif token == b",":
            if kinds and kinds[-1] == b"[":
                path[-1] = int(path[-1]) + 1
        elif token == b":":
            if path:
                try:
                    path[-1] = str(json.loads(last))
                except ValueError:
                    path[-1] = last.decode(errors="replace").strip('"')
        else:
            last = token
    return ""


