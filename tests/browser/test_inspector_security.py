"""The inspector against another site and a leaked database: no framing, no signing a visitor
in from elsewhere, a session cookie that is not the key, and a session that ends with its key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from store.keys import ApiKeys
from tests.browser.inspector_support import completed_run, sign_in
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.fakes.llm_server import FakeLlmServer

pytestmark = pytest.mark.browser


@contextmanager
def other_site(html: str) -> Iterator[str]:
    """A page served from another origin (and another site: `localhost`, not 127.0.0.1)."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_another_site_can_neither_frame_the_inspector_nor_sign_a_visitor_in(
    service: Service, page: Page
) -> None:
    # Framed: the browser refuses to render the inspector inside another site's page.
    framing = f'<h1>other site</h1><iframe id="f" src="{service.url}/ui/login"></iframe>'
    with other_site(framing) as url:
        await page.goto(url)
        await expect(page.get_by_role("heading", name="other site")).to_be_visible()
        await page.wait_for_timeout(1500)
        frame = page.frame_locator("#f")
        assert await frame.locator("#api-key").count() == 0
        inner = [f for f in page.frames if f != page.main_frame]
        assert all("/ui/login" not in f.url for f in inner), [f.url for f in inner]

    # A visitor who opened the sign-in page (so holds its pre-session cookie) then lands on a
    # page that posts the attacker's key to the login form: refused, nobody is signed in.
    await page.goto(f"{service.url}/ui/login")
    forged = (f'<form id="x" method="post" action="{service.url}/ui/login">'
              f'<input name="api_key" value="{DEV_KEY}"><input name="next" value="/ui/runs">'
              '<button type="submit">win a prize</button></form>')
    with other_site(forged) as url:
        await page.goto(url)
        async with page.expect_navigation():
            await page.get_by_role("button", name="win a prize").click()
        await expect(page.get_by_role("alert")).to_contain_text("did not come from this site")
    assert "pp_session" not in {c["name"] for c in await page.context.cookies()}
    await page.goto(f"{service.url}/ui/runs")
    await expect(page).to_have_url(f"{service.url}/ui/login?next=/ui/runs")


async def test_pages_send_security_headers_and_their_own_script_passes_the_policy(
    service: Service, llm: FakeLlmServer, page: Page
) -> None:
    slug = unique_slug("uicsp")
    run = await completed_run(service, slug, steps=2)
    refused: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", console)
    await sign_in(page, service.url, f"/ui/runs/{run['id']}")
    for path in (f"/ui/runs/{run['id']}", f"/ui/workflows/{slug}/edit", "/ui/triggers",
                 f"/ui/workflows/{slug}/preview"):
        response = await page.goto(f"{service.url}{path}")
        assert response is not None
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert (headers["x-frame-options"], headers["x-content-type-options"],
                headers["referrer-policy"]) == ("DENY", "nosniff", "same-origin"), path
    # The script ran under the policy: its live JSON check answers as the user types.
    await page.get_by_label("Input (JSON object)").fill('{"topic": ')
    await expect(page.locator("#preview-input-error")).to_contain_text("Not valid JSON")
    assert refused == []


async def test_the_cookie_is_not_the_key_and_revoking_the_key_ends_the_session(
    service: Service, page: Page
) -> None:
    keys = ApiKeys(service.store.engine)
    key = await keys.create("dev", "inspector session test")
    row = await keys.verify(key)
    assert row is not None
    await page.goto(f"{service.url}/ui/workflows")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{service.url}/ui/workflows")

    cookies = await page.context.cookies()
    assert [c["name"] for c in cookies] == ["pp_session"]
    assert all(key not in c["value"] and key[-12:] not in c["value"] for c in cookies)
    assert key not in await page.content()
    status = await page.evaluate("fetch('/api/workflows').then(r => r.status)")
    assert status == 200  # the session reads the API too

    await keys.revoke(str(row.id))
    status = await page.evaluate("fetch('/api/workflows').then(r => r.status)")
    assert status == 401
    await page.reload()
    await expect(page).to_have_url(f"{service.url}/ui/login?next=/ui/workflows")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
