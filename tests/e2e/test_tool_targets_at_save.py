"""A tool step aimed at a metadata or other non-global address is refused when saved."""

from __future__ import annotations

import pytest

from tests.conftest import Service, unique_slug


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/", "http://[fd00:ec2::254]/latest/",
    "http://192.0.0.8/", "http://2130706433/", "http://0177.0.0.1/", "http://[::ffff:7f00:1]/",
])
async def test_a_non_global_literal_url_is_refused_at_save_and_nothing_is_stored(
        service: Service, url: str) -> None:
    slug = unique_slug("ssrf")
    step = {"id": "fetch", "type": "tool", "toolName": "http_request", "args": {"url": url}}
    refused = await service.http.post("/api/workflows",
                                      json={"id": slug, "name": "probe", "steps": [step]})
    assert refused.status_code == 422, refused.text
    problems = refused.json()["error"]["problems"]
    assert [p["pointer"] for p in problems] == ["/steps/0/args/url"]
    assert "refusing to reach" in problems[0]["message"]
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404


async def test_a_public_or_templated_url_is_saved(service: Service) -> None:
    for url in ("https://example.com/data", "{{ input.url }}"):
        await service.create_workflow({"id": unique_slug("ok"), "name": "fine", "steps": [
            {"id": "fetch", "type": "tool", "toolName": "http_request", "args": {"url": url}}]})
