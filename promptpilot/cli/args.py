"""The `promptpilot` command line's arguments: each command, its options and their checks."""

from __future__ import annotations

import argparse

from promptpilot.cli import evaluate
from promptpilot.cli.client import add_connection_options

DESCRIPTION = """The `promptpilot` command. Commands on a thing are NOUN VERB (`workflows apply`,
`runs list`, `runs cancel`, `keys revoke`); `run SLUG` (= `runs start SLUG`), `approve RUN STEP`
(= `runs approve`) and `validate FILE` are the short forms. Commands that talk to the API exit 0
when done, 1 when the API refused what was asked (problems are printed by JSON pointer), 2 on a
usage or connection error."""


def _percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage from 0 to 100")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _start_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("slug")
    run.add_argument("--input", default=None, help="the run input as JSON (default {}, or "
                     "with --from-step the source run's input)")
    run.add_argument("--from-step", default=None, help="rerun from this step id")
    run.add_argument("--detach", action="store_true", help="print the run id and return "
                     "at once instead of following the run")
    add_connection_options(run)


def _approve_arguments(approve: argparse.ArgumentParser) -> None:
    approve.add_argument("run", help="the run id")
    approve.add_argument("step", help="the id of the approval step that waits")
    approve.add_argument("--reject", action="store_true", help="reject instead of approve")
    approve.add_argument("--comment", default=None, help="recorded with the decision")
    approve.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the "
                         "step to wait (a run just started may not have reached it) and then "
                         "for the run to go on (default 5)")
    add_connection_options(approve)


def _validate_arguments(validate: argparse.ArgumentParser) -> None:
    validate.add_argument("files", nargs="+", metavar="FILE_OR_DIR",
                          help="definition files, or folders of *.json files")


def _workflow_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    workflows = sub.add_parser("workflows", help="definitions in git: apply, export, list, "
                               "validate")
    workflows_sub = workflows.add_subparsers(dest="workflows_command", required=True)
    apply = workflows_sub.add_parser("apply", help="create or update workflows from JSON files "
                                     "(an unchanged definition makes no new version)")
    apply.add_argument("-f", "--file", dest="files", action="append", required=True,
                       metavar="FILE_OR_DIR", help="a definition file, or a folder of *.json "
                       "files (not its subfolders); repeatable")
    apply.add_argument("--dry-run", action="store_true", help="write nothing: say what "
                       "would be created or updated (changed definitions checked offline)")
    add_connection_options(apply)
    add_connection_options(workflows_sub.add_parser(
        "list", help="the environment's workflows: slug, current version, updated, name"))
    export = workflows_sub.add_parser("export", help="print a workflow's definition as JSON "
                                      "that `apply` takes back unchanged")
    export.add_argument("slug")
    export.add_argument("--version", type=_positive, default=None,
                        help="that version (default the current one)")
    export.add_argument("-o", "--output", default=None, help="write to this file, not stdout")
    add_connection_options(export)
    _validate_arguments(workflows_sub.add_parser(
        "validate", help="check definitions offline, as the API would"))
    _validate_arguments(sub.add_parser(
        "validate", help="check definitions offline (no server), as the API would"))


def _run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _start_arguments(sub.add_parser("run", help="start a run through the API and follow it"))
    _approve_arguments(sub.add_parser("approve", help="approve (or --reject) a waiting step"))
    runs = sub.add_parser("runs", help="runs through the API: start, list, cancel, approve")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    _start_arguments(runs_sub.add_parser("start", help="start a run and follow it"))
    listing = runs_sub.add_parser("list", help="recent runs: id, workflow, status, started, cost")
    listing.add_argument("--workflow", default=None, help="only runs of this slug")
    listing.add_argument("--status", default=None, help="only runs with this status "
                         "(pending, running, completed, failed, cancelled, stalled)")
    listing.add_argument("--limit", type=_positive, default=20, help="at most this many "
                         "(default 20, at most 200)")
    listing.add_argument("-q", "--quiet", action="store_true", help="print only run ids")
    add_connection_options(listing)
    cancel = runs_sub.add_parser("cancel", help="cancel a run that is not finished")
    cancel.add_argument("run", help="the run id")
    add_connection_options(cancel)
    _approve_arguments(runs_sub.add_parser("approve", help="approve (or --reject) a waiting "
                                           "step"))


def _key_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once (writes to "
                                 "the database: DATABASE_URL or the dev stack's)")
    create.add_argument("--name", required=True)
    create.add_argument("--environment", default=None)
    add_connection_options(keys_sub.add_parser(
        "list", help="the keys of your key's environment, through the API"))
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or prefix, through the API")
    revoke.add_argument("key_id", metavar="ID_OR_PREFIX")
    add_connection_options(revoke)


def parser() -> argparse.ArgumentParser:
    """The `promptpilot` command line: every command and its arguments."""
    parser = argparse.ArgumentParser(prog="promptpilot", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start Temporal, Postgres, worker and API in one process")
    dev.add_argument("--ui-port", type=int, default=8233)
    sub.add_parser("worker", help="run a worker")
    sub.add_parser("api", help="run the HTTP API")
    sub.add_parser("migrate", help="apply database migrations")
    _workflow_commands(sub)
    _run_commands(sub)
    _key_commands(sub)
    payloads = sub.add_parser("payloads", help="payload encryption keys and storage")
    payloads_sub = payloads.add_subparsers(dest="payloads_command", required=True)
    payloads_sub.add_parser("new-key", help="print a fresh AES-256 payload key (base64)")
    prune = payloads_sub.add_parser("prune", help="delete payloads kept in Postgres longer "
                                    "than payloads.keep_days")
    prune.add_argument("--older-than-days", type=int, default=None)
    evaluate.add_arguments(sub)
    deploy = sub.add_parser("deploy", help="interpreter builds: list, ramp, make current")
    deploy_sub = deploy.add_subparsers(dest="deploy_command", required=True)
    deploy_sub.add_parser("status", help="each build of the deployment and its state")
    current = deploy_sub.add_parser("set-current", help="send every new run to BUILD")
    current.add_argument("build")
    ramp = deploy_sub.add_parser("ramp", help="send PERCENT of new runs to BUILD")
    ramp.add_argument("build")
    ramp.add_argument("percent", type=_percent)
    return parser
