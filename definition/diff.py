"""A structured diff of two definition versions (steps matched by id) and of any two JSON values:
changes as JSON pointers.

Steps are compared by id, not position, so inserting a step reports one added step rather
than every later step as changed. Each change is jsonpatch-like (`add`, `remove`,
`replace`) and points into the *to* version (into the *from* version for removals).
"""

from __future__ import annotations

from typing import Any

from schema.api import DefinitionChange, StepChanges
from schema.problems import pointer


def _walk(old: Any, new: Any, path: tuple[str | int, ...], step_id: str | None,
          out: list[DefinitionChange]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                out.append(DefinitionChange(op="remove", path=pointer(*path, key),
                                            step_id=step_id, old=old[key]))
        for key, value in new.items():
            if key not in old:
                out.append(DefinitionChange(op="add", path=pointer(*path, key),
                                            step_id=step_id, new=value))
            else:
                _walk(old[key], value, (*path, key), step_id, out)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(min(len(old), len(new))):
            _walk(old[index], new[index], (*path, index), step_id, out)
        for index in range(len(new), len(old)):
            out.append(DefinitionChange(op="remove", path=pointer(*path, index),
                                        step_id=step_id, old=old[index]))
        for index in range(len(old), len(new)):
            out.append(DefinitionChange(op="add", path=pointer(*path, index),
                                        step_id=step_id, new=new[index]))
    elif old != new or type(old) is not type(new):
        out.append(DefinitionChange(op="replace", path=pointer(*path), step_id=step_id,
                                    old=old, new=new))


def json_changes(old: Any, new: Any, step_id: str | None = None) -> list[DefinitionChange]:
    """Every change from ``old`` to ``new`` (any JSON values), as JSON-pointer changes."""
    changes: list[DefinitionChange] = []
    _walk(old, new, (), step_id, changes)
    return changes


def diff_definitions(old: dict[str, Any], new: dict[str, Any]
                     ) -> tuple[StepChanges, list[DefinitionChange]]:
    """What changed from `old` to `new`: a per-step summary and every change."""
    changes: list[DefinitionChange] = []
    _walk({k: v for k, v in old.items() if k != "steps"},
          {k: v for k, v in new.items() if k != "steps"}, (), None, changes)
    old_steps = {str(s.get("id", i)): (i, s) for i, s in enumerate(old.get("steps", []))}
    new_steps = {str(s.get("id", i)): (i, s) for i, s in enumerate(new.get("steps", []))}
    summary = StepChanges()
    for step_id, (index, step) in old_steps.items():
        if step_id not in new_steps:
            summary.removed.append(step_id)
            changes.append(DefinitionChange(op="remove", path=pointer("steps", index),
                                            step_id=step_id, old=step))
    kept = [s for s in old_steps if s in new_steps]
    kept_order = [s for s in new_steps if s in old_steps]
    for step_id, (index, step) in new_steps.items():
        if step_id not in old_steps:
            summary.added.append(step_id)
            changes.append(DefinitionChange(op="add", path=pointer("steps", index),
                                            step_id=step_id, new=step))
            continue
        before = len(changes)
        _walk(old_steps[step_id][1], step, ("steps", index), step_id, changes)
        if len(changes) > before:
            summary.changed.append(step_id)
        if kept.index(step_id) != kept_order.index(step_id):
            summary.moved.append(step_id)
    return summary, changes
