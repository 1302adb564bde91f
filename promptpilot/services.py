"""Composition of the running services: migrations, keys, examples, worker and API server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from activities.providers.registry import known_providers
from activities.tools import known_tools
from api.app import create_app
from api.start_dispatcher import StartDispatcher
from definition.validation import parse_definition
from devstack.examples import example_definitions
from promptpilot.deployments import interpreter_build_id, make_current
from promptpilot.metrics_server import serve_metrics
from promptpilot.settings import Settings
from promptpilot.temporal import (
    close_payload_storage,
    connect,
    share_worker_client,
    withdraw_worker_client,
)
from promptpilot.worker_build import WorkerParts, build_worker
from reconcile.reconciler import RunReconciler
from store.database import make_engine
from store.keys import ApiKeys
from store.migrate import upgrade
from store.run_starts import RunStarts
from store.runs import Store

log = logging.getLogger("promptpilot")


async def prepare_database(settings: Settings, url: str, *, load_examples: bool,
                           dev_key: str | None) -> None:
    """Migrate, register the dev key (hashed) and load the examples that are missing."""
    engine = make_engine(url, pool_size=2)
    try:
        await upgrade(engine)
        if dev_key:
            await ApiKeys(engine).create(settings.environment, "dev key", dev_key)
        if load_examples:
            store = Store(engine)
            for raw in example_definitions():
                definition = parse_definition(raw, known_providers(settings),
                                              tools=known_tools())
                if await store.get_workflow(settings.environment, definition.id) is None:
                    await store.create_workflow(settings.environment, definition)
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_worker(settings: Settings, url: str, *,
                         task_queue: str | None = None) -> AsyncIterator[Worker]:
    """Workers serving each environment's namespace until the block ends; yields the first.

    One Worker per served environment (``temporal.worker_environments``), sharing the engine:
    environments are isolated by namespace, so a dev worker never runs a prod task. Each
    environment's mirror reconciler runs beside its worker.
    """
    engine = make_engine(url, settings.database.pool_size)
    store = Store(engine)
    workers: list[tuple[Worker, WorkerParts, asyncio.Task[None]]] = []
    # The mirror's reconciler lives with the worker: every deployment runs one (README:
    # Watch, list and cancel runs), and sweeps are idempotent, so several workers may.
    reconcilers: list[asyncio.Task[None]] = []
    stack = AsyncExitStack()
    if settings.metrics.worker_port is not None:
        serve_metrics(settings.metrics.worker_port)
    version = WorkerDeploymentVersion(settings.temporal.deployment_name,
                                      settings.temporal.build_id or interpreter_build_id())
    try:
        for environment in settings.served_environments:
            client = await connect(settings, settings.namespace_for(environment), own=True)
            parts = WorkerParts(settings, store, client)
            worker = build_worker(client, task_queue or settings.temporal.task_queue, parts,
                                  version=version, sandboxed=settings.temporal.workflow_sandbox)
            workers.append((worker, parts, asyncio.create_task(worker.run())))
            # A deployment's first build serves at once; later ones wait for `promptpilot deploy`
            # (in production; `promptpilot dev` starts as current).
            made_current = await make_current(client, version,
                                              replace=settings.temporal.start_as_current)
            log.info("worker build %s in namespace %s%s", version.to_canonical_string(),
                     client.namespace, " (made current)" if made_current else "")
            share_worker_client(settings.temporal.address, client)
            if settings.reconcile.enabled:
                reconciler = RunReconciler(store, client, environment, settings.reconcile)
                reconcilers.append(asyncio.create_task(reconciler.run_forever()))
        if settings.dispatch.in_worker:
            # Starts queued by an API that stopped before it sent them still go out.
            clients = {env: w.client for env, (w, _, _) in
                       zip(settings.served_environments, workers, strict=True)}

            async def client_for(environment: str) -> Client:
                return clients[environment]

            # A backstop: fresh starts are their API's (it starts them at once, or its waiting
            # request does). Never eager: this worker's build may not be the current one.
            await stack.enter_async_context(StartDispatcher(
                RunStarts(engine), client_for, task_queue or settings.temporal.task_queue,
                settings.dispatch, environments=list(clients), eager=False,
                min_age_seconds=settings.dispatch.worker_after_seconds))
        yield workers[0][0]
    finally:
        await stack.aclose()
        for task in reconcilers:
            task.cancel()
        await asyncio.gather(*reconcilers, return_exceptions=True)
        for worker, _, _ in workers:
            withdraw_worker_client(settings.temporal.address, worker.client)
        for worker, parts, task in workers:
            # Bounded: a stop must not hang on an activity that will not finish.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.shutdown(), timeout=10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await parts.aclose()
        await store.aclose()
        await engine.dispose()
        await close_payload_storage()


@dataclass
class ApiServer:
    """A uvicorn server running in this event loop."""

    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        """Where the API listens."""
        config = self.server.config
        return f"http://{config.host}:{config.port}"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the CLI or the test session)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def running_api(settings: Settings, url: str, *, host: str | None = None,
                      port: int | None = None) -> AsyncIterator[ApiServer]:
    """Serve the API until the block ends."""
    app = create_app(settings, url)
    config = uvicorn.Config(app, host=host or settings.api.host, port=port or settings.api.port,
                            log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=5)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the API server did not start")
        await asyncio.sleep(0.02)
    try:
        yield ApiServer(app, server, task)
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        await close_payload_storage()


def settle_heap() -> None:
    """Once a long-running process is up: collect start-up garbage, then move every object
    left (modules, settings, pools: they live as long as the process) out of the cyclic
    collector's sight. A full collection over them was measured at up to 268 ms in the
    worker under load, stalling every run in flight; with them frozen, under 25 ms."""
    gc.collect()
    gc.freeze()


async def run_all(settings: Settings, url: str, stack: AsyncExitStack) -> ApiServer:
    """Worker and API together (what `promptpilot dev` runs)."""
    await stack.enter_async_context(running_worker(settings, url))
    return await stack.enter_async_context(running_api(settings, url))
