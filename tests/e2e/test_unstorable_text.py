"""Text Postgres cannot store gets a 422, not a 500, and stores nothing."""

from __future__ import annotations

from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery


async def test_nul_byte_in_a_query_parameter_is_a_422(service: Service) -> None:
    response = await service.http.get("/api/triggers", params={"workflowSlug": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_nul_escape_in_a_run_input_is_a_422_and_starts_nothing(service: Service) -> None:
    slug = unique_slug("nul")
    await service.create_workflow(feed_discovery(slug))
    before = await service.store.count_rows()
    response = await service.run(slug, {"interests": "AI\u0000"})
    assert response.status_code == 422, response.text
    assert await service.store.count_rows() == before
