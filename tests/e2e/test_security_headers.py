"""Every API answer tells the browser not to sniff, frame or leak a referrer."""

from __future__ import annotations

import httpx

from tests.conftest import Service


async def test_json_answers_and_refusals_carry_the_security_headers(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        answers = [await service.http.get("/api/workflows"),
                   await anonymous.get("/api/workflows"),  # a 401
                   await service.http.get("/api/no-such-route")]
    assert [a.status_code for a in answers] == [200, 401, 404]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'")


async def test_the_docs_page_still_loads_its_script_but_cannot_be_framed(
        service: Service) -> None:
    page = await service.http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"
