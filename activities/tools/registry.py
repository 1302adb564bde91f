"""The tool registry: a decorator turns an async function with a pydantic input model into a tool.

The input model is the single source of truth: it validates arguments at call time and its JSON
Schema (camelCase, as definitions write it) is what the catalog publishes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

import httpx
from pydantic import BaseModel

from promptpilot.settings import Settings

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True)
class ToolContext:
    """What every tool may use: the settings and the worker's shared HTTP client."""

    settings: Settings
    http: httpx.AsyncClient
    call_key: str = ""
    """Stable across the attempts of one call (see ``ToolRequest.call_key``)."""


ToolFn = Callable[[ArgsT, ToolContext], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool."""

    name: str
    description: str
    input_model: type[BaseModel]
    fn: Callable[[Any, ToolContext], Awaitable[Any]]

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the tool's arguments, camelCase as definitions write them."""
        return self.input_model.model_json_schema(by_alias=True)


_REGISTRY: dict[str, ToolSpec] = {}


def tool(name: str, *, description: str) -> Callable[[ToolFn[ArgsT]], ToolFn[ArgsT]]:
    """Register an async tool whose first parameter is annotated with its pydantic input model."""

    def decorate(fn: ToolFn[ArgsT]) -> ToolFn[ArgsT]:
        if name in _REGISTRY:
            raise ValueError(f"tool {name!r} is already registered")
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"tool {name!r} must be an async function")
        first = next(iter(inspect.signature(fn).parameters))
        model = get_type_hints(fn).get(first)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"tool {name!r}: first parameter must be annotated with a BaseModel")
        _REGISTRY[name] = ToolSpec(name, description, model, fn)
        return fn

    return decorate


def get_tool(name: str) -> ToolSpec | None:
    """The registered tool of that name, if any."""
    return _REGISTRY.get(name)


def known_tools() -> set[str]:
    """Names of every registered tool, for save-time validation of definitions."""
    return set(_REGISTRY)


def tool_catalog() -> list[dict[str, Any]]:
    """Every tool's name, description and input JSON Schema, sorted by name."""
    return [
        {"name": spec.name, "description": spec.description, "inputSchema": spec.input_schema()}
        for spec in sorted(_REGISTRY.values(), key=lambda spec: spec.name)
    ]
