"""Numbers past their column's (or Temporal's) range are a 422 naming the field, not a 500;
at the edge of the range they reach the check that comes next."""

from __future__ import annotations

import httpx

from schema.bounds import INT32_MAX, MAX_SCHEDULE_SECONDS
from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery
from tests.ui_login import sign_in


def trigger(slug: str, **fields: object) -> dict[str, object]:
    return {"workflowSlug": slug, "name": "t", "type": "manual", "input": {"interests": "ai"},
            **fields}


async def test_a_pinned_version_past_int32_is_a_422(service: Service) -> None:
    slug = unique_slug("pin")
    await service.create_workflow(feed_discovery(slug))
    for policy in ("pinned", "latest"):
        response = await service.http.post("/api/triggers", json=trigger(
            slug, versionPolicy=policy, pinnedVersion=INT32_MAX + 1))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["problems"][0]["pointer"] == "/pinnedVersion"
    # At the edge the version is looked up, and is not there.
    response = await service.http.post("/api/triggers", json=trigger(
        slug, versionPolicy="pinned", pinnedVersion=INT32_MAX))
    assert response.status_code == 422, response.text
    assert "version" in response.json()["error"]["problems"][0]["message"]
    created = await service.http.post("/api/triggers", json=trigger(slug))
    assert created.status_code == 201, created.text
    changed = await service.http.put(f"/api/triggers/{created.json()['trigger']['id']}",
                                     json={"versionPolicy": "pinned",
                                           "pinnedVersion": 3_000_000_000})
    assert changed.status_code == 422, changed.text
    assert (await service.http.get("/api/triggers")).status_code == 200


async def test_schedule_durations_past_the_range_are_a_422(service: Service) -> None:
    slug = unique_slug("every")
    await service.create_workflow(feed_discovery(slug))
    for seconds in (1e20, MAX_SCHEDULE_SECONDS + 1):
        response = await service.http.post("/api/triggers", json=trigger(
            slug, type="scheduled", config={"intervals": [{"everySeconds": seconds}]}))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["problems"][0]["pointer"] == \
            "/config/intervals/0/everySeconds"
    # At the edge of the range Temporal takes the schedule.
    response = await service.http.post("/api/triggers", json=trigger(
        slug, type="scheduled", enabled=False,
        config={"intervals": [{"everySeconds": MAX_SCHEDULE_SECONDS}],
                "jitterSeconds": MAX_SCHEDULE_SECONDS}))
    assert response.status_code == 201, response.text
    deleted = await service.http.delete(f"/api/triggers/{response.json()['trigger']['id']}")
    assert deleted.status_code == 204


async def test_inspector_version_parameters_past_int32_are_a_422(service: Service) -> None:
    slug = unique_slug("ui")
    await service.create_workflow(feed_discovery(slug))
    async with httpx.AsyncClient(base_url=service.url) as browser:
        await sign_in(browser)
        for query in ("?version=3000000000", "/diff?from=3000000000", "/diff?to=3000000000"):
            response = await browser.get(f"/ui/workflows/{slug}{query}")
            assert response.status_code == 422, (query, response.text)
        edge = await browser.get(f"/ui/workflows/{slug}?version={INT32_MAX}")
        assert edge.status_code == 404
        assert f"version {INT32_MAX}" in edge.text
    for path in (f"/api/workflows/{slug}/versions/{INT32_MAX + 1}",
                 f"/api/workflows/{slug}/versions/diff?from={INT32_MAX + 1}"):
        assert (await service.http.get(path)).status_code == 422


async def test_a_number_where_a_time_goes_is_a_422_in_any_spelling(service: Service) -> None:
    # Pydantic would read each of these as seconds since 1970; the fuzzer found the last one
    # (a 200 with an empty list, though the document says ISO 8601 text).
    for spelled in ("1700000000", "-12.5", "+3", "1e9", "-1.5455324746846546e-33", "inf"):
        response = await service.http.get("/api/workflows/runs", params={"until": spelled})
        assert response.status_code == 422, (spelled, response.text)
        assert "ISO 8601" in response.text
    fine = await service.http.get("/api/workflows/runs",
                                  params={"until": "2026-01-31T09:00:00Z"})
    assert fine.status_code == 200
