"""Session-wide real services (Temporal dev server, embedded Postgres, a fake LLM server) and a
per-test worker + API on a fresh task queue."""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="pp-xdg-"))

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.process import free_port
from devstack.stack import EmbeddedPostgres, TemporalDevServer
from promptpilot.llm_settings import (
    AnthropicSettings,
    LlmCacheSettings,
    LlmSettings,
    OpenAISettings,
)
from promptpilot.services import running_api, running_worker
from promptpilot.settings import (
    ApiSettings,
    DatabaseSettings,
    PayloadSettings,
    Settings,
    TemporalSettings,
    ToolSettings,
)
from schema.search_attributes import SEARCH_ATTRIBUTES
from store.database import make_engine
from store.keys import ApiKeys
from store.migrate import upgrade
from store.runs import Store
from tests.fakes.llm_server import FakeLlmServer

DEV_KEY = "pp_dev_test_key"
# A build's drainage is re-checked every 3 minutes by default; the upgrade test waits for it.
VERSION_DRAINAGE_IN_SECONDS = (
    "--dynamic-config-value", "matching.wv.VersionDrainageStatusRefreshInterval=\"1s\"",
    "--dynamic-config-value", "matching.wv.VersionDrainageStatusVisibilityGracePeriod=\"1s\"",
)
PROD_KEY = "pp_prod_test_key"
# The tests' payload key ring (AES-256): every test runs through the payload codec.
PAYLOAD_KEYS = {"test-1": SecretStr("dGVzdC1wYXlsb2FkLWtleS0zMi1ieXRlcy1sb25nISE=")}


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pp-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
async def temporal(data_dir: Path) -> AsyncIterator[TemporalDevServer]:
    server = TemporalDevServer(data_dir / "temporal", namespaces=["dev", "prod"], ui=False,
                               search_attributes=SEARCH_ATTRIBUTES,
                               extra_args=VERSION_DRAINAGE_IN_SECONDS)
    try:
        yield await server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def postgres(data_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_dir / "postgres")
    try:
        yield await server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def engine(postgres: EmbeddedPostgres) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(postgres.url, pool_size=5)
    await upgrade(engine)
    keys = ApiKeys(engine)
    await keys.create("dev", "test dev key", DEV_KEY)
    await keys.create("prod", "test prod key", PROD_KEY)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def llm(llm_server: FakeLlmServer) -> FakeLlmServer:
    """The fake LLM server, emptied of scripts and records for this test."""
    llm_server.reset()
    return llm_server


@pytest.fixture
def store(engine: AsyncEngine) -> Store:
    return Store(engine)


@pytest.fixture
def settings(temporal: TemporalDevServer, postgres: EmbeddedPostgres,
             llm_server: FakeLlmServer) -> Settings:
    """Settings for one test: a fresh task queue, the fake LLM server, offline search."""
    task_queue = f"test-{uuid.uuid4().hex[:12]}"
    return Settings(
        environment="dev",
        database=DatabaseSettings(url=postgres.url, pool_size=5),
        # The strict sandbox in tests: a non-deterministic call on any path a test takes
        # fails it (the production worker runs without it; see worker.workflow_runner).
        temporal=TemporalSettings(address=temporal.address,
                                  task_queue=task_queue,
                                  deployment_name=_deployment_name(),
                                  workflow_sandbox=True),
        api=ApiSettings(port=free_port(), run_wait_seconds=20),
        llm=LlmSettings(
            openai=OpenAISettings(api_key=SecretStr("sk-test"),
                                  base_url=llm_server.openai_base_url),
            anthropic=AnthropicSettings(api_key=SecretStr("sk-ant-test"),
                                        base_url=llm_server.anthropic_base_url),
            # Each test's provider pauses and breakers are its own (one shared database).
            limit_scope=task_queue,
        ),
        tools=ToolSettings(web_search_backend="offline"),
        # One database serves the whole session: a preview answered from another test's
        # recorded call would hide its model calls (tests/e2e/test_recorded_answers.py turns
        # the product's default, previews: use, back on).
        llm_cache=LlmCacheSettings(previews="off"),
        payloads=PayloadSettings(encryption_keys=dict(PAYLOAD_KEYS)),
    )


# Temporal keeps at most 100 task queues in one worker deployment, and every test's worker
# serves a fresh queue: a new deployment every few dozen tests stays far below that.
_TESTS_PER_DEPLOYMENT = 40
_tests_so_far = itertools.count()
_SESSION = uuid.uuid4().hex[:8]


def _deployment_name() -> str:
    return f"tests-{_SESSION}-{next(_tests_so_far) // _TESTS_PER_DEPLOYMENT}"


@dataclass
class Service:
    """A running worker + API for one test, and an authenticated HTTP client."""

    settings: Settings
    http: httpx.AsyncClient
    store: Store
    url: str

    async def create_workflow(self, definition: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post("/api/workflows", json=definition)
        assert response.status_code == 201, response.text
        workflow: dict[str, Any] = response.json()["workflow"]
        return workflow

    async def run(self, slug: str, run_input: dict[str, Any], **body: Any) -> httpx.Response:
        return await self.http.post(f"/api/workflows/{slug}/run",
                                    json={"input": run_input, **body})


@pytest.fixture
async def service(settings: Settings, engine: AsyncEngine, store: Store) -> AsyncIterator[Service]:
    url = settings.database.url
    assert url
    headers = {"Authorization": f"Bearer {DEV_KEY}"}
    async with (
        running_worker(settings, url),
        running_api(settings, url) as api,
        httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as http,
    ):
        yield Service(settings=settings, http=http, store=store, url=api.url)


def unique_slug(prefix: str = "wf") -> str:
    """A slug no other test uses (the database is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
