"""Save-time validation of definitions and start-time validation of run inputs.

Every problem names where it is (a JSON pointer into the body) and, for steps, the step id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from jsonschema import Draft202012Validator, SchemaError, validators
from pydantic import ValidationError

from definition.context import CONTEXT_ROOTS, MappingError, path_dependency
from definition.expressions import compile_expression
from definition.inputs import is_type
from definition.template_bounds import unbounded_problems
from definition.templates import parse_error, referenced_names
from schema.definition import (
    SLUG_PATTERN,
    STEP_TYPES,
    AgentStep,
    ApprovalStep,
    ConditionStep,
    LlmStep,
    MapStep,
    ParallelStep,
    ToolStep,
    TransformStep,
    Variable,
    WorkflowDefinition,
)
from schema.model_ref import resolve_model
from schema.problems import DefinitionInvalid as DefinitionInvalid
from schema.problems import Problem, pointer
from schema.run import RunLimits


def _loc_pointer(loc: tuple[int | str, ...], raw: Any) -> tuple[str, str | None, str | None]:
    # Discriminated unions add the tag to the location ("steps", 0, "llm", "model"), and the
    # list-or-object `branches` union adds its member's name: drop both.
    parts = [p for p in loc if not (isinstance(p, str) and (
        p in STEP_TYPES or p.startswith(("list[", "dict["))))]
    step_id = None
    node: Any = raw
    for part in parts:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
        # The innermost step on the way names the problem (nested steps have their own ids).
        if isinstance(node, dict) and isinstance(node.get("id"), str) and "type" in node:
            step_id = node["id"]
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


def parse_definition(raw: Any, known_providers: Collection[str], *, tools: Collection[str],
                     multi_model: bool = False, limits: RunLimits | None = None,
                     url_refusal: Callable[[str], str | None] | None = None
                     ) -> WorkflowDefinition:
    """Parse and check a definition; raises DefinitionInvalid listing every problem.

    ``known_providers`` and ``tools`` are the catalog a step may name, passed in (this module
    knows no registry). ``multi_model`` is the ``workflow.multiModel`` feature flag: off,
    ``models`` is refused; templates that can be seen to exceed ``limits`` are refused.
    ``url_refusal`` judges an ``http_request`` step's literal ``args.url`` (the SSRF guard's
    save-time half, passed in by the API: a metadata address is refused when saved).
    """
    try:
        # Strict, as the document states the types: `"3"` is not a number of attempts.
        definition = WorkflowDefinition.model_validate(raw, strict=True)
    except ValidationError as exc:
        raise DefinitionInvalid(problems_from_pydantic(exc, raw)) from None
    problems = check_definition(definition, known_providers, tools=tools, multi_model=multi_model,
                                limits=limits, url_refusal=url_refusal)
    if problems:
        raise DefinitionInvalid(problems)
    return definition


def check_definition(definition: WorkflowDefinition, known_providers: Collection[str], *,
                     tools: Collection[str], multi_model: bool = False,
                     limits: RunLimits | None = None,
                     url_refusal: Callable[[str], str | None] | None = None) -> list[Problem]:
    """Semantic checks pydantic cannot do: ordering, references, schemas, templates."""
    problems: list[Problem] = []
    problems += _check_variables(definition.variables)
    declared = {v.name for v in definition.variables}
    checker = _Checker(problems, known_providers, tools, multi_model, limits or RunLimits())
    checker.url_refusal = url_refusal
    checker.steps(definition.steps, ("steps",), set(), declared, in_map=False)
    return problems


class _Checker:
    """Walks a sequence of steps and the sequences nested in parallel and map steps."""

    def __init__(self, problems: list[Problem], known_providers: Collection[str],
                 tools: Collection[str], multi_model: bool, limits: RunLimits) -> None:
        self.problems = problems
        self.known_providers = known_providers
        self.tools = tools
        self.multi_model = multi_model
        self.limits = limits
        self.all_ids: set[str] = set()
        self.url_refusal: Callable[[str], str | None] | None = None

    def steps(self, steps: list[Any], where: tuple[str | int, ...], earlier: set[str],
              declared: set[str], *, in_map: bool) -> set[str]:
        """Check one sequence; returns every step id it holds (nested ones too)."""
        seen = set(earlier)
        later = [s.id for s in steps]
        held: set[str] = set()
        for index, step in enumerate(steps):
            def add(message: str, *field: str | int, _i: int = index, _s: str = step.id) -> None:
                self.problems.append(Problem(pointer=pointer(*where, _i, *field),
                                             message=message, step_id=_s,
                                             field=str(field[-1]) if field else None))

            if step.id in self.all_ids:
                add(f"duplicate step id '{step.id}'", "id")
            self.all_ids.add(step.id)
            for name, path in step.input_mapping.items():
                add_mapping_problem(path, seen, declared,
                                    lambda m, n=name: add(m, "inputMapping", n))
            if step.when is not None and (problem := compile_expression(step.when)):
                add(f"invalid JMESPath expression: {problem}", "when")
            self._kind(step, add, later[index + 1:])
            inner: set[str] = set()
            if isinstance(step, ParallelStep):
                for name, branch in step.named_branches():
                    key: str | int = name if isinstance(step.branches, dict) else int(name)
                    inner |= self.steps(branch, (*where, index, "branches", key), seen,
                                        declared, in_map=in_map)
            elif isinstance(step, MapStep):
                add_mapping_problem(step.items, seen, declared, lambda m: add(m, "items"))
                item_inputs = {"item", "index", *step.input_mapping}
                self.steps(step.steps, (*where, index, "steps"), set(), item_inputs,
                           in_map=True)
            elif isinstance(step, ApprovalStep) and in_map:
                add("approval steps cannot run inside a map (nobody could address one item)",
                    "type")
            # Steps after a parallel step may read its inner steps' outputs too.
            seen |= {step.id, *inner}
            held |= {step.id, *inner}
        return held

    def _kind(self, step: Any, add: Any, later: list[str]) -> None:
        if isinstance(step, LlmStep):
            _check_llm(step, self.known_providers, set(step.input_mapping), add, self.limits)
            if step.models is not None and not self.multi_model:
                add("multi-model steps ('models') are behind the workflow.multiModel feature "
                    "flag, which is off: set PROMPTPILOT_WORKFLOW__MULTI_MODEL=true or use "
                    "'model'", "models")
        elif isinstance(step, AgentStep):
            _check_agent(step, self.known_providers, self.tools, add)
        elif isinstance(step, ToolStep) and step.tool_name.startswith("mcp:"):
            if problem := mcp_problem(step.tool_name, self.tools, whole_server=False):
                add(problem, "toolName")
        elif isinstance(step, ToolStep) and step.tool_name not in self.tools:
            add(f"unknown tool '{step.tool_name}'; known tools: {', '.join(sorted(self.tools))}"
                ", mcp:<server>/<tool>", "toolName")
        elif isinstance(step, ToolStep) and step.tool_name == "http_request":
            url = step.args.get("url")
            if (self.url_refusal is not None and isinstance(url, str) and "{" not in url
                    and (refusal := self.url_refusal(url))):
                add(refusal, "args", "url")
        elif isinstance(step, TransformStep) and step.expression is not None:
            problem = compile_expression(step.expression)
            if problem:
                add(f"invalid JMESPath expression: {problem}", "expression")
        elif isinstance(step, ConditionStep):
            if problem := compile_expression(step.expression):
                add(f"invalid JMESPath expression: {problem}", "expression")
            for field, target in (("then", step.then), ("else", step.else_)):
                if target is not None and target not in later:
                    add(f"'{target}' is not a later step of the same sequence: a condition "
                        f"can only jump forward (later steps: {', '.join(later) or 'none'})",
                        field)
        elif isinstance(step, ApprovalStep) and step.message is not None:
            if error := parse_error(step.message):
                add(f"template does not parse: {error}", "message")
            else:
                for problem in unbounded_problems(step.message, self.limits):
                    add(f"template is unbounded: {problem}", "message")


def _check_agent(step: AgentStep, known_providers: Collection[str], tools: Collection[str],
                 add: Any) -> None:
    """An agent's model and tools: registry names, ``workflow:<slug>``, ``mcp:<server>``."""
    provider, _ = resolve_model(step.model, step.provider)
    if provider not in known_providers:
        add(f"unknown provider '{provider}'; known providers: "
            f"{', '.join(sorted(known_providers))}", "model")
    for index, tool in enumerate(step.tools):
        if tool.startswith("workflow:"):
            if not re.match(SLUG_PATTERN, tool.removeprefix("workflow:")):
                add(f"'{tool}' does not name a workflow slug", "tools", index)
        elif tool.startswith("mcp:"):
            if problem := mcp_problem(tool, tools, whole_server=True):
                add(problem, "tools", index)
        elif tool not in tools:
            add(f"unknown tool '{tool}'; known tools: {', '.join(sorted(tools))}, "
                "workflow:<slug>", "tools", index)
    if "http_request" in step.tools and not step.allowed_hosts:
        add("an agent listing http_request needs 'allowedHosts': the hosts it may reach",
            "allowedHosts")
    for source, name in ((step.prompt_system, "promptSystem"), (step.prompt_user, "promptUser")):
        if source and (error := parse_error(source)):
            add(f"template does not parse: {error}", name)


def mcp_problem(entry: str, tools: Collection[str], *, whole_server: bool) -> str | None:
    """What is wrong with ``mcp:<server>/<tool>`` (or ``mcp:<server>``, every tool of it, where
    ``whole_server``): the server must be configured; the tool is the server's to know."""
    server, _, tool = entry.removeprefix("mcp:").partition("/")
    if f"mcp:{server}" not in tools:
        servers = sorted(t for t in tools if t.startswith("mcp:")) or ["none"]
        return (f"'{entry}': no MCP server '{server}' is configured "
                f"(configured: {', '.join(servers)})")
    if not tool and not whole_server:
        return f"'{entry}' names no tool: a tool step calls one, as 'mcp:{server}/<tool>'"
    return None


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


def _check_llm(step: LlmStep, known_providers: Collection[str], mapped: set[str], add: Any,
               limits: RunLimits) -> None:
    for number, target in enumerate(step.targets()):
        provider, _ = resolve_model(target.model, target.provider)
        if provider in known_providers:
            continue
        field = "provider" if target.provider else "model"
        where: tuple[str | int, ...] = ("models", number, field) if step.models else (field,)
        add(f"unknown provider for model '{target.model}'"
            f"{f' ({provider})' if provider else ''}; known providers: "
            f"{', '.join(sorted(known_providers))} (use 'provider' or 'provider/model')", *where)
    if step.prompt_user is None and step.prompt_id is None:
        add("Field required: give 'promptUser' (or 'promptId', a stored prompt)", "promptUser")
    if step.prompt_id is not None and (step.prompt_user or step.prompt_system):
        add("give either 'promptId' (a stored prompt) or inline prompts, not both", "promptId")
    for field, source in (("promptSystem", step.prompt_system), ("promptUser", step.prompt_user)):
        if source is None:
            continue
        error = parse_error(source)
        if error:
            add(f"template does not parse: {error}", field)
            continue
        for problem in unbounded_problems(source, limits):
            add(f"template is unbounded: {problem}", field)
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
            if value is not None and not is_type(value, variable.type):
                problems.append(Problem(pointer=pointer("variables", index, field), field=field,
                                        message=f"{field} must be of type {variable.type}"))
    return problems
