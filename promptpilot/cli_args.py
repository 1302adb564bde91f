"""The `promptpilot` command line's arguments: each command, its options and their checks."""

from __future__ import annotations

import argparse

DESCRIPTION = "The `promptpilot` command: dev, worker, api, run, migrate, keys, payloads, deploy."


def _percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage from 0 to 100")
    return value


def parser() -> argparse.ArgumentParser:
    """The `promptpilot` command line: every command and its arguments."""
    parser = argparse.ArgumentParser(prog="promptpilot", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start Temporal, Postgres, worker and API in one process")
    dev.add_argument("--ui-port", type=int, default=8233)
    sub.add_parser("worker", help="run a worker")
    sub.add_parser("api", help="run the HTTP API")
    sub.add_parser("migrate", help="apply database migrations")
    run = sub.add_parser("run", help="start a run through the API and follow it")
    run.add_argument("slug")
    run.add_argument("--input", default=None, help="the run input as JSON (default {}, or "
                     "with --from-step the source run's input)")
    run.add_argument("--from-step", default=None, help="rerun from this step id")
    run.add_argument("--api", default=None, help="API base URL")
    run.add_argument("--key", default=None, help="API key (default: the dev key)")
    payloads = sub.add_parser("payloads", help="payload encryption keys and storage")
    payloads_sub = payloads.add_subparsers(dest="payloads_command", required=True)
    payloads_sub.add_parser("new-key", help="print a fresh AES-256 payload key (base64)")
    prune = payloads_sub.add_parser("prune", help="delete payloads kept in Postgres longer "
                                    "than payloads.keep_days")
    prune.add_argument("--older-than-days", type=int, default=None)
    deploy = sub.add_parser("deploy", help="interpreter builds: list, ramp, make current")
    deploy_sub = deploy.add_subparsers(dest="deploy_command", required=True)
    deploy_sub.add_parser("status", help="each build of the deployment and its state")
    current = deploy_sub.add_parser("set-current", help="send every new run to BUILD")
    current.add_argument("build")
    ramp = deploy_sub.add_parser("ramp", help="send PERCENT of new runs to BUILD")
    ramp.add_argument("build")
    ramp.add_argument("percent", type=_percent)
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--environment", default=None)
    return parser
