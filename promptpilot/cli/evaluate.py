"""`promptpilot eval SLUG`: a candidate definition (a file) run over past runs or explicit
cases, checked by assertions; exits 1 when the pass rate is under the bar or a case regressed
(for CI)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from promptpilot.cli.client import (
    OK,
    REFUSED,
    USAGE,
    CliError,
    add_connection_options,
    connect,
    out,
    segment,
)
from promptpilot.settings import Settings

DEFAULT_ASSERTION = {"type": "jmespath", "expression": "output != null"}


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `eval` command's arguments."""
    parser = sub.add_parser("eval", help="evaluate a candidate definition over past runs "
                            "(exit 1 under --fail-under or on a regression)")
    parser.add_argument("slug")
    parser.add_argument("--candidate", type=Path, help="a definition file (JSON); without "
                        "one, the current version")
    parser.add_argument("--version", type=int, help="a stored version as the candidate")
    parser.add_argument("--from-runs", type=int, default=20, help="the newest N completed runs")
    parser.add_argument("--assertions", type=Path, help="a JSON file with the assertions "
                        "(default: every output is not null)")
    parser.add_argument("--fail-under", type=float, default=1.0, help="the lowest pass rate "
                        "that exits 0 (0-1)")
    parser.add_argument("--no-cache", action="store_true", help="call every model again "
                        "(llmCache: off)")
    parser.add_argument("--wait", type=float, default=600, help="seconds to wait for it")
    add_connection_options(parser)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(USAGE, f"{path}: {exc}") from exc


async def evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Start the evaluation, wait for it, print the summary and the failing cases."""
    if args.candidate is not None:
        candidate: dict[str, Any] = {"definition": _read(args.candidate)}
    elif args.version is not None:
        candidate = {"version": args.version}
    else:
        raise CliError(USAGE, "give --candidate FILE or --version N")
    assertions = _read(args.assertions) if args.assertions else [DEFAULT_ASSERTION]
    body = {"candidate": candidate, "dataset": {"fromRuns": {"limit": args.from_runs}},
            "assertions": assertions, "llmCache": "off" if args.no_cache else "use"}
    async with connect(settings, args) as api:
        _, started = await api.call("POST", f"/api/workflows/{segment(args.slug)}/evaluations",
                                    json=body)
        evaluation_id = started["evaluation"]["id"]
        deadline = time.monotonic() + args.wait
        while True:
            _, found = await api.call("GET", f"/api/evaluations/{evaluation_id}")
            evaluation = found["evaluation"]
            if evaluation["status"] != "running":
                break
            if time.monotonic() > deadline:
                raise CliError(USAGE, f"evaluation {evaluation_id} still running after "
                               f"{args.wait:g} s")
            await asyncio.sleep(0.5)
    if evaluation["status"] == "failed":
        raise CliError(REFUSED, f"evaluation {evaluation_id} failed: {evaluation['error']}")
    summary = evaluation["summary"]
    out(f"evaluation {evaluation_id}: {summary['passed']}/{summary['cases']} passed "
        f"(pass rate {summary['passRate']:.2f}, baseline {summary['baselinePassRate']}), "
        f"cost {summary['costUsd']} (delta {summary['costDeltaUsd']})")
    for case in evaluation["cases"]:
        if not case["passed"]:
            why = "; ".join(f"{a['type']}: {a['message']}" for a in case["assertions"]
                            if not a["passed"])
            mark = "regression" if case["regression"] else "failed"
            out(f"  case {case['index']} {mark} (run {case['candidateRunId']}): {why}")
    if summary["regressions"] or summary["passRate"] < args.fail_under:
        out(f"fail: pass rate {summary['passRate']:.2f} (bar {args.fail_under:g}), "
            f"{len(summary['regressions'])} regression(s)")
        return REFUSED
    return OK
