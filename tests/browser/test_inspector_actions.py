"""The inspector acting: approve and reject waiting steps, edit definitions with the server's
problems by pointer, create triggers, and watch a run's waterfall, tokens and cost."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.inspector_support import completed_run, sign_in
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.e2e.test_approval import gated
from tests.fakes.llm_server import FakeLlmServer, Reply, hang
from tests.triggers_support import echo

pytestmark = pytest.mark.browser


async def _start(service: Service, slug: str) -> str:
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                       json={"input": {}})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run"]["id"]
    return run_id


async def _run(service: Service, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
    return run


async def test_approve_from_the_page_and_the_run_completes(service: Service, page: Page) -> None:
    slug = unique_slug("uiappr")
    await service.create_workflow(gated(slug))
    run_id = await _start(service, slug)
    await sign_in(page, service.url, f"/ui/runs/{run_id}")

    form = page.locator("#approval-review")
    await expect(form).to_be_visible(timeout=20_000)  # the page reloads when the step waits
    await expect(form).to_contain_text("Publish hello?")
    await form.get_by_label("Comment (optional)").fill("ship it")
    await form.get_by_role("button", name="Approve").click()

    await expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
    await expect(page.locator("#step-review")).to_have_attribute("data-status", "completed")
    await expect(page.locator(".approval-form")).to_have_count(0)
    run = await _run(service, run_id)
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert (run["status"], review["outputJson"]["decision"], review["outputJson"]["comment"]) \
        == ("completed", "approved", "ship it")
    assert review["outputJson"]["by"]["name"] == "test dev key"


async def test_reject_with_a_comment_fails_the_step(service: Service, page: Page) -> None:
    slug = unique_slug("uirej")
    await service.create_workflow(gated(slug))
    run_id = await _start(service, slug)
    await sign_in(page, service.url, f"/ui/runs/{run_id}")
    form = page.locator("#approval-review")
    await expect(form).to_be_visible(timeout=20_000)
    await form.get_by_label("Comment (optional)").fill("not this week")
    await form.get_by_role("button", name="Reject").click()

    await expect(page.locator("#run-status")).to_have_text("failed", timeout=20_000)
    await expect(page.locator("#step-review")).to_have_attribute("data-status", "failed")
    await expect(page.locator(".banner.error").first).to_contain_text("not this week")
    run = await _run(service, run_id)
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert review["outputJson"]["decision"] == "rejected"
    assert "not this week" in review["error"]["message"]


async def _save(page: Page, definition: dict[str, Any]) -> None:
    await page.get_by_label("Definition (JSON)").fill(json.dumps(definition, indent=2))
    await page.locator("#definition-save").click()


async def test_definition_editor_shows_problems_by_pointer_and_saves_versions(
    service: Service, page: Page
) -> None:
    slug = unique_slug("uiedit")
    await sign_in(page, service.url, "/ui/workflows")
    await page.get_by_role("link", name="New workflow").click()
    broken: dict[str, Any] = {"id": slug, "name": "edited in the inspector", "steps": [
        {"id": "a", "type": "transform", "expression": "{text: 'one'}"},
        {"id": "b", "type": "transfrom", "expression": "{text: 'two'}"}]}
    await _save(page, broken)
    problems = page.locator("#definition-problems")
    await expect(problems).to_contain_text("/steps/1")
    await expect(page.get_by_label("Definition (JSON)")).to_have_attribute("aria-invalid", "true")
    # The pointer selects its place in the text: the misspelt type.
    await problems.locator("li[data-pointer^='/steps/1'] button").first.click()
    selected = await page.get_by_label("Definition (JSON)").evaluate(
        "area => area.value.slice(area.selectionStart, area.selectionEnd)")
    assert "transfrom" in selected
    assert "one" not in selected
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404  # not stored

    broken["steps"][1]["type"] = "transform"
    await _save(page, broken)
    await expect(page).to_have_url(f"{service.url}/ui/workflows/{slug}")
    await expect(page.locator(".meta")).to_contain_text("v1")

    await page.get_by_role("link", name="Edit definition").click()
    await expect(page.locator("#definition-save")).to_have_text("Save as v2")
    edited = json.loads(await page.get_by_label("Definition (JSON)").input_value())
    edited["steps"].append({"id": "c", "type": "llm", "promptUser": "hi"})  # no model
    await _save(page, edited)
    # The problems arrive with the save's answer: wait for them, then read every pointer.
    await expect(problems.locator("li[data-pointer^='/steps/2']").first).to_be_visible()
    pointers = await problems.locator("li").evaluate_all(
        "items => items.map(i => i.dataset.pointer)")
    assert all(p.startswith("/steps/2") for p in pointers), pointers
    edited["steps"][2] = {"id": "c", "type": "transform", "expression": "{text: 'three'}"}
    await _save(page, edited)
    await expect(page).to_have_url(f"{service.url}/ui/workflows/{slug}")
    await expect(page.locator(".meta")).to_contain_text("v2")
    stored = (await service.http.get(f"/api/workflows/{slug}")).json()["workflow"]
    assert stored["currentVersion"] == 2
    assert [s["id"] for s in stored["definition"]["steps"]] == ["a", "b", "c"]


async def test_new_schedule_shows_its_next_fire_times(service: Service, page: Page) -> None:
    slug = unique_slug("uinewsched")
    await service.create_workflow(echo(slug))
    await sign_in(page, service.url, "/ui/triggers")
    new = page.locator("#new-trigger")
    if not await new.evaluate("details => details.open"):
        await new.locator("summary").click()
    await page.get_by_label("Workflow").select_option(slug)
    await page.get_by_label("Name").fill(f"nightly {slug}")
    await page.get_by_label("Cron expression").fill("30 1 * * *")
    await page.get_by_label("Time zone").fill("America/New_York")
    await page.get_by_label("Run input (JSON object)").fill('{"topic": "night"}')
    await page.get_by_role("button", name="Create trigger").click()

    row = page.locator("tr", has_text=f"nightly {slug}")
    try:
        await expect(row.locator(".state")).to_contain_text("active")
        times = row.locator("time")
        await expect(times).to_have_count(3)
        stamps = [await t.get_attribute("datetime") or "" for t in await times.all()]
        assert stamps == sorted(stamps)
        assert all(re.search(r"T0[56]:30:00", s) for s in stamps), stamps  # 01:30 New York
        await expect(row).to_contain_text("30 1 * * * America/New_York")
    finally:
        trigger_id = await row.get_attribute("data-trigger-id")
        if trigger_id:
            await service.http.delete(f"/api/triggers/{trigger_id}")


async def test_new_webhook_shows_its_secret_once(service: Service, page: Page) -> None:
    slug = unique_slug("uihook")
    await service.create_workflow(echo(slug))
    await sign_in(page, service.url, "/ui/triggers")
    new = page.locator("#new-trigger")
    if not await new.evaluate("details => details.open"):
        await new.locator("summary").click()
    await page.get_by_label("Workflow").select_option(slug)
    await page.get_by_label("Name").fill(f"hook {slug}")
    await page.get_by_label("Type").select_option("webhook")
    await expect(page.get_by_label("Cron expression")).to_be_hidden()
    await page.get_by_role("button", name="Create trigger").click()

    secret_box = page.locator("#webhook-secret")
    await expect(secret_box).to_be_visible()
    secret = (await secret_box.text_content() or "").strip()
    assert len(secret) >= 24
    await expect(page.locator(".secret-once")).to_contain_text("shown this once")
    listed = (await service.http.get("/api/triggers", params={"workflowSlug": slug})).json()
    trigger = listed["triggers"][0]
    await expect(page.locator(".secret-once")).to_contain_text(f"/api/webhooks/{trigger['id']}")

    await page.reload()
    await expect(page.locator(f"#trigger-{trigger['id']}")).to_be_visible()
    assert secret not in await page.content()
    await page.goto(f"{service.url}/ui/triggers")
    assert secret not in await page.content()
    await service.http.delete(f"/api/triggers/{trigger['id']}")


async def test_waterfall_bars_follow_the_steps_in_time(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uiwf")
    llm.enqueue(hang(0.1), hang(2.5), hang(0.1))  # step 2 far the longest, under load too
    run = await completed_run(service, slug, steps=3)
    await sign_in(page, service.url, f"/ui/runs/{run['id']}")
    rows = page.locator("#waterfall > li")
    await expect(rows).to_have_count(3)
    assert await rows.evaluate_all("r => r.map(x => x.dataset.stepId)") == ["s1", "s2", "s3"]
    bars = await page.locator("#waterfall rect").evaluate_all(
        "rs => rs.map(r => [parseFloat(r.getAttribute('x')), parseFloat(r.getAttribute('width'))])")
    (x1, w1), (x2, w2), (x3, w3) = bars
    # Each step starts after the one before it ends (a chain), on one shared scale.
    assert x1 < x2 < x3
    assert x1 + w1 <= x2 + 0.5
    assert x2 + w2 <= x3 + 0.5
    assert w2 > w1  # step 2 took longer
    assert x3 + w3 <= 100.001
    boxes = [await r.bounding_box() for r in await page.locator("#waterfall rect").all()]
    assert all(b is not None and b["width"] > 0 for b in boxes)


async def test_tokens_and_cost_of_a_running_run_update_as_steps_finish(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uilive")
    await service.create_workflow(chain(slug, 3))
    await sign_in(page, service.url, "/ui/runs")
    llm.enqueue(Reply(kind="hang", seconds=2.0, tokens_in=1200, tokens_out=300), hang(4.0))
    started = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                      json={"input": {"topic": "tides"}})
    run_id = started.json()["run"]["id"]
    await page.goto(f"{service.url}/ui/runs/{run_id}")
    await expect(page.locator("#run")).to_have_attribute("data-live", "1")
    tokens, cost = page.locator("#run-tokens"), page.locator("#run-cost")

    await expect(tokens).to_have_text(re.compile(r"^1200 / 300$"), timeout=20_000)
    await expect(page.locator("#run-status")).to_have_text("running")  # still going
    assert (await cost.text_content() or "").startswith("$")
    assert (await cost.text_content()) != "$0.000000"
    await expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)
    final = await _run(service, run_id)
    assert await tokens.text_content() == f"{final['tokensIn']} / {final['tokensOut']}"
