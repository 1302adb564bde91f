"""Generated adversarial definitions and inputs, and the check that every run they start ends.

Hypothesis draws the cases (derandomized, so a failure names a case that comes back); the
cases are then sent to a real API one by one. What must hold for every case:
- no answer is a 5xx;
- every run the API accepted reaches a final state within the deadline;
- the mirror's final status is the one Temporal reports for the same run, and a failed run
  names its error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowExecutionStatus

from tests.conftest import unique_slug

FINAL = ("completed", "failed", "cancelled")
# What Temporal may say for each final mirror status.
AGREES: dict[str, set[WorkflowExecutionStatus]] = {
    "completed": {WorkflowExecutionStatus.COMPLETED},
    "failed": {WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED,
               WorkflowExecutionStatus.TIMED_OUT},
    "cancelled": {WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.TERMINATED},
}

MAPPED = {"text": "input.text", "n": "input.n", "items": "input.items", "blob": "input.blob"}

# Templates a user may write: harmless, broken, or unbounded in time, memory or output.
TEMPLATES = [
    "Tell me about {{ text }}",
    "{{ blob }} and {{ items }}",
    "{% for i in range(n) %}x{% endfor %}",
    "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}",
    "{% for a in items %}{% for b in items %}{% for c in items %}.{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{{ 'x' * n }}",
    "{{ text * n }}",
    "{{ items * n }}",
    "{{ n ** n }}",
    "{{ (n ** 50) ** 50 }}",
    "{{ lipsum(n) }}",
    "{{ range(n) | list }}",
    "{{ text | center(n) }}",
    "{{ text | indent(n) }}",
    "{{ '%s' | format(text) * n }}",
    "{% macro f(k) %}{{ f(k) }}{% endmacro %}{{ f(1) }}",
    "{% macro g(k) %}{{ g(k) }}{{ g(k) }}{% endmacro %}{{ g(1) }}",
    "{{ blob.a.b.c.d }}",
    "{{ text.__class__ }}",
    "{{ items | sort | join(',') }}",
    "{{ items | sum }}",
    "{{ n / 0 }}",
    "{{ text | int / (n - n) }}",
    "{% set s = text %}{% for i in range(n) %}{% set s = s ~ s %}{% endfor %}{{ s }}",
    "{{ cycler(items).next() }}",
    "{{ blob | tojson }}",
    "{{ [text] * n | join }}",
]

EXPRESSIONS = [
    "x", "x.a", "length(x)", "x[*]", "sort(x)", "max(x)", "join(',', x)", "{k: x}",
    "x | [0]", "to_number(x)", "keys(x)", "values(x)", "sum(x)", "x[?@ > `1`]",
    "abs(x)", "merge(x, x)", "not_null(x, `1`)", "reverse(x)", "x.*.*.*",
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=20,
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


TEXTS = st.one_of(st.text(max_size=40), st.sampled_from(["é" * 50, "x" * 5000, "\x00", "\ud800",
                                                         "a\udfffb"]))
NUMBERS = st.one_of(st.integers(-3, 12), st.sampled_from([10**5, 10**8, 10**12, 2**31, 2**63,
                                                          -(2**63), 10**30]))
BLOBS = st.one_of(JSON, st.sampled_from([50, 200, 250, 300, 500]).map(_nested))


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to four steps of the kinds that need no outside service."""
    out: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["llm", "transform", "transform", "tool", "map"]))
        step_id = f"s{index}"
        if kind == "llm":
            out.append({"id": step_id, "type": "llm", "provider": "offline", "model": "demo",
                        "promptUser": draw(st.sampled_from(TEMPLATES)),
                        "promptSystem": draw(st.sampled_from([None, *TEMPLATES[:4]])),
                        "inputMapping": dict(MAPPED)})
        elif kind == "transform":
            source = draw(st.sampled_from(["input.blob", "input.items", "input.n", "input.text",
                                           *(f"outputs.s{i}" for i in range(index))]))
            out.append({"id": step_id, "type": "transform",
                        "expression": draw(st.sampled_from(EXPRESSIONS)),
                        "inputMapping": {"x": source}})
        elif kind == "tool":
            out.append({"id": step_id, "type": "tool", "toolName": "web_search",
                        "args": {"limit": draw(st.integers(1, 5))},
                        "inputMapping": {"query": "input.text"}})
        else:
            out.append({"id": step_id, "type": "map", "items": "input.items",
                        "concurrency": draw(st.integers(1, 5)),
                        "steps": [{"id": f"{step_id}i", "type": "transform",
                                   "expression": draw(st.sampled_from(EXPRESSIONS)),
                                   "inputMapping": {"x": "input.item"}}]})
        for key in [k for k, v in out[-1].items() if v is None]:
            del out[-1][key]
    return out


def _json_type(value: Any) -> str:
    """The variable type that admits ``value`` (null and floats: "string", a 422)."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (dict, "object"), (list, "array")):
        if isinstance(value, kind):
            return name
    return "string"


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A definition and the input of one run of it."""
    run_input: dict[str, Any] = {"text": draw(TEXTS), "n": draw(NUMBERS),
                                 "items": draw(st.lists(JSON, max_size=6)),
                                 "blob": draw(BLOBS)}
    if draw(st.sampled_from([False] * 9 + [True])):  # now and then an undeclared input
        run_input[draw(st.text(max_size=10))] = draw(JSON)
    return {
        "definition": {
            "id": "adv", "name": draw(st.text(min_size=1, max_size=30)),
            "variables": [{"name": "text", "type": "string"},
                          {"name": "n", "type": "integer"},
                          {"name": "items", "type": "array"},
                          {"name": "blob", "type": _json_type(run_input["blob"])}],
            "steps": draw(steps()),
        },
        "input": run_input,
    }


def draw_cases(count: int) -> list[dict[str, Any]]:
    """``count`` cases, the same ones on every call (derandomized, no example database)."""
    drawn: list[dict[str, Any]] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cases())
    def collect(case: dict[str, Any]) -> None:
        drawn.append(case)

    collect()
    return drawn


@dataclass
class Outcome:
    """What the API did with the cases."""

    tried: int = 0
    server_errors: list[str] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """run id -> the case that started it."""
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    """Why cases were refused: the error code and the first problem's pointer."""
    statuses: dict[str, str] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)
    non_final: list[str] = field(default_factory=list)


async def _post(http: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    # ASCII-escaped JSON, as most clients send it: a lone surrogate travels as "\\ud800".
    return await http.post(path, content=json.dumps(body),
                           headers={"Content-Type": "application/json"})


async def send(http: httpx.AsyncClient, drawn: list[dict[str, Any]]) -> Outcome:
    """Store each case's definition under a fresh slug and start one run of it."""
    outcome = Outcome()
    for case in drawn:
        outcome.tried += 1
        definition = {**case["definition"], "id": unique_slug("adv")}
        created = await _post(http, "/api/workflows", definition)
        if created.status_code >= 500:
            outcome.server_errors.append(f"create {created.status_code}: {created.text[:200]}")
            continue
        if created.status_code != 201:
            outcome.refused += 1
            outcome.reasons[_reason("create", created)] += 1
            continue
        started = await _post(http, f"/api/workflows/{definition['id']}/run?wait=0",
                              {"input": case["input"]})
        if started.status_code >= 500:
            outcome.server_errors.append(f"run {started.status_code}: {started.text[:200]}")
        elif started.status_code in (200, 202):
            outcome.accepted[started.json()["run"]["id"]] = case
        else:
            outcome.refused += 1
            outcome.reasons[_reason("run", started)] += 1
    return outcome


def _reason(what: str, response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{what} {response.status_code}"
    problems = error.get("problems") or [{"message": error.get("message", "")}]
    return f"{what} {response.status_code} {error.get('code')} " \
           f"{problems[0].get('pointer', '')} {problems[0].get('message', '')[:60]}"


async def settle(http: httpx.AsyncClient, temporal: Client, outcome: Outcome,
                 within: float) -> None:
    """Wait until every accepted run is final (or the deadline passes); compare with Temporal."""
    deadline = time.monotonic() + within
    waiting = set(outcome.accepted)
    while waiting and time.monotonic() < deadline:
        for run_id in list(waiting):
            response = await http.get(f"/api/workflows/runs/{run_id}")
            if response.status_code >= 500:
                outcome.server_errors.append(f"get run {response.status_code}")
                continue
            run = response.json()["run"]
            if run["status"] in FINAL:
                outcome.statuses[run_id] = run["status"]
                if run["status"] == "failed" and not (run.get("error") or {}).get("type"):
                    outcome.disagreements.append(f"{run_id}: failed without an error type")
                waiting.discard(run_id)
        if waiting:
            await asyncio.sleep(0.25)
    outcome.non_final = sorted(waiting)
    for run_id, status in outcome.statuses.items():
        described = await temporal.get_workflow_handle(run_id).describe()
        if described.status not in AGREES[status]:
            outcome.disagreements.append(
                f"{run_id}: mirror {status}, Temporal {described.status}")
    for listed in ("/api/workflows/runs?limit=200", "/api/workflows?limit=200"):
        response = await http.get(listed)
        if response.status_code >= 500:
            outcome.server_errors.append(f"{listed} {response.status_code}")

