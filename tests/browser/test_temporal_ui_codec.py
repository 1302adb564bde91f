"""The Temporal UI, pointed at the API's codec endpoint as `promptpilot dev` points it, shows a
run's input decrypted; the same endpoint refuses a request without a key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from tests.conftest import DEV_KEY, unique_slug
from tests.e2e.test_codec_endpoint import echo
from tests.payload_support import persisted_temporal, serving

pytestmark = pytest.mark.browser
SECRET_NOTE = "visible-through-the-codec-5c2e"


async def test_temporal_ui_shows_the_decoded_input_through_the_codec(
        settings: Settings, engine: AsyncEngine, page: Page, tmp_path: Path) -> None:
    own = settings.model_copy(deep=True)
    api = f"http://127.0.0.1:{own.api.port}"
    async with persisted_temporal(tmp_path / "temporal",
                                  ui_codec_endpoint=f"{api}/codec/k/{DEV_KEY}") as temporal:
        assert temporal.ui_url
        own.temporal.address, own.temporal.ui_url = temporal.address, temporal.ui_url
        slug = unique_slug("ui")
        async with serving(own) as http:
            # The workflow's name travels in the run's input (its definition snapshot), near
            # the top of what the UI's Input panel shows; the result does not carry it.
            definition = {**echo(slug, "{said: 'done'}"), "name": SECRET_NOTE}
            assert (await http.post("/api/workflows", json=definition)).status_code == 201
            run = (await http.post(f"/api/workflows/{slug}/run",
                                   json={"input": {"text": SECRET_NOTE}})).json()["run"]
            assert run["status"] == "completed", run

            async with httpx.AsyncClient(base_url=api) as anonymous:
                refused = await anonymous.post("/codec/decode", json={"payloads": []},
                                               headers={"Origin": temporal.ui_url})
            assert refused.status_code == 401

            url = f"{temporal.ui_url}/namespaces/dev/workflows/{run['id']}"
            await page.goto(url)
            await expect(page.get_by_text(SECRET_NOTE)).to_be_visible(timeout=20_000)
            await expect(page.get_by_text('"said": "done"')).to_be_visible()

            # Without the codec endpoint the same page shows only ciphertext (base64).
            await page.route("**/codec/**", lambda route: route.abort())
            await page.goto(url)
            alert = page.get_by_text("Codec Server could not connect").filter(visible=True)
            await expect(alert).to_be_visible(timeout=20_000)
            await expect(page.get_by_text('"said": "done"')).to_have_count(0)
            assert SECRET_NOTE not in await page.content()
