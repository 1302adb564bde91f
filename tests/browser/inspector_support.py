"""Helpers the browser tests share: sign in, and a completed run to look at."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.conftest import DEV_KEY, Service
from tests.definitions import chain


async def sign_in(page: Page, base_url: str, next_path: str = "/ui/workflows") -> None:
    """Sign in through the login form and land on `next_path`."""
    await page.goto(f"{base_url}{next_path}")
    await expect(page).to_have_url(f"{base_url}/ui/login?next={next_path}")
    await page.get_by_label("API key").fill(DEV_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base_url}{next_path}")


async def completed_run(service: Service, slug: str, steps: int = 3) -> dict[str, Any]:
    """A workflow of `steps` llm steps (the fake OpenAI server) and one finished run of it."""
    await service.create_workflow(chain(slug, steps))
    response = await service.run(slug, {"topic": "rivers"})
    run: dict[str, Any] = response.json()["run"]
    assert run["status"] == "completed", response.text
    return run
