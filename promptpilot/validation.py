"""Save-time validation of definitions and start-time validation of run inputs.

Every problem names where it is (a JSON pointer into the body) and, for steps, the step id.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, SchemaError, validators
from pydantic import ValidationError

from activities.tools.registry import known_tools
from activities.transform import compile_expression
from schema.definition import LlmStep, ToolStep, TransformStep, Variable, WorkflowDefinition
from schema.model_ref import resolve_model
from schema.problems import Problem, pointer
from workflows.context import CONTEXT_ROOTS, MappingError, path_dependency
from workflows.templates import parse_error, referenced_names

_JSON_TYPES: dict[str, str] = {
    "string": "string", "number": "number", "integer": "integer",
    "boolean": "boolean", "object": "object", "array": "array",
}


class DefinitionInvalid(Exception):
    """A definition or run input that cannot be accepted; carries every problem found."""

    def __init__(self, problems: list[Problem], message: str = "validation failed") -> None:
        super().__init__(message)
        self.problems = problems


def _loc_pointer(loc: tuple[int | str, ...], raw: Any) -> tuple[str, str | None, str | None]:
    parts = list(loc)
    # Discriminated unions add the tag to the location ("steps", 0, "llm", "model"): drop it.
    if len(parts) >= 3 and parts[0] == "steps" and parts[2] in ("llm", "tool", "transform"):
        del parts[2]
    step_id = None
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        steps = raw.get("steps") if isinstance(raw, dict) else None
        if isinstance(steps, list) and parts[1] < len(steps) and isinstance(steps[parts[1]], dict):
            found = steps[parts[1]].get("id")
            step_id = found if isinstance(found, str) else None
    field = str(parts[-1]) if parts else None
    return pointer(*parts), step_id, field


def problems_from_pydantic(
    exc: ValidationError, raw: Any, prefix: tuple[str, ...] = ()
) -> list[Problem]:
    """Pydantic's errors as problems with pointers into the request body."""
    problems = []
    for error in exc.errors(include_url=False):
        path, step_id, field = _loc_pointer(tuple(error["loc"]), raw)
        problems.append(Problem(pointer=pointer(*prefix) + path, message=error["msg"],
                                step_id=step_id, field=field))
    return problems


def parse_definition(raw: Any, known_providers: set[str], *,
                     multi_model: bool = False) -> WorkflowDefinition:
    """Parse and check a definition; raises DefinitionInvalid listing every problem.

    ``multi_model`` is the ``workflow.multiModel`` feature flag: off, ``models`` is refused.
    """
    try:
        definition = WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        raise DefinitionInvalid(problems_from_pydantic(exc, raw)) from None
    problems = check_definition(definition, known_providers, multi_model=multi_model)
    if problems:
        raise DefinitionInvalid(problems)
    return definition


def check_definition(definition: WorkflowDefinition, known_providers: set[str], *,
                     multi_model: bool = False) -> list[Problem]:
    """Semantic checks pydantic cannot do: ordering, references, schemas, templates."""
    problems: list[Problem] = []
    problems += _check_variables(definition.variables)
    declared = {v.name for v in definition.variables}
    seen: set[str] = set()
    for index, step in enumerate(definition.steps):
        def add(message: str, *field: str | int, _i: int = index, _s: str = step.id) -> None:
            problems.append(Problem(pointer=pointer("steps", _i, *field), message=message,
                                    step_id=_s, field=str(field[-1]) if field else None))

        if step.id in seen:
            add(f"duplicate step id '{step.id}'", "id")
        for name, path in step.input_mapping.items():
            add_mapping_problem(path, seen, declared, lambda m, n=name: add(m, "inputMapping", n))
        if isinstance(step, LlmStep):
            _check_llm(step, known_providers, set(step.input_mapping), add)
            if step.models is not None and not multi_model:
                add("multi-model steps ('models') are behind the workflow.multiModel feature "
                    "flag, which is off: set PROMPTPILOT_WORKFLOW__MULTI_MODEL=true or use "
                    "'model'", "models")
        elif isinstance(step, ToolStep) and step.tool_name not in known_tools():
            add(f"unknown tool '{step.tool_name}'; known tools: {', '.join(sorted(known_tools()))}",
                "toolName")
        elif isinstance(step, TransformStep) and step.expression is not None:
            problem = compile_expression(step.expression)
            if problem:
                add(f"invalid JMESPath expression: {problem}", "expression")
        seen.add(step.id)
    return problems


def add_mapping_problem(path: str, earlier: set[str], declared: set[str], add: Any) -> None:
    """Report a mapping that reads a later or unknown step, or an undeclared variable."""
    try:
        kind, step_id = path_dependency(path)
    except MappingError:
        add(f"'{path}' must start with one of {', '.join(CONTEXT_ROOTS)}")
        return
    if kind == "step" and step_id not in earlier:
        add(f"'{path}' reads step '{step_id}', which is not an earlier step")
    parts = path.split(".")
    if kind == "input" and declared and len(parts) > 1 and parts[1] not in declared:
        add(f"'{path}' reads input '{parts[1]}', which is not a declared variable")


def _check_llm(step: LlmStep, known_providers: set[str], mapped: set[str], add: Any) -> None:
    for number, target in enumerate(step.targets()):
        provider, _ = resolve_model(target.model, target.provider)
        if provider in known_providers:
            continue
        field = "provider" if target.provider else "model"
        where: tuple[str | int, ...] = ("models", number, field) if step.models else (field,)
        add(f"unknown provider for model '{target.model}'"
            f"{f' ({provider})' if provider else ''}; known providers: "
            f"{', '.join(sorted(known_providers))} (use 'provider' or 'provider/model')", *where)
    for field, source in (("promptSystem", step.prompt_system), ("promptUser", step.prompt_user)):
        if source is None:
            continue
        error = parse_error(source)
        if error:
            add(f"template does not parse: {error}", field)
            continue
        missing = referenced_names(source) - mapped - set(CONTEXT_ROOTS)
        if missing:
            add(f"template uses undefined variable(s) {', '.join(sorted(missing))}: map them in "
                "inputMapping or use input./steps./outputs. paths", field)
    if step.output_schema is not None:
        try:
            validators.validator_for(step.output_schema, default=Draft202012Validator) \
                .check_schema(step.output_schema)
        except SchemaError as exc:
            add(f"invalid JSON Schema: {exc.message}", "outputSchema")


def _check_variables(variables: list[Variable]) -> list[Problem]:
    problems: list[Problem] = []
    names: set[str] = set()
    for index, variable in enumerate(variables):
        if variable.name in names:
            problems.append(Problem(pointer=pointer("variables", index, "name"), field="name",
                                    message=f"duplicate variable '{variable.name}'"))
        names.add(variable.name)
        for field, value in (("default", variable.default), ("sampleValue", variable.sample_value)):
            if value is not None and not _is_type(value, variable.type):
                problems.append(Problem(pointer=pointer("variables", index, field), field=field,
                                        message=f"{field} must be of type {variable.type}"))
    return problems


def _is_type(value: Any, type_name: str) -> bool:
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
            if not _is_type(data[name], variable.type):
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
    """Inputs hydrated from the variables' sample values (seed 003 `useSampleData`)."""
    return {v.name: v.sample_value if v.sample_value is not None else v.default
            for v in definition.variables}
