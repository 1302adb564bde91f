"""Comparing runs in the inspector: a rerun links to its diff against its source run, which
marks exactly the steps that changed, and "Compare with…" takes any run of the environment."""

from __future__ import annotations

import json

from playwright.async_api import Page, expect

from tests.browser.inspector_support import sign_in
from tests.conftest import Service, unique_slug
from tests.e2e.test_evaluations import TITLED, _finished, _past_runs, titled
from tests.e2e.test_run_diff import two_calls_and_a_transform
from tests.fakes.llm_server import FakeLlmServer, ok


async def test_a_rerun_links_to_its_diff_which_marks_the_changed_steps(
        service: Service, llm: FakeLlmServer, page: Page) -> None:
    slug = unique_slug("uicompare")
    await service.create_workflow(two_calls_and_a_transform(slug))
    llm.enqueue(ok("Nile"), ok("long river"), ok("a <b>very</b> long river"))
    source = (await service.run(slug, {"topic": "rivers"})).json()["run"]
    rerun = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun", json={
        "fromStepId": "s2", "stepOverrides": {"s2": {"promptUser": "Describe {{name}} well"}}})
    assert rerun.status_code == 200, rerun.text
    rerun_id = rerun.json()["run"]["id"]

    await sign_in(page, service.url, f"/ui/runs/{rerun_id}")
    await page.get_by_role("link", name="Compare with source run").click()
    await expect(page).to_have_url(
        f"{service.url}/ui/runs/{rerun_id}/compare?against={source['id']}")
    await expect(page.locator("#changed-steps")).to_have_text("s2, s3")
    rows = page.locator("tr.diff-step")
    assert await rows.evaluate_all("rows => rows.map(r => [r.dataset.stepId, r.dataset.changed])"
                                   ) == [["s1", "no"], ["s2", "yes"], ["s3", "yes"]]
    prompt = page.locator("#diff-s2 .prompt-diff")
    await expect(prompt).to_contain_text("-user: Describe Nile")
    await expect(prompt).to_contain_text("+user: Describe Nile well")
    # The model's answer is shown as text, not markup.
    await expect(page.locator("#diff-s2")).to_contain_text("a <b>very</b> long river")
    assert await page.locator("#diff-s2 b").count() == 0


async def test_compare_with_takes_a_run_id_and_names_a_bad_one(
        service: Service, page: Page) -> None:
    slug = unique_slug("uicompare2")
    await service.create_workflow({"id": slug, "name": "t", "variables": [
        {"name": "n", "type": "integer", "required": True}],
        "steps": [{"id": "a", "type": "transform", "inputMapping": {"n": "input.n"}}]})
    first = (await service.run(slug, {"n": 1})).json()["run"]
    second = (await service.run(slug, {"n": 2})).json()["run"]

    await sign_in(page, service.url, f"/ui/runs/{second['id']}")
    await page.get_by_role("link", name="Compare with…").click()
    field = page.get_by_label("Compare with")
    await field.fill("not-a-run")
    await page.get_by_role("button", name="Compare").click()
    await expect(page.get_by_role("alert")).to_contain_text("'not-a-run' is not a run id")
    # The recent runs of the workflow are offered; the first is one of them.
    await page.locator(f"a[href$='against={first['id']}']").click()
    await expect(page.locator("#changed-steps")).to_have_text("a")
    await expect(page.locator("#diff-a")).to_contain_text("/n")


async def test_an_evaluation_page_shows_its_pass_rate_and_regressions(
        service: Service, llm: FakeLlmServer, page: Page) -> None:
    slug = unique_slug("uieval")
    await service.create_workflow(titled(slug))
    await _past_runs(service, llm, slug, 3)
    llm.enqueue(ok(json.dumps({"title": "x"})), ok(json.dumps({"name": "no title"})),
                ok(json.dumps({"title": "y"})))
    started = await service.http.post(f"/api/workflows/{slug}/evaluations", json={
        "candidate": {"definition": titled(slug, "A short title for {{topic}} as JSON")},
        "dataset": {"fromRuns": {"limit": 3}}, "concurrency": 1,
        "assertions": [{"type": "jsonSchema", "schema": TITLED}]})
    assert started.status_code == 202, started.text
    evaluation = await _finished(service, started.json()["evaluation"]["id"])
    assert len(evaluation["summary"]["regressions"]) == 1, evaluation["summary"]

    await sign_in(page, service.url, f"/ui/workflows/{slug}")
    await page.get_by_role("link", name="Evaluations").click()
    await page.get_by_role("link", name=evaluation["id"][:8]).click()
    await expect(page.locator("#pass-rate")).to_contain_text("67% (2 of 3)")
    regressed = evaluation["summary"]["regressions"][0]
    await expect(page.locator("#regressions")).to_have_text(f"case {regressed}")
    case = page.locator(f"#case-{regressed}")
    await expect(case).to_contain_text("regression")
    await case.get_by_role("link", name="Compare the runs").click()
    await expect(page.locator("#changed-steps")).to_have_text("title")
