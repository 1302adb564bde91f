"""The run page shows an llm step's answer growing as the provider streams it, then the
finished run with the stored output."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.inspector_support import sign_in
from tests.conftest import Service, unique_slug
from tests.e2e.test_streaming import ANSWER, drafted
from tests.fakes.llm_server import FakeLlmServer, ok


async def test_the_run_page_shows_the_answer_as_it_is_written(
        service: Service, llm: FakeLlmServer, page: Page) -> None:
    # Chunks 250 ms apart: the page has seconds to show the first words with the rest to come.
    llm.enqueue(ok(ANSWER, wait=1.5, chunk_delay=0.25))
    slug = unique_slug("uistream")
    await service.create_workflow(drafted(slug, "gpt-4o-mini"))
    started = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                      json={"input": {}})
    run_id = started.json()["run"]["id"]

    await sign_in(page, service.url, f"/ui/runs/{run_id}")
    live = page.get_by_label("Text draft is writing")
    await expect(live).to_contain_text("Otters sleep holding")
    shown = await live.text_content() or ""
    assert ANSWER.startswith(shown)
    assert len(shown) < len(ANSWER)  # still being written
    await expect(page.locator("#step-draft")).to_have_attribute("data-status", "running")
    # The finished run replaces the live text with the stored output.
    await expect(page.locator("#step-draft")).to_have_attribute("data-status", "completed",
                                                                timeout=30_000)
    await expect(page.locator("#step-draft")).to_contain_text(ANSWER.split(",")[0])
