"""Webhook probes from outside: respelled timestamps, a corrected retry, a flood of unsigned
posts, and the secret as Postgres holds it."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from sqlalchemy import text

from api.webhook_signatures import sign
from tests.conftest import Service
from tests.e2e.test_webhooks import _headers, _webhook
from tests.triggers_support import runs_of, wait_runs


async def _trigger_column(service: Service, trigger_id: str, column: str) -> object:
    async with service.store.engine.connect() as db:
        return (await db.execute(text(f"select {column} from triggers where id = :id"),
                                 {"id": uuid.UUID(trigger_id)})).scalar_one()


async def _delivery_rows(service: Service, trigger_id: str) -> int:
    async with service.store.engine.connect() as db:
        return int((await db.execute(text(
            "select count(*) from webhook_deliveries where trigger_id = :id"),
            {"id": uuid.UUID(trigger_id)})).scalar_one())


async def test_a_timestamp_spelled_other_than_plain_digits_is_refused(service: Service) -> None:
    slug, trigger = await _webhook(service)
    body = json.dumps({"topic": "respelled"}).encode()
    now = int(time.time())
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        for spelled in (f"+{now}", f"0{now}", f"{now:_}"):
            webhook_id = f"msg_{uuid.uuid4().hex}"
            headers = {"webhook-id": webhook_id, "webhook-timestamp": spelled,
                       "webhook-signature": sign(trigger["webhookSecret"], webhook_id, now, body),
                       "content-type": "application/json"}
            refused = await anonymous.post(trigger["webhookUrl"], content=body, headers=headers)
            assert refused.status_code == 401, (spelled, refused.text)
            assert "plain digits" in refused.json()["error"]["message"]
    assert await runs_of(service, slug) == []


async def test_a_delivery_refused_with_422_keeps_its_id_for_the_corrected_retry(
        service: Service) -> None:
    slug, trigger = await _webhook(service)
    secret, url = trigger["webhookSecret"], trigger["webhookUrl"]
    webhook_id = f"msg_{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        wrong = json.dumps({"wrong": 1}).encode()
        first = await anonymous.post(url, content=wrong,
                                     headers=_headers(secret, wrong, webhook_id=webhook_id))
        assert first.status_code == 422, first.text
        fixed = json.dumps({"topic": "corrected"}).encode()
        retry = await anonymous.post(url, content=fixed,
                                     headers=_headers(secret, fixed, webhook_id=webhook_id))
        assert retry.status_code == 202, retry.text
        again = await anonymous.post(url, content=fixed,
                                     headers=_headers(secret, fixed, webhook_id=webhook_id))
        assert again.status_code == 401  # now it is spent: a replay
        assert again.json()["error"]["code"] == "replayed"
    runs = await wait_runs(service, slug, 1, within=15)
    assert [r["inputJson"] for r in runs] == [{"topic": "corrected"}]


async def test_200_unsigned_posts_write_no_row_only_a_count(service: Service) -> None:
    _, trigger = await _webhook(service)
    before = await _delivery_rows(service, trigger["id"])
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        for n in range(200):
            refused = await anonymous.post(trigger["webhookUrl"], content=b'{"filler": "%d"}' % n,
                                           headers={"content-type": "application/json"})
            assert refused.status_code == 401
    assert await _delivery_rows(service, trigger["id"]) == before == 0
    assert await _trigger_column(service, trigger["id"], "refused_deliveries") == 200


async def test_the_webhook_secret_is_sealed_at_rest_and_an_old_plain_one_still_verifies(
        service: Service) -> None:
    slug, trigger = await _webhook(service)
    secret = trigger["webhookSecret"]
    stored = str(await _trigger_column(service, trigger["id"], "webhook_secret"))
    assert stored.startswith("enc1:")
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    # A row written before sealing holds the secret as issued: still verified, then sealed.
    async with service.store.engine.begin() as db:
        await db.execute(text("update triggers set webhook_secret = :s where id = :id"),
                         {"s": secret, "id": uuid.UUID(trigger["id"])})
    body = json.dumps({"topic": "legacy"}).encode()
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        accepted = await anonymous.post(trigger["webhookUrl"], content=body,
                                        headers=_headers(secret, body))
        assert accepted.status_code == 202, accepted.text
    resealed = str(await _trigger_column(service, trigger["id"], "webhook_secret"))
    assert resealed.startswith("enc1:")
    assert secret not in resealed
    await wait_runs(service, slug, 1, within=15)
