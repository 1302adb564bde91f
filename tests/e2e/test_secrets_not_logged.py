"""No secret in a log line, whatever fails: the unhandled-error log names types and frames,
never a message, a parameter or the body; the engine never quotes statement parameters."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import loggable
from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery

SECRET = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ="


async def test_a_failing_trigger_creation_logs_no_webhook_secret(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    slug = unique_slug("hook")
    await service.create_workflow(feed_discovery(slug))
    caplog.set_level(logging.DEBUG)
    # The policy is `latest`, so the pinned version is not looked up before the insert.
    response = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "hook", "type": "webhook", "pinnedVersion": 3_000_000_000})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["problems"][0]["pointer"] == "/pinnedVersion"
    assert "whsec_" not in caplog.text
    listed = (await service.http.get("/api/triggers", params={"workflowSlug": slug})).json()
    assert listed["triggers"] == []


async def test_a_failed_statement_names_no_parameter(engine: AsyncEngine) -> None:
    with pytest.raises(DBAPIError) as failure:
        async with engine.connect() as connection:
            await connection.execute(text("select cast(cast(:value as text) as integer)"),
                                     {"value": SECRET})
    # Postgres itself quotes the value in its message; the log line must not carry it.
    logged = loggable(failure.value)
    assert SECRET not in logged
    assert "SQLSTATE 22P02" in logged
    assert "test_secrets_not_logged.py" in logged
    assert "[parameters:" not in str(failure.value)
