"""Runs from the command line: start and follow one, list them, cancel one, decide approvals."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from promptpilot.cli.client import OK, REFUSED, USAGE, Api, CliError, connect, err, out, segment
from promptpilot.settings import Settings

FINISHED = ("completed", "failed", "cancelled")


def _step_line(step: dict[str, Any]) -> str:
    cost = "" if step.get("cost") is None else f" cost=${step['cost']:.6f}"
    problem = step.get("error")
    message = problem.get("message") if isinstance(problem, dict) else problem
    error = f" error={message}" if message else ""
    return f"  {step['stepId']:<20} {step['status']:<10}{cost}{error}"


def approval_hint(run_id: str, step_id: str) -> str:
    """What to type to decide a waiting approval step."""
    return (f"  step '{step_id}' waits for approval: promptpilot approve {run_id} {step_id} "
            "(or --reject, with --comment TEXT)")


class _Printer:
    """Step transitions one line each; a step's streamed text as it comes, after a
    ``  <step> | `` lead, on a line of its own."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seen: dict[str, str] = {}
        self._live: tuple[Any, ...] | None = None

    def end_text(self) -> None:
        """End a line of streamed text."""
        if self._live is not None:
            sys.stdout.write("\n")
            self._live = None

    def text(self, delta: dict[str, Any]) -> None:
        key = (delta.get("stepId"), delta.get("attempt"), delta.get("turn"),
               delta.get("repair"))
        if key != self._live:
            self.end_text()
            notes = [f"{name} {delta[name]}" for name in ("turn", "repair") if delta.get(name)]
            if (delta.get("attempt") or 1) > 1:
                notes.append(f"attempt {delta['attempt']}")
            lead = f" ({', '.join(notes)})" if notes else ""
            sys.stdout.write(f"  {delta.get('stepId')}{lead} | ")
            self._live = key
        sys.stdout.write(str(delta.get("text", "")))
        sys.stdout.flush()

    def step(self, step: dict[str, Any], kind: str | None = None) -> bool:
        """Print a step whose status changed; True when it is an approval now waiting."""
        if self.seen.get(step["stepId"]) == step["status"]:
            return False
        self.seen[step["stepId"]] = step["status"]
        self.end_text()
        out(_step_line(step))
        return step["status"] == "waiting" and kind in (None, "approval")

    def line(self, message: str) -> None:
        """A line of its own."""
        self.end_text()
        out(message)


async def _approval(api: Api, printer: _Printer, step_id: str) -> None:
    """Say how to decide a step that began to wait, when it is an approval."""
    _, body = await api.call("GET", f"/api/workflows/runs/{printer.run_id}")
    for step in body["run"].get("steps") or []:
        if step["stepId"] == step_id and step.get("type") == "approval":
            printer.line(approval_hint(printer.run_id, step_id))


async def _follow(api: Api, run: dict[str, Any]) -> dict[str, Any]:
    """Print each step as its status changes, and streamed text as it comes, until the run
    finishes (the run's event stream; polling when the stream cannot be had); the final
    run."""
    printer = _Printer(run["id"])
    status = run["status"]
    try:
        async with aconnect_sse(api.http, "GET", f"/api/workflows/runs/{run['id']}/events",
                                timeout=httpx.Timeout(60, read=None)) as source:
            if source.response.status_code != 200:
                raise httpx.TransportError(f"event stream answered {source.response.status_code}")
            async for event in source.aiter_sse():
                data = event.json()
                if event.event == "delta":
                    printer.text(data)
                elif event.event == "step":
                    if printer.step(data):
                        await _approval(api, printer, data["stepId"])
                elif event.event == "run" and data.get("status") != status:
                    status = data.get("status")
                    if status == "stalled":
                        error = (data.get("error") or {}).get("message", "")
                        printer.line(f"run stalled: {error}".rstrip())
    except (httpx.TransportError, SSEError):
        pass  # the run is read below (and, if it is not finished, polled)
    printer.end_text()
    return await _poll(api, run, printer)


async def _poll(api: Api, run: dict[str, Any], printer: _Printer) -> dict[str, Any]:
    """Read the run until it finishes, printing steps the stream did not show."""
    status = run["status"]
    while True:
        _, body = await api.call("GET", f"/api/workflows/runs/{run['id']}")
        run = body["run"]
        if run["status"] != status and run["status"] == "stalled":
            # Not finished: a fixed deploy resumes it, a cancel ends it.
            printer.line(f"run stalled: {(run.get('error') or {}).get('message', '')}")
        status = run["status"]
        for step in run.get("steps") or []:
            if printer.step(step, step.get("type")):
                printer.line(approval_hint(run["id"], step["stepId"]))
        if run["status"] in FINISHED:
            return run
        await asyncio.sleep(0.3)


async def start(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot run SLUG` (`runs start SLUG`): start a run and follow its steps."""
    try:
        run_input = json.loads(args.input or "{}")
    except json.JSONDecodeError as exc:
        raise CliError(USAGE, f"--input is not JSON: {exc}") from exc
    body: dict[str, Any] = {"input": run_input}
    if args.from_step:
        body["fromStepId"] = args.from_step
        if args.input is None:
            del body["input"]  # a rerun without --input reuses the source run's input
    async with connect(settings, args) as api:
        _, started = await api.call("POST", f"/api/workflows/{segment(args.slug)}/run",
                                    params={"wait": 0}, json=body)
        run = started["run"]
        if args.detach:
            out(run["id"])
            return OK
        out(f"run {run['id']} started")
        run = await _follow(api, run)
    out(f"run {run['status']}; actualCost={run.get('actualCost')}")
    out(json.dumps(run.get("outputJson"), indent=2))
    if run.get("error") and run["status"] != "completed":
        err(f"error: {run['error'].get('message', '')}")
    return OK if run["status"] == "completed" else REFUSED


def _started(run: dict[str, Any]) -> str:
    stamp = run.get("startedAt") or run.get("createdAt") or ""
    return str(stamp)[:19].replace("T", " ")


def _cost(run: dict[str, Any]) -> str:
    cost = run.get("actualCost")
    return "-" if cost is None else f"${cost:.6f}"


async def list_runs(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot runs list`: recent runs of the environment, newest first."""
    params: dict[str, Any] = {"limit": args.limit}
    if args.workflow:
        params["workflow"] = args.workflow
    if args.status:
        params["status"] = args.status
    async with connect(settings, args) as api:
        _, body = await api.call("GET", "/api/workflows/runs", params=params)
    runs = body.get("runs") or []
    if args.quiet:
        for run in runs:
            out(run["id"])
        return OK
    rows = [(r["id"], r.get("workflowSlug") or r.get("workflowId", ""), r["status"],
             _started(r), _cost(r)) for r in runs]
    header = ("RUN", "WORKFLOW", "STATUS", "STARTED (UTC)", "COST")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip())
    if not runs:
        out("(no runs)")
    return OK


async def cancel(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot runs cancel RUN`: cancel through Temporal; prints how the run stands."""
    async with connect(settings, args) as api:
        status, body = await api.call("POST", f"/api/workflows/runs/{segment(args.run)}/cancel")
    run = body["run"]
    out(f"run {run['id']} {run['status']}" + (" (cancel requested; the step in flight is "
                                               "being cancelled)" if status == 202 else ""))
    return OK


async def _decide(api: Api, args: argparse.Namespace, path: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    """Send the decision; while the run has not reached the step yet (it is pending, or the
    step has not started waiting), ask again until ``--wait`` runs out."""
    deadline = asyncio.get_running_loop().time() + args.wait
    while True:
        try:
            _, answer = await api.call("POST", path, json=body, params={"wait": args.wait},
                                       timeout=args.wait + 30)
            return answer
        except CliError as exc:
            if exc.code != REFUSED or asyncio.get_running_loop().time() >= deadline or \
                    not await _not_there_yet(api, args.run, args.step):
                raise
        await asyncio.sleep(0.2)


async def _not_there_yet(api: Api, run_id: str, step_id: str) -> bool:
    """Whether the run is still going and its step has not been reached (nor decided)."""
    _, body = await api.call("GET", f"/api/workflows/runs/{segment(run_id)}")
    run = body["run"]
    steps = [s for s in run.get("steps") or [] if s["stepId"] == step_id]
    return run["status"] in ("pending", "running") and all(
        s["status"] in ("pending", "running") for s in steps)


async def approve(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot approve RUN STEP [--reject] [--comment TEXT]`: decide a waiting step."""
    decision = "reject" if args.reject else "approve"
    body: dict[str, Any] = {} if args.comment is None else {"comment": args.comment}
    path = f"/api/workflows/runs/{segment(args.run)}/steps/{segment(args.step)}/{decision}"
    async with connect(settings, args) as api:
        answer = await _decide(api, args, path, body)
    run = answer["run"]
    out(f"step {args.step} {decision.rstrip('e')}ed; run {run['id']} is {run['status']}")
    for step in run.get("steps") or []:
        out(_step_line(step))
        if step["status"] == "waiting" and step.get("type") == "approval":
            out(approval_hint(run["id"], step["stepId"]))
    return OK
