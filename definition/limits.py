"""Size limits a definition and a run input meet before they are parsed or stored.

Checked on the raw JSON, before pydantic: a 20 MB definition used to be stored (201), could
never start (Temporal refuses a gRPC message over 4 MiB, which read as 503
``temporal_unavailable``), and a 100k-step one cost seconds of validation per request.
"""

from __future__ import annotations

import json
from typing import Any

from schema.limits import LimitsSettings
from schema.problems import Problem


class LimitExceeded(Exception):
    """A request past one of the door limits of ``settings.limits``: answered ``status`` with
    the error ``code`` and one problem saying which limit and where."""

    def __init__(self, status: int, code: str, problem: Problem) -> None:
        super().__init__(problem.message)
        self.status, self.code, self.problem = status, code, problem


def compact_size(value: Any) -> int:
    """Bytes of a JSON value written compactly in UTF-8: what the size limits count."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode(errors="surrogatepass"))


def count_steps(steps: Any, stop: int) -> int:
    """Steps in a raw step list, those in parallel branches and map steps included; counting
    stops once past ``stop``."""
    total = 0
    pending = [steps]
    while pending and total <= stop:
        current = pending.pop()
        if not isinstance(current, list):
            continue
        for step in current:
            total += 1
            if not isinstance(step, dict):
                continue
            branches = step.get("branches")
            pending += branches.values() if isinstance(branches, dict) else (
                branches if isinstance(branches, list) else [])
            pending.append(step.get("steps") if step.get("type") == "map" else None)
    return total


def check_definition_size(raw: Any, limits: LimitsSettings, where: str = "") -> None:
    """413 ``definition_too_large`` over ``max_definition_bytes``, 422 ``too_many_steps``
    over ``max_steps``; ``where`` is the definition's pointer in the request body."""
    size = compact_size(raw)
    if size > limits.max_definition_bytes:
        raise LimitExceeded(413, "definition_too_large", Problem(
            pointer=where, message=f"the definition is {size:,} bytes as compact JSON, over the "
            f"limit of {limits.max_definition_bytes:,} (PROMPTPILOT_LIMITS__MAX_DEFINITION_BYTES)"))
    steps = count_steps(raw.get("steps") if isinstance(raw, dict) else None, limits.max_steps)
    if steps > limits.max_steps:
        raise LimitExceeded(422, "too_many_steps", Problem(
            pointer=f"{where}/steps", field="steps", message=f"the definition has more than "
            f"{limits.max_steps:,} steps, nested ones included "
            "(PROMPTPILOT_LIMITS__MAX_STEPS)"))


def check_input_size(value: Any, limits: LimitsSettings, where: str = "/input") -> None:
    """413 ``input_too_large`` when a run input is over ``max_run_input_bytes``."""
    size = compact_size(value)
    if size > limits.max_run_input_bytes:
        raise LimitExceeded(413, "input_too_large", Problem(
            pointer=where, message=f"the run input is {size:,} bytes as compact JSON, over the "
            f"limit of {limits.max_run_input_bytes:,} (PROMPTPILOT_LIMITS__MAX_RUN_INPUT_BYTES)"))
