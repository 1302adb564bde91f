"""The inspector at /ui in a real browser: sign-in, run timeline, live rerun, preview, schedules,
and a phone-sized window."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.inspector_support import completed_run, sign_in
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import FakeLlmServer, hang
from tests.triggers_support import echo, wait_runs

pytestmark = pytest.mark.browser


async def test_sign_in_refuses_a_wrong_key_then_signs_in_and_out(
    service: Service, page: Page
) -> None:
    await page.goto(f"{service.url}/ui/runs")
    await expect(page).to_have_url(f"{service.url}/ui/login?next=/ui/runs")

    await page.get_by_label("API key").fill("pp_not_a_key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    await expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("API key").fill(DEV_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{service.url}/ui/runs")
    await expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert set(cookies) == {"pp_session"}
    assert cookies["pp_session"]["httpOnly"]
    assert cookies["pp_session"]["sameSite"] == "Lax"
    assert DEV_KEY not in cookies["pp_session"]["value"]
    assert DEV_KEY not in await page.content()
    assert DEV_KEY not in page.url

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{service.url}/ui/login")
    await page.goto(f"{service.url}/ui/workflows")
    await expect(page).to_have_url(f"{service.url}/ui/login?next=/ui/workflows")


async def test_completed_run_shows_its_timeline_and_a_step_opens(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uirun")
    run = await completed_run(service, slug)
    await sign_in(page, service.url, "/ui/workflows")
    await expect(page.locator(f'tr[data-slug="{slug}"]')).to_contain_text("completed")

    await page.locator(f'tr[data-slug="{slug}"]').get_by_role("link", name="completed").click()
    await expect(page).to_have_url(f"{service.url}/ui/runs/{run['id']}")
    await expect(page.locator("#run-status")).to_have_text("completed")
    steps = page.locator("ol.timeline > li.step")
    await expect(steps).to_have_count(3)
    step = page.locator("#step-s2")
    await expect(step.locator(":scope > details > summary")).to_contain_text("gpt-4o-mini")
    await expect(step.locator(".step-body")).to_be_hidden()

    await step.locator(":scope > details > summary").focus()
    await page.keyboard.press("Enter")  # <details> opens from the keyboard
    await expect(step.locator(".step-body")).to_be_visible()
    await expect(step.get_by_role("heading", name="Rendered prompt")).to_be_visible()
    await expect(step.locator(".rendered")).to_contain_text("Step 2: continue echo: Start on")
    await expect(step.locator('details[data-block="Output"]')).to_contain_text("echo: Step 2")
    temporal = page.get_by_role("link", name="Open in Temporal UI")
    href = await temporal.get_attribute("href")
    assert href is not None
    assert href.endswith(f"/namespaces/dev/workflows/{run['id']}")


async def test_rerun_from_step_two_completes_live_on_the_page(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uirerun")
    source = await completed_run(service, slug)
    await sign_in(page, service.url, f"/ui/runs/{source['id']}")
    step = page.locator("#step-s2")
    await step.locator(":scope > details > summary").click()
    await step.get_by_label("Override the user prompt").fill("EDITED from the inspector: {{prev}}")
    llm.enqueue(hang(2.5))  # step 2 of the new run is still going when its page opens

    await step.get_by_role("button", name="Rerun from s2").click()

    await expect(page).not_to_have_url(f"{service.url}/ui/runs/{source['id']}")
    new_id = page.url.rsplit("/", 1)[-1]
    assert new_id != source["id"]
    await expect(page.locator("#run")).to_have_attribute("data-live", "1")
    await expect(page.locator("#run-status")).not_to_have_text("completed")
    await expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)
    await expect(page.locator("#step-s1")).to_have_attribute("data-status", "reused")
    await expect(page.locator("#step-s3")).to_have_attribute("data-status", "completed")
    await page.locator("#step-s1 > details > summary").click()
    source_link = page.locator("#step-s1 .banner.info a")
    await expect(source_link).to_have_attribute("href", f"/ui/runs/{source['id']}#step-s1")
    await page.locator("#step-s2 > details > summary").click()
    await expect(page.locator("#step-s2 .rendered")).to_contain_text("EDITED from the inspector")
    rerun: dict[str, Any] = (await service.http.get(f"/api/workflows/runs/{new_id}")).json()["run"]
    assert (rerun["status"], rerun["sourceRunId"], rerun["fromStepId"]) == (
        "completed", source["id"], "s2")


async def test_preview_checks_json_then_runs_with_sample_data(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uiprev")
    await service.create_workflow(chain(slug, 2))
    await sign_in(page, service.url, f"/ui/workflows/{slug}/preview")
    box = page.get_by_label("Input (JSON object)")
    await box.fill('{"topic": ')
    await page.get_by_role("button", name="Run preview").click()
    await expect(page.locator("#preview-input-error")).to_contain_text("Not valid JSON")
    await expect(box).to_have_attribute("aria-invalid", "true")
    assert llm.count() == 0  # nothing was sent

    await box.fill("")
    await page.get_by_label("Use sample data").check()
    await page.get_by_role("button", name="Run preview").click()

    status = page.locator("#preview-status")
    await expect(status).to_contain_text("completed", timeout=30_000)
    await expect(status).to_contain_text("sample data used")
    steps = page.locator("#preview-body li.step")
    await expect(steps).to_have_count(2)
    await steps.nth(0).locator(":scope > details > summary").click()
    await expect(steps.nth(0)).to_contain_text("Start on durable execution")


async def test_pause_resume_and_trigger_a_schedule(service: Service, page: Page) -> None:
    slug = unique_slug("uisched")
    await service.create_workflow(echo(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "hourly digest", "type": "scheduled",
        "config": {"intervals": [{"everySeconds": 3600}]}, "input": {"topic": "ui"}})
    assert created.status_code == 201, created.text
    trigger_id = created.json()["trigger"]["id"]
    row = page.locator(f"#trigger-{trigger_id}")
    try:
        await sign_in(page, service.url, "/ui/triggers")
        await expect(row.locator(".state")).to_contain_text("active")
        await expect(row.locator("time")).to_have_count(3)

        await row.get_by_role("button", name="Pause").click()
        await expect(row.locator(".state")).to_contain_text("paused")
        await expect(row.get_by_role("button", name="Resume")).to_be_visible()
        detail = (await service.http.get(f"/api/triggers/{trigger_id}")).json()["trigger"]
        assert detail["schedule"]["paused"] is True

        await row.get_by_role("button", name="Trigger now").click()
        await expect(row.locator(".action-msg")).to_contain_text("Triggered")
        await wait_runs(service, slug, 1, trigger="scheduled", within=20)
    finally:
        await service.http.delete(f"/api/triggers/{trigger_id}")


@pytest.mark.viewport(390, 844)
async def test_run_page_fits_a_390px_window(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uinarrow")
    run = await completed_run(service, slug)
    await sign_in(page, service.url, f"/ui/runs/{run['id']}")
    await page.locator("#step-s1 > details > summary").click()
    await expect(page.locator("#step-s1 .rerun-form")).to_be_visible()
    for path in (f"/ui/runs/{run['id']}", "/ui/runs", f"/ui/workflows/{slug}",
                 f"/ui/workflows/{slug}/edit", "/ui/workflows/new", "/ui/triggers"):
        if path != f"/ui/runs/{run['id']}":
            await page.goto(f"{service.url}{path}")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 390px"
    await page.goto(f"{service.url}/ui/runs/{run['id']}")
    await page.locator("#step-s2 > details > summary").click()
