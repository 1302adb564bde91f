"""The commands that run or manage the services themselves: dev, worker, api, migrate,
`keys create`, payloads and deploy (each needs the database or Temporal, not the API)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from promptpilot.cli.client import DEFAULT_DEV_KEY, out
from promptpilot.settings import Settings


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def dev(settings: Settings, args: argparse.Namespace) -> int:
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
        out("PromptPilot is running (Ctrl-C stops everything):")
        out(f"  API          {api.url}")
        out(f"  API docs     {api.url}/docs")
        out(f"  Inspector    {api.url}/ui   (sign in with the API key below)")
        out(f"  Temporal UI  {temporal.ui_url}/namespaces/{settings.namespace}/workflows")
        out(f"  Postgres     {'embedded' if embedded else 'DATABASE_URL'}")
        out(f"  Payloads     {payloads_banner(settings)}")
        out(f"  API key      {dev_key}")
        out("Try:")
        out(f"  curl -s -X POST {api.url}/api/workflows/feed-discovery/run \\")
        out(f"    -H 'Authorization: Bearer {dev_key}' -H 'Content-Type: application/json' \\")
        out("    -d '{\"input\": {\"interests\": \"AI, machine learning\"}}'")
        await _until_signal()
        out("stopping...")
    return 0


async def manage_payloads(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from payloads.codec import new_key
    from payloads.storage import PostgresStorageDriver

    if args.payloads_command == "new-key":
        out(new_key())
        out("(add it to PROMPTPILOT_PAYLOADS__ENCRYPTION_KEYS under a new id, then point "
             "PROMPTPILOT_PAYLOADS__ENCRYPTION_KEY_ID at that id; keep the old ids)")
        return 0
    days = args.older_than_days or settings.payloads.keep_days
    async with _database(settings) as url:
        driver = PostgresStorageDriver(url, settings.payloads.max_stored_bytes)
        try:
            removed = await driver.prune(timedelta(days=days))
        finally:
            await driver.aclose()
    out(f"pruned {removed} stored payload(s) last stored over {days} day(s) ago")
    return 0


async def worker(settings: Settings) -> int:
    from promptpilot.services import running_worker, settle_heap

    url = _require_db(settings)
    async with running_worker(settings, url):
        settle_heap()
        logging.getLogger("promptpilot").info(
            "worker on %s namespace=%s queue=%s", settings.temporal.address,
            settings.namespace, settings.temporal.task_queue)
        await _until_signal()
    return 0


async def serve_api(settings: Settings) -> int:
    from promptpilot.services import running_api, settle_heap

    url = _require_db(settings)
    async with running_api(settings, url) as api:
        settle_heap()
        out(f"API on {api.url} (docs at {api.url}/docs)")
        await _until_signal()
    return 0


async def migrate(settings: Settings) -> int:
    from promptpilot.services import prepare_database

    async with _database(settings) as url:
        await prepare_database(settings, url, load_examples=False, dev_key=None)
    out("database is at the newest revision")
    return 0


async def keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from store.database import make_engine
    from store.keys import ApiKeys

    async with _database(settings) as url:
        engine = make_engine(url, pool_size=1)
        try:
            keys = ApiKeys(engine)
            key = await keys.create(args.environment or settings.environment, args.name)
            row = await keys.verify(key)
        finally:
            await engine.dispose()
    out(key)
    out("(shown once: only its SHA-256 digest is stored"
        + (f"; key id {row.id}, prefix {row.prefix}" if row else "") + ")")
    return 0


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


async def deploy(settings: Settings, args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from promptpilot.deployments import deploy_command

    try:
        lines = await deploy_command(settings, args.deploy_command, getattr(args, "build", None),
                                     getattr(args, "percent", None))
    except (RPCError, TimeoutError) as exc:
        out(f"deploy {args.deploy_command} failed: {exc or 'the server did not settle'}")
        return 1
    for line in lines:
        out(line)
    return 0


def loop_factory(command: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
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
