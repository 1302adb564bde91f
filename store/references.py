"""What a definition refers to in the database: stored prompts and other workflows.

Checked when a definition is saved (422 naming the field: unknown prompt or workflow, a
version that does not exist, a cycle of workflow steps, inputs the child does not declare)
and resolved when a run starts: prompts are written into the definition snapshot (pinned
version or the latest) and child workflows are embedded in the run's input, so a replay
never reads the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from definition.context import CONTEXT_ROOTS
from definition.templates import referenced_names
from definition.validation import DefinitionInvalid
from schema.definition import AgentStep, LlmStep, WorkflowDefinition, WorkflowStep
from schema.problems import Problem, pointer
from schema.run import ChildDefinition
from store.prompts import PromptStore
from store.runs import Store

MAX_DEPTH = 8


def walk(steps: list[Any], where: tuple[str | int, ...] = ("steps",)) -> Iterator[
        tuple[tuple[str | int, ...], Any]]:
    """Every step with its location, nested parallel branches and map steps included."""
    for index, step in enumerate(steps):
        here = (*where, index)
        yield here, step
        if step.type == "parallel":
            for name, branch in step.named_branches():
                key: str | int = name if isinstance(step.branches, dict) else int(name)
                yield from walk(branch, (*here, "branches", key))
        elif step.type == "map":
            yield from walk(step.steps, (*here, "steps"))


def _raw_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        branches = step.get("branches")
        if isinstance(branches, dict):
            branches = list(branches.values())
        for branch in branches or []:
            yield from _raw_steps(branch)
        if step.get("type") == "map":
            yield from _raw_steps(step.get("steps") or [])


class References:
    """Checks and resolves a definition's prompts and child workflows in one environment."""

    def __init__(self, store: Store, environment: str) -> None:
        self.store = store
        self.prompts = PromptStore(store.engine)
        self.environment = environment

    async def load(self, slug: str, version: int | None) -> tuple[Any, Any] | None:
        """A workflow row and its requested (or current) version row."""
        row = await self.store.get_workflow(self.environment, slug)
        if row is None:
            return None
        found = await self.store.get_version(row.id, version or row.current_version)
        return None if found is None else (row, found)

    async def check(self, definition: WorkflowDefinition) -> list[Problem]:
        """Problems with the prompts and workflows the definition names."""
        problems: list[Problem] = []
        for where, step in walk(definition.steps):
            def add(message: str, *field: str, _w: tuple[str | int, ...] = where,
                    _s: str = step.id) -> None:
                problems.append(Problem(pointer=pointer(*_w, *field), message=message,
                                        step_id=_s, field=field[-1]))

            if isinstance(step, LlmStep) and step.prompt_id is not None:
                await self._check_prompt(step, add)
            elif isinstance(step, WorkflowStep):
                await self._check_child(definition.id, step, add)
            elif isinstance(step, AgentStep):
                for index, tool in enumerate(step.tools):
                    slug = tool.removeprefix("workflow:")
                    if tool.startswith("workflow:") and slug != definition.id and \
                            await self.store.get_workflow(self.environment, slug) is None:
                        problems.append(Problem(
                            pointer=pointer(*where, "tools", index), step_id=step.id,
                            field="tools", message=f"unknown workflow '{slug}' in environment "
                            f"'{self.environment}' (tool '{tool}')"))
        return problems

    async def _check_prompt(self, step: LlmStep, add: Any) -> None:
        assert step.prompt_id is not None
        prompt = await self.prompts.get(self.environment, step.prompt_id)
        if prompt is None:
            add(f"unknown prompt '{step.prompt_id}' in environment '{self.environment}'",
                "promptId")
            return
        version = await self.prompts.version(prompt.id, step.prompt_version
                                             or prompt.current_version)
        if version is None:
            add(f"prompt '{step.prompt_id}' has no version {step.prompt_version} (latest: "
                f"{prompt.current_version})", "promptVersion")
            return
        for source in (version.prompt_system, version.prompt_user):
            missing = referenced_names(source or "") - set(step.input_mapping) \
                - set(CONTEXT_ROOTS)
            if missing:
                add(f"prompt '{step.prompt_id}' v{version.version} uses undefined variable(s) "
                    f"{', '.join(sorted(missing))}: map them in inputMapping", "promptId")
                return

    async def _check_child(self, parent: str, step: WorkflowStep, add: Any) -> None:
        if step.workflow_slug == parent:
            add(f"workflow '{parent}' cannot run itself", "workflowSlug")
            return
        found = await self.load(step.workflow_slug, step.version)
        if found is None:
            exists = await self.store.get_workflow(self.environment, step.workflow_slug)
            if exists is None:
                add(f"unknown workflow '{step.workflow_slug}' in environment "
                    f"'{self.environment}'", "workflowSlug")
            else:
                add(f"workflow '{step.workflow_slug}' has no version {step.version}", "version")
            return
        child = WorkflowDefinition.model_validate(found[1].definition)
        cycle = await self._cycle(child, parent, [parent, child.id])
        if cycle:
            add(f"workflow steps form a cycle: {' -> '.join(cycle)}", "workflowSlug")
        declared = {v.name: v for v in child.variables}
        if declared:
            for name in step.input_mapping:
                if name not in declared:
                    add(f"'{child.id}' declares no variable '{name}'; declared: "
                        f"{', '.join(sorted(declared))}", "inputMapping", name)
            for name, variable in declared.items():
                if variable.required and variable.default is None \
                        and name not in step.input_mapping:
                    add(f"'{child.id}' requires input '{name}': map it in inputMapping",
                        "inputMapping")

    async def _cycle(self, definition: WorkflowDefinition, target: str,
                     path: list[str]) -> list[str] | None:
        if len(path) > MAX_DEPTH:
            return None
        for _, step in walk(definition.steps):
            if not isinstance(step, WorkflowStep):
                continue
            if step.workflow_slug == target:
                return [*path, target]
            found = await self.load(step.workflow_slug, step.version)
            if found is not None and step.workflow_slug not in path:
                child = WorkflowDefinition.model_validate(found[1].definition)
                if cycle := await self._cycle(child, target, [*path, child.id]):
                    return cycle
        return None

    async def resolve(self, definition: WorkflowDefinition) -> tuple[WorkflowDefinition,
                                                                    list[ChildDefinition]]:
        """The snapshot with stored prompts written in, and every child workflow it runs."""
        children: dict[tuple[str, int | None], ChildDefinition] = {}
        resolved = await self._resolve(definition, children, 0)
        return resolved, list(children.values())

    async def _resolve(self, definition: WorkflowDefinition,
                       children: dict[tuple[str, int | None], ChildDefinition],
                       depth: int) -> WorkflowDefinition:
        raw = definition.model_dump(mode="json")
        problems: list[Problem] = []
        for step in _raw_steps(raw["steps"]):
            if step.get("type") == "llm" and step.get("promptId"):
                version = await self.prompts.resolve(self.environment, step["promptId"],
                                                     step.get("promptVersion"))
                if version is None:
                    problems.append(Problem(pointer="/promptId", step_id=step["id"],
                                            field="promptId", message=(
                                                f"prompt '{step['promptId']}' (version "
                                                f"{step.get('promptVersion') or 'latest'}) "
                                                "no longer exists")))
                    continue
                step.update(promptSystem=version.prompt_system, promptUser=version.prompt_user,
                            promptVersion=version.version)
            elif step.get("type") == "agent" and depth < MAX_DEPTH:
                # An agent's workflow:<slug> tools run the latest version as child runs.
                for tool in step.get("tools") or []:
                    key = (tool.removeprefix("workflow:"), None)
                    if not tool.startswith("workflow:") or key in children:
                        continue
                    if (found := await self.load(*key)) is None:
                        continue  # refused to the model at run time: not available
                    row, version = found
                    children[key] = ChildDefinition(
                        slug=row.slug, requested_version=None, version=version.version,
                        workflow_id=str(row.id),
                        definition=WorkflowDefinition.model_validate(version.definition))
                    children[key].definition = await self._resolve(
                        children[key].definition, children, depth + 1)
            elif step.get("type") == "workflow" and depth < MAX_DEPTH:
                key = (step["workflowSlug"], step.get("version"))
                if key in children:
                    continue
                found = await self.load(*key)
                if found is None:
                    problems.append(Problem(pointer="/workflowSlug", step_id=step["id"],
                                            field="workflowSlug",
                                            message=f"workflow '{key[0]}' no longer exists"))
                    continue
                row, version = found
                child = WorkflowDefinition.model_validate(version.definition)
                children[key] = ChildDefinition(
                    slug=row.slug, requested_version=key[1], version=version.version,
                    workflow_id=str(row.id), definition=child)
                children[key].definition = await self._resolve(child, children, depth + 1)
        if problems:
            raise DefinitionInvalid(problems, "the definition refers to something missing")
        return WorkflowDefinition.model_validate(raw)
