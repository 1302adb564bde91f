"""The local stack starts real services, answers, persists and leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client

from devstack.process import pid_alive
from devstack.stack import EmbeddedPostgres, StackStartError, TemporalDevServer

SEARCH_ATTRIBUTES = {
    "PromptPilotSlug": "Keyword",
    "PromptPilotEnvironment": "Keyword",
    "PromptPilotTrigger": "Keyword",
    "PromptPilotVersion": "Int",
}


async def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[TemporalDevServer]:
    server = TemporalDevServer(
        tmp_path / "temporal",
        db_file=tmp_path / "temporal" / "temporal.db",
        namespaces=["dev", "prod"],
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        yield await server.start()
    finally:
        server.stop()


async def test_temporal_namespaces_search_attributes_and_ui(temporal: TemporalDevServer) -> None:
    client = await Client.connect(temporal.address, namespace="dev")
    for namespace in ("dev", "prod"):
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        assert described.namespace_info.name == namespace
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        assert (
            listed.custom_attributes["PromptPilotSlug"]
            == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        )
        assert (
            listed.custom_attributes["PromptPilotVersion"]
            == IndexedValueType.INDEXED_VALUE_TYPE_INT
        )
    assert temporal.ui_url is not None
    async with httpx.AsyncClient() as http:
        response = await http.get(temporal.ui_url)
    assert response.status_code == 200


async def test_temporal_restart_keeps_state_and_stop_leaves_nothing(
    temporal: TemporalDevServer,
) -> None:
    client = await Client.connect(temporal.address, namespace="dev")
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace="kept", workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    address, first_pid = temporal.address, temporal.pid
    assert first_pid is not None
    temporal.search_attributes["PromptPilotAddedLater"] = "Keyword"

    await temporal.restart()

    assert await wait_gone(first_pid)
    assert temporal.address == address
    client = await Client.connect(temporal.address, namespace="dev")
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="kept")
    )
    assert described.config.workflow_execution_retention_ttl.ToTimedelta() == timedelta(days=1)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="prod")
    )
    assert "PromptPilotAddedLater" in listed.custom_attributes

    pid = temporal.pid
    assert pid is not None
    temporal.stop()
    assert not temporal.running
    assert await wait_gone(pid)


async def test_temporal_headless_in_memory(tmp_path: Path) -> None:
    async with TemporalDevServer(tmp_path, ui=False) as server:
        assert server.ui_url is None
        assert "--headless" in server.command()
        client = await Client.connect(server.address, namespace="dev")
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="dev"))
        pid = server.pid
    assert pid is not None
    assert await wait_gone(pid)


async def test_temporal_refuses_a_busy_port(temporal: TemporalDevServer, tmp_path: Path) -> None:
    other = TemporalDevServer(tmp_path / "other", port=temporal.port, ui=False)
    with pytest.raises(StackStartError, match="already in use"):
        await other.start()
    assert other.pid is None


async def test_temporal_failure_names_the_log(tmp_path: Path) -> None:
    server = TemporalDevServer(tmp_path, ui=False, extra_args=["--no-such-flag"], ready_timeout=10)
    with pytest.raises(StackStartError, match="no-such-flag"):
        await server.start()
    assert not server.running


async def test_postgres_answers_restarts_and_stops(tmp_path: Path) -> None:
    db = EmbeddedPostgres(tmp_path / "pgdata", database="promptpilot")
    try:
        await db.start()
        assert db.url.startswith("postgresql+asyncpg://postgres@/promptpilot?host=")
        engine = create_async_engine(db.url)
        try:
            async with engine.begin() as conn:
                assert await conn.scalar(text("select 1")) == 1
                assert await conn.scalar(text("select current_database()")) == "promptpilot"
                await conn.execute(text("create table kept (id int)"))
                await conn.execute(text("insert into kept values (42)"))
        finally:
            await engine.dispose()
        first_pid = db.pid
        assert first_pid is not None
        db.stop()
        assert await wait_gone(first_pid)
        # A process that died holding a handle must not keep the next stop() from stopping.
        dead = await asyncio.create_subprocess_exec("true")
        await dead.wait()
        (db.data_dir / ".handle_pids.json").write_text(json.dumps([dead.pid]))

        await db.start()

        engine = create_async_engine(db.url)
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("select id from kept")) == 42
        finally:
            await engine.dispose()
        pid = db.pid
    finally:
        db.stop()
    assert pid is not None
    assert not pid_alive(pid)
    assert not db.running


async def test_postgres_long_path_moves_the_socket(tmp_path: Path) -> None:
    db = EmbeddedPostgres(tmp_path / ("x" * 100) / "pgdata", database="other")
    try:
        await db.start()
        assert db.socket_dir != db.data_dir
        engine = create_async_engine(db.url)
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("select current_database()")) == "other"
        finally:
            await engine.dispose()
    finally:
        db.stop()
