"""The API answers as its OpenAPI document says: what schemathesis found, one case each."""

from __future__ import annotations

from typing import Any

import pytest

from promptpilot.settings import Settings
from schema.limits import LimitsSettings
from tests.conftest import Service, unique_slug

MAX_BACKFILL_RUNS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A backfill limit small enough to reach."""
    limits = LimitsSettings(**{**settings.limits.model_dump(),
                               "max_backfill_runs": MAX_BACKFILL_RUNS})
    return settings.model_copy(update={"limits": limits})


def passthrough(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "pass it on", "steps": [{"id": "t1", "type": "transform"}]}


def problem(response: Any) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["error"]["problems"][0]["pointer"])


async def test_the_document_lists_error_answers_and_the_definition_body(
    service: Service
) -> None:
    document = (await service.http.get("/openapi.json")).json()
    create = document["paths"]["/api/workflows"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WorkflowDefinition"}
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for status in ("401", "404", "413", "422"):
        assert create["responses"][status]["content"]["application/json"]["schema"] == envelope
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_a_405_names_every_method_of_the_path(service: Service) -> None:
    response = await service.http.request("OPTIONS", "/api/prompts")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["code"] == "http_error"
    # `/api/workflows/runs` also fits `/api/workflows/{slug}` (PUT); `runs` is a reserved slug.
    runs = await service.http.request("OPTIONS", "/api/workflows/runs")
    assert runs.headers["allow"] == "GET"


async def test_types_are_strict_as_documented(service: Service) -> None:
    slug = unique_slug("strict")
    await service.create_workflow(passthrough(slug))
    http = service.http
    assert problem(await http.post(f"/api/workflows/{slug}/preview",
                                   json={"useSampleData": 0})) == "/useSampleData"
    assert problem(await http.post(f"/api/workflows/{slug}/run",
                                   json={"input": {}, "pinVersion": "true"})) == "/pinVersion"
    definition = passthrough(unique_slug("strict"))
    definition["steps"][0]["retryConfig"] = {"maxAttempts": "3"}
    assert problem(await http.post("/api/workflows", json=definition)) == \
        "/steps/0/retryConfig/maxAttempts"
    trigger = await http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "t", "type": "manual", "enabled": 1})
    assert problem(trigger) == "/enabled"


@pytest.mark.parametrize("until", ["0.5", "0001-01-01T00:00:00+14:00"])
async def test_a_time_is_iso_text_within_utc_years(service: Service, until: str) -> None:
    for path in ("/api/workflows/runs", "/api/usage"):
        response = await service.http.get(path, params={"until": until})
        assert problem(response) == "/query/until", (path, until)


async def test_a_preview_timeout_below_a_second_is_refused(service: Service) -> None:
    slug = unique_slug("quick")
    await service.create_workflow(passthrough(slug))
    response = await service.http.post(f"/api/workflows/{slug}/preview",
                                       json={"timeoutSeconds": 5e-324})
    assert problem(response) == "/timeoutSeconds"


async def test_a_codec_body_that_is_not_utf8_is_a_400(service: Service) -> None:
    response = await service.http.post("/codec/decode", content=b"\x02\xffL5\xfe",
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payloads"


async def test_a_backfill_past_the_run_limit_is_refused(service: Service) -> None:
    slug = unique_slug("backfill")
    await service.create_workflow(passthrough(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "yearly", "type": "scheduled",
        "config": {"cronExpressions": ["0 0 1 1 *"]}})
    assert created.status_code == 201, created.text
    trigger = created.json()["trigger"]["id"]
    try:
        # Four New Year midnights, 2001 to 2004: one more than a backfill may start.
        response = await service.http.post(f"/api/triggers/{trigger}/backfill", json={
            "startAt": "2001-01-01T00:00:00Z", "endAt": "2004-01-01T00:00:01Z"})
        assert problem(response) == "/endAt"
        assert response.json()["error"]["code"] == "backfill_too_large"
        at_limit = await service.http.post(f"/api/triggers/{trigger}/backfill", json={
            "startAt": "2001-01-01T00:00:00Z", "endAt": "2004-01-01T00:00:00Z"})
        assert at_limit.status_code == 202, at_limit.text
    finally:
        await service.http.delete(f"/api/triggers/{trigger}")
