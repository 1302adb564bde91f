"""A run's input against its definition's variables: type checks, defaults, sample values."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from schema.definition import WorkflowDefinition
from schema.problems import DefinitionInvalid, Problem, pointer

_JSON_TYPES: dict[str, str] = {
    "string": "string", "number": "number", "integer": "integer",
    "boolean": "boolean", "object": "object", "array": "array",
}


def is_type(value: Any, type_name: str) -> bool:
    """Whether a value is of a variable's declared type, as JSON Schema reads it."""
    return bool(Draft202012Validator({"type": _JSON_TYPES[type_name]}).is_valid(value))


def validate_input(definition: WorkflowDefinition, data: Any, *,
                   prefix: tuple[str, ...] = ("input",)) -> dict[str, Any]:
    """Check a run's input against the variables; returns it with defaults filled in."""
    if not isinstance(data, dict):
        raise DefinitionInvalid([Problem(pointer=pointer(*prefix), message="must be an object")])
    if not definition.variables:
        return dict(data)
    problems: list[Problem] = []
    declared = {v.name: v for v in definition.variables}
    for name in data:
        if name not in declared:
            problems.append(Problem(pointer=pointer(*prefix, name), field=name,
                                    message=f"unknown input '{name}'; declared: "
                                    f"{', '.join(sorted(declared))}"))
    result: dict[str, Any] = {}
    for name, variable in declared.items():
        if name in data and data[name] is not None:
            if not is_type(data[name], variable.type):
                problems.append(Problem(pointer=pointer(*prefix, name), field=name,
                                        message=f"must be of type {variable.type}"))
            result[name] = data[name]
        elif variable.default is not None:
            result[name] = variable.default
        elif variable.required:
            problems.append(Problem(pointer=pointer(*prefix, name), field=name,
                                    message=f"required input '{name}' is missing"))
        else:
            result[name] = None
    if problems:
        raise DefinitionInvalid(problems, "input does not match the workflow's variables")
    return result


def sample_input(definition: WorkflowDefinition) -> dict[str, Any]:
    """Inputs hydrated from the variables' sample values (a preview's `useSampleData`)."""
    return {v.name: v.sample_value if v.sample_value is not None else v.default
            for v in definition.variables}
