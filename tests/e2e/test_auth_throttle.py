"""Failed bearer keys are throttled per address and prefix; the key's holder never is."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from store.keys import ApiKeys, digest, prefix_of
from tests.conftest import DEV_KEY, Service

ATTACKER = {"X-Forwarded-For": "203.0.113.9"}  # uvicorn believes it from 127.0.0.1 (a proxy)
HOLDER = {"X-Forwarded-For": "198.51.100.4"}


async def test_300_wrong_keys_get_429_and_the_holder_elsewhere_still_gets_in(
        service: Service) -> None:
    guess = prefix_of(DEV_KEY) + "-guess-"
    async with httpx.AsyncClient(base_url=service.url, headers=ATTACKER) as attacker:
        answers = [await attacker.get("/api/workflows",
                                      headers={"Authorization": f"Bearer {guess}{n}"})
                   for n in range(300)]
    statuses = [r.status_code for r in answers]
    limit = service.settings.api.auth_throttle.client_failures
    assert statuses[:limit] == [401] * limit
    assert set(statuses[limit:]) == {429}
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "too_many_failed_attempts"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The valid key, from the attacker's address, is refused too: a throttled address learns
    # nothing about what it presents.
    stolen = await service.http.get("/api/workflows", headers=ATTACKER)
    assert stolen.status_code == 429
    # Its holder, from another address, with the same prefix: in, every time.
    for _ in range(3):
        mine = await service.http.get("/api/workflows", headers=HOLDER)
        assert mine.status_code == 200, mine.text
    # Once the key has verified, it goes through from the throttled address too (someone
    # behind the attacker's NAT is not locked out); unknown keys there are still refused.
    shared = await service.http.get("/api/workflows", headers=ATTACKER)
    assert shared.status_code == 200, shared.text
    guessed = await service.http.get("/api/workflows", headers={
        **ATTACKER, "Authorization": f"Bearer {guess}-after"})
    assert guessed.status_code == 429


async def test_a_revoked_key_stays_a_401_and_is_not_counted_as_guessing(
        service: Service) -> None:
    keys = ApiKeys(service.store.engine)
    key = await keys.create("dev", "soon revoked")
    async with httpx.AsyncClient(base_url=service.url, headers={
            **ATTACKER, "Authorization": f"Bearer {key}"}) as holder:
        assert (await holder.get("/api/workflows")).status_code == 200
        async with service.store.engine.begin() as db:
            await db.execute(text("update api_keys set revoked_at = now() where key_hash = :h"),
                             {"h": digest(key)})
        limit = service.settings.api.auth_throttle.client_failures
        answers = {(await holder.get("/api/workflows")).status_code for _ in range(limit + 5)}
    assert answers == {401}
