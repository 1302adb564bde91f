"""Schemathesis hooks for the API fuzz runs: every 4xx body is our error envelope, and path
parameters name real resources (``PP_FUZZ_TARGETS``, set by ``tests.api_fuzz``) as often as
generated ones, so operations are exercised past their 404."""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from schema.definition import SLUG_PATTERN

# Deeply nested step schemas make hypothesis draw near Python's recursion limit, where
# CPython 3.11's ast.parse (hypothesis reads strategy lambdas with it) fails with
# "AST constructor recursion depth mismatch": a crash of the fuzzer, not of the API.
sys.setrecursionlimit(10_000)

TARGETS: dict[str, Any] = json.loads(os.environ.get("PP_FUZZ_TARGETS", "{}"))
CALLS = os.environ.get("PP_FUZZ_CALLS")
"""Where every answer's status, method and path go, one line each (the 5xx count)."""
WRITES = os.environ.get("PP_FUZZ_WRITES")
"""Where every call that writes a trigger goes, a JSON line each: what a trigger that ends up
inconsistent was sent (see ``tests.api_fuzz.trigger_problems``)."""


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """4xx answers carry ``{"success": false, "error": {"code", "message"}}``, no stack."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"4xx body is not an object: {body!r}"
    assert body.get("success") is False, f"4xx without success=false: {body}"
    error = body.get("error")
    assert isinstance(error, dict), f"4xx without an error object: {body}"
    assert isinstance(error.get("code"), str), f"4xx without a code: {body}"
    assert error["code"], f"4xx with an empty code: {body}"
    assert isinstance(error.get("message"), str), f"4xx without a message: {body}"
    assert error["message"], f"4xx with an empty message: {body}"
    assert "Traceback" not in error["message"], f"a stack trace leaked: {body}"
    return True


# The codec server speaks Temporal's remote codec protocol: its body is protobuf JSON, read the
# way the Temporal UI and CLI send it (unknown fields ignored, bytes as base64), which a JSON
# Schema can only approximate. Whether such a body is accepted is the protocol's call, so the
# two checks that judge acceptance against the schema are false positives there (ST201, ST202);
# every other check still runs on it. (A config file's per-operation `enabled = false` loses
# to `--checks all` on the command line, hence this hook.)
_PROTOCOL_BODIES = {"/codec/{operation}": ("negative_data_rejection", "positive_data_acceptance")}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the codec body's acceptance checks (see above)."""
    skipped = _PROTOCOL_BODIES.get(case.operation.path, ())
    return not any(check in skipped for check in type(failure).checks)


def known(method: str, path: str) -> dict[str, Any]:
    """The real resources an operation's path parameters may name."""
    if not TARGETS:
        return {}
    found: dict[str, Any] = {"version": 1, "step_id": TARGETS["step_id"]}
    if path.startswith("/api/prompts/"):
        found["slug"] = TARGETS["prompt"]
    elif path == "/api/workflows/{slug}" and method == "PUT":
        # New versions go to a workflow of their own: the one runs use keeps its definition.
        found["slug"] = TARGETS["edited_slug"]
    else:
        found["slug"] = TARGETS["slug"]
    if path.endswith(("/approve", "/reject")):
        found["run_id"] = TARGETS["waiting_run"]
    elif path.endswith("/cancel"):
        found["run_id"] = TARGETS["cancel_run"]
    else:
        found["run_id"] = TARGETS["run"]
    if path.startswith("/api/webhooks/"):
        found["trigger_id"] = TARGETS["webhook_trigger"]
    elif method == "DELETE":
        found["trigger_id"] = TARGETS["deleted_trigger"]
    elif path.endswith(("/pause", "/unpause", "/trigger", "/backfill")):
        found["trigger_id"] = TARGETS["scheduled_trigger"]
    else:
        found["trigger_id"] = TARGETS["trigger"]
    return found


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the cases name a real workflow, run, trigger or prompt; half keep the draw."""
    operation = context.operation
    if not path_parameters or operation is None:
        return st.just(path_parameters)
    names = known(operation.method.upper(), operation.path)
    # Only a drawn value of the parameter's own shape is swapped: an invalid one is the draw of
    # a negative case, which must reach the API as drawn.
    real = {**path_parameters, **{key: value for key, value in names.items()
                                  if key in path_parameters and _valid(key, path_parameters[key])}}
    return st.sampled_from([real, path_parameters])


def _valid(name: str, value: Any) -> bool:
    if name.endswith("_id") and name != "step_id":
        try:
            uuid.UUID(str(value))
        except ValueError:
            return False
        return True
    if name == "version":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31
    return isinstance(value, str)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half the bodies that name a workflow or a step name a real one."""
    operation = context.operation
    if not TARGETS or operation is None or not isinstance(body, dict):
        return st.just(body)
    method, path = operation.method.upper(), operation.path
    field, value = None, None
    if path == "/api/triggers" and method == "POST":
        field, value = "workflowSlug", TARGETS["slug"]
    elif path.endswith("/rerun"):
        field, value = "fromStepId", "t1"
    elif path == "/api/workflows/{slug}" and method == "PUT":
        field, value = "id", TARGETS["edited_slug"]
    # As with path parameters, a drawn value of the wrong shape belongs to a negative case.
    drawn = body.get(field) if field else None
    if not isinstance(drawn, str) or (field == "id" and not re.fullmatch(SLUG_PATTERN, drawn)):
        return st.just(body)
    return st.sampled_from([{**body, field: value}, body])


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Note every answer, so the run's figures count all of them, not only failures."""
    if CALLS:
        with open(CALLS, "a", encoding="utf-8") as calls:
            calls.write(f"{response.status_code} {case.method} {case.formatted_path}\n")
    if WRITES and case.path.startswith(("/api/triggers", "/api/webhooks")) \
            and case.method.upper() != "GET":
        with open(WRITES, "a", encoding="utf-8") as writes:
            writes.write(json.dumps({
                "status": response.status_code, "method": case.method,
                "path": case.formatted_path, "body": case.body if isinstance(
                    case.body, dict | list | str | int | float | bool) else repr(case.body),
                "answer": response.text[:2000]}, default=repr) + "\n")
