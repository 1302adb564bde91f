"""Failed bearer keys are throttled per address and prefix; the key's holder never is."""

from __future__ import annotations

import httpx

from store.keys import prefix_of
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
