"""Schemathesis over the API's own OpenAPI document, against a running service.

``fuzz_targets`` makes the resources the fuzzer's path parameters may name (see
``tests.fuzz_checks``); ``run_schemathesis`` runs the CLI in a subprocess and returns what
it printed, with every 5xx answer it got (noted by the ``after_call`` hook).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from promptpilot.settings import Settings
from schema.definition import WorkflowDefinition
from schema.triggers import ScheduleConfig
from tests.conftest import DEV_KEY, Service, unique_slug

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _transform(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "fuzz target",
            "steps": [{"id": "t1", "type": "transform", "inputMapping": {"v": "input.v"}}]}


def _approval(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "fuzz approval",
            "steps": [{"id": "ok", "type": "approval", "timeoutSeconds": 3600}]}


async def fuzz_targets(service: Service) -> dict[str, Any]:
    """A workflow with a completed run, two runs waiting for approval, triggers of each kind
    the operations act on, and a stored prompt."""
    http = service.http
    slug, edited, waiting = unique_slug("fuzz"), unique_slug("fuzz-edit"), unique_slug("fuzz-ok")
    for definition in (_transform(slug), _transform(edited), _approval(waiting)):
        await service.create_workflow(definition)
    run = (await service.run(slug, {"v": 1})).json()["run"]["id"]
    held = [(await http.post(f"/api/workflows/{waiting}/run", params={"wait": 0},
                             json={"input": {}})).json()["run"]["id"] for _ in range(2)]

    async def trigger(kind: str, **fields: Any) -> str:
        response = await http.post("/api/triggers", json={
            "workflowSlug": slug, "name": f"fuzz {kind}", "type": kind, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["trigger"]["id"])

    prompt = unique_slug("fuzz-prompt")
    created = await http.post("/api/prompts", json={"id": prompt, "name": "fuzz",
                                                    "promptUser": "Hello {{name}}"})
    assert created.status_code == 201, created.text
    return {
        "slug": slug, "edited_slug": edited, "run": run, "waiting_run": held[0],
        "cancel_run": held[1], "step_id": "ok", "prompt": prompt,
        "trigger": await trigger("manual"), "deleted_trigger": await trigger("manual"),
        "webhook_trigger": await trigger("webhook"),
        # Yearly, so a backfill over any range the fuzzer draws fires a bounded number of runs.
        "scheduled_trigger": await trigger("scheduled", config={
            "cronExpressions": ["0 0 1 1 *"]}),
    }


async def unreadable_versions(engine: AsyncEngine, since: datetime) -> list[str]:
    """Versions stored since then that do not read as a definition, each with its problem
    and what it holds: every save was checked, so the list should be empty."""
    async with engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT version, definition FROM workflow_versions WHERE created_at >= :since"),
            {"since": since})).all()
    found = []
    for version, definition in rows:
        try:
            WorkflowDefinition.model_validate(definition)
        except ValidationError as exc:
            found.append(f"v{version}: {exc}\n{json.dumps(definition)[:3000]}")
    return found


async def trigger_problems(service: Service, engine: AsyncEngine, since: datetime,
                           writes: Path) -> list[str]:
    """Scheduled triggers made since then whose stored config does not read, or which are
    enabled with no schedule in Temporal, each with every write the fuzzer sent it."""
    async with engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT id, environment, enabled, config FROM triggers "
            "WHERE type = 'scheduled' AND created_at >= :since"), {"since": since})).all()
    sent = writes.read_text(encoding="utf-8").splitlines() if writes.exists() else []
    found = []
    for trigger_id, environment, enabled, config in rows:
        problems = []
        try:
            ScheduleConfig.model_validate(config)
        except ValidationError as exc:
            problems.append(f"config does not read: {exc}")
        if enabled:
            client = await Client.connect(service.settings.temporal.address,
                                          namespace=environment)
            try:
                await client.get_schedule_handle(f"pp-trigger-{trigger_id}").describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                problems.append("enabled, and Temporal has no schedule for it")
        if problems:
            history = [line for line in sent if str(trigger_id) in line]
            found.append(f"trigger {trigger_id}: {'; '.join(problems)}\nconfig: "
                         f"{json.dumps(config)}\nwrites:\n" + "\n".join(history)[-4000:])
    return found


def fuzz_settings(settings: Settings) -> Settings:
    """The fuzzer sends invalid credentials on purpose, thousands of times from one address:
    past the throttle they would be 429s (tests/e2e/test_auth_throttle.py tests that). And a
    start without `?wait` of a workflow that waits for approval holds its request for the
    whole default wait, past schemathesis's 10 s response-time check: waits are short here."""
    settings.api.auth_throttle.client_failures = 1_000_000
    settings.api.auth_throttle.prefix_failures = 1_000_000
    settings.api.run_wait_seconds = 3
    return settings


@dataclass
class FuzzRun:
    """What one schemathesis run found."""

    returncode: int
    output: str
    seconds: float
    server_errors: list[str]
    cases: int


async def run_schemathesis(service: Service, targets: dict[str, Any], *, max_examples: int,
                           phases: str, seed: int, calls: Path, writes: Path | None = None,
                           extra: tuple[str, ...] = ()) -> FuzzRun:
    """Every operation but the event stream, with every check (tests/schemathesis.toml). One
    worker: with the seed fixed the cases drawn are the same every run (two workers drew them
    in a varying order, and some orders crashed CPython 3.11.7's compile() inside hypothesis,
    gh-106905: "AST constructor recursion depth mismatch")."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{service.url}/openapi.json", "--checks", "all",
        "--phases", phases, "--max-examples", str(max_examples), "--seed", str(seed),
        "--no-shrink", "--workers", "1", "--request-timeout", "30",
        "--header", f"Authorization: Bearer {DEV_KEY}",
        # Event streams stay open by design: they are not request/response operations.
        "--exclude-path-regex", r"/events$",
        # Revoking keys: the fuzzer would revoke the key every later test signs in with (the
        # session shares one database); tests/e2e/test_cli_runs.py covers the route.
        "--exclude-operation-id", "delete_key_api_keys__key_id__delete",
        "--suppress-health-check", "all", "--no-color", "--continue-on-failure", *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_checks", "PYTHONPATH": str(ROOT),
           "PP_FUZZ_TARGETS": json.dumps(targets), "PP_FUZZ_CALLS": str(calls),
           "PP_FUZZ_WRITES": str(writes or calls.with_name("writes.jsonl"))}
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    errors, cases = server_errors(calls)
    return FuzzRun(process.returncode or 0, output.decode(errors="replace"),
                   time.monotonic() - began, errors, cases)


def server_errors(calls: Path) -> tuple[list[str], int]:
    """Every 5xx answer the run got (`status METHOD path`), and how many answers it got."""
    if not calls.exists():
        return [], 0
    lines = calls.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if line[:1] == "5"], len(lines)
