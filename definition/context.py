"""The run context (input, steps, inputs, outputs) and dot-path resolution over it. Pure functions.

The context is ``{input, steps: {id: {input, output, status}}, inputs, outputs}``; an
``inputMapping`` value such as ``steps.step1.output.query`` or ``outputs.step2`` is a dot
path into it (list items by index: ``outputs.search.results.0.url``).
"""

from __future__ import annotations

from typing import Any

CONTEXT_ROOTS = ("input", "steps", "inputs", "outputs")


class MappingError(ValueError):
    """A dot path that does not resolve against the context."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def new_context(run_input: dict[str, Any]) -> dict[str, Any]:
    """A fresh context holding only the run's input."""
    return {"input": run_input, "steps": {}, "inputs": {}, "outputs": {}}


def record_step(
    context: dict[str, Any], step_id: str, step_input: Any, output: Any, status: str
) -> None:
    """Add a finished step to the context, under all three of its views."""
    context["steps"][step_id] = {"input": step_input, "output": output, "status": status}
    context["inputs"][step_id] = step_input
    context["outputs"][step_id] = output


def resolve_path(context: dict[str, Any], path: str) -> Any:
    """Resolve one dot path; raises MappingError naming the first segment that is missing."""
    parts = path.split(".")
    if not path or parts[0] not in CONTEXT_ROOTS:
        raise MappingError(path, f"must start with one of {', '.join(CONTEXT_ROOTS)}")
    if _reads_skipped(context, parts):
        return None
    value: Any = context
    walked: list[str] = []
    for part in parts:
        walked.append(part)
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(
            part
        ) < len(value):
            value = value[int(part)]
        else:
            raise MappingError(path, f"'{'.'.join(walked)}' is not present")
    return value


def _reads_skipped(context: dict[str, Any], parts: list[str]) -> bool:
    # A skipped step (when guard, condition jump) has no output: anything read through it is
    # null, so a step after a branch can map the outputs of either side.
    if len(parts) < 2 or parts[0] not in ("steps", "inputs", "outputs"):
        return False
    if parts[0] == "steps" and len(parts) >= 3 and parts[2] == "status":
        return False
    entry = context.get("steps", {}).get(parts[1])
    return isinstance(entry, dict) and entry.get("status") == "skipped"


def resolve_mapping(context: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The step's mapped inputs: each name bound to the value its path points at."""
    return {name: resolve_path(context, path) for name, path in mapping.items()}


def path_dependency(path: str) -> tuple[str, str | None]:
    """What a path reads: ``("input", None)`` or ``("step", step_id)``; for save-time checks."""
    parts = path.split(".")
    if parts[0] == "input":
        return "input", None
    if parts[0] in ("steps", "inputs", "outputs") and len(parts) >= 2 and parts[1]:
        return "step", parts[1]
    raise MappingError(path, f"must start with one of {', '.join(CONTEXT_ROOTS)}")
