"""Signed webhooks: a valid delivery starts a run; every bad one is a 401 that starts nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from api.webhook_signatures import new_secret, sign
from tests.conftest import Service, unique_slug
from tests.triggers_support import echo, runs_of, wait_runs


def _headers(secret: str, body: bytes, *, webhook_id: str | None = None,
             at: int | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time()) if at is None else at
    return {"webhook-id": webhook_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, webhook_id, stamp, body),
            "content-type": "application/json"}


async def _webhook(service: Service) -> tuple[str, dict[str, Any]]:
    slug = unique_slug("hook")
    await service.create_workflow(echo(slug))
    response = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "incoming", "type": "webhook"})
    assert response.status_code == 201, response.text
    trigger: dict[str, Any] = response.json()["trigger"]
    assert trigger["webhookSecret"].startswith("whsec_")
    assert trigger["webhookUrl"] == f"/api/webhooks/{trigger['id']}"
    return slug, trigger


async def test_signed_delivery_starts_a_run_and_bad_ones_start_nothing(service: Service) -> None:
    slug, trigger = await _webhook(service)
    secret, url = trigger["webhookSecret"], trigger["webhookUrl"]
    body = json.dumps({"topic": "hooked"}).encode()
    # No bearer key: the signature is the credential.
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        good = _headers(secret, body)
        accepted = await anonymous.post(url, content=body, headers=good)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["runId"]
        runs = await wait_runs(service, slug, 1, within=15)
        assert [r["id"] for r in runs] == [run_id]
        assert runs[0]["trigger"] == "webhook"
        assert runs[0]["inputJson"] == {"topic": "hooked"}

        now = int(time.time())
        malformed = {**_headers(secret, body), "webhook-signature": "v1,not-base64!"}
        missing = {k: v for k, v in _headers(secret, body).items() if k != "webhook-signature"}
        cases = {
            "missing": missing,
            "malformed": malformed,
            "wrong secret": _headers(new_secret(), body),
            "expired": _headers(secret, body, at=now - 6 * 60),
            "future": _headers(secret, body, at=now + 6 * 60),
            "replayed": good,
        }
        for name, headers in cases.items():
            refused = await anonymous.post(url, content=body, headers=headers)
            assert refused.status_code == 401, (name, refused.text)
            assert refused.json()["success"] is False, name
        tampered = await anonymous.post(url, content=b'{"topic": "other"}',
                                        headers=_headers(secret, body))
        assert tampered.status_code == 401
        invalid = json.dumps({"wrong": 1}).encode()
        unprocessable = await anonymous.post(url, content=invalid,
                                             headers=_headers(secret, invalid))
        assert unprocessable.status_code == 422
        assert {p["pointer"] for p in unprocessable.json()["error"]["problems"]} == {
            "/input/wrong", "/input/topic"}

    assert len(await runs_of(service, slug)) == 1  # nothing else started
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select verified, reason, run_id, environment from webhook_deliveries "
            "where trigger_id = :id order by received_at"),
            {"id": uuid.UUID(trigger["id"])})).all()
        counted = (await db.execute(text(
            "select refused_deliveries, last_refused_reason from triggers where id = :id"),
            {"id": uuid.UUID(trigger["id"])})).one()
    # Only verified deliveries are rows; the seven refused ones are a count on the trigger.
    assert [(r.verified, r.reason) for r in rows] == [(True, None), (True, "input invalid")]
    assert tuple(counted) == (7, "signature does not match")
    assert str(rows[0].run_id) == run_id
    assert {r.environment for r in rows} == {"dev"}


async def test_unknown_or_non_webhook_trigger_is_not_found(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        response = await anonymous.post(f"/api/webhooks/{uuid.uuid4()}", content=b"{}")
    assert response.status_code == 404
