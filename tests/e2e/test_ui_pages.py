"""The inspector over plain HTTP: login page, redirects, the session cookie and its CSRF check."""

from __future__ import annotations

import re
import uuid

import httpx

from promptpilot.settings import Settings
from schema.run import RunRecord
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.payload_support import serving
from tests.triggers_support import echo
from tests.ui_login import sign_in


async def test_login_page_redirects_cookie_session_and_csrf(service: Service) -> None:
    slug = unique_slug("uihttp")
    await service.create_workflow(echo(slug))
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        login = await browser.get("/ui/login")
        assert login.status_code == 200
        assert '<label for="api-key">API key</label>' in login.text
        home = await browser.get("/ui/runs?status=failed")
        assert home.status_code == 303
        assert home.headers["location"] == "/ui/login?next=/ui/runs%3Fstatus%3Dfailed"
        assert (await browser.get("/api/workflows")).status_code == 401

        form_token = _hidden(login.text, "csrf")
        assert browser.cookies["pp_login"] == form_token
        # A post without the form's token (another site's page) signs nobody in.
        forged_login = await browser.post("/ui/login", data={"api_key": DEV_KEY, "next": "/ui",
                                                            "csrf": "guess"})
        assert forged_login.status_code == 403
        non_ascii = await browser.post("/ui/login", data={"api_key": DEV_KEY, "csrf": "ü" * 43})
        assert non_ascii.status_code == 403
        assert "pp_session" not in forged_login.cookies
        wrong = await browser.post("/ui/login", data={"api_key": "pp_wrong", "next": "/ui",
                                                      "csrf": form_token})
        assert wrong.status_code == 401
        assert "not valid" in wrong.text
        assert "pp_session" not in wrong.cookies
        # Only inspector paths are followed after signing in.
        signed = await browser.post("/ui/login", data={"api_key": DEV_KEY, "csrf": form_token,
                                                      "next": "https://evil.example/"})
        assert (signed.status_code, signed.headers["location"]) == (303, "/ui/workflows")
        cookies = signed.headers.get_list("set-cookie")
        assert all("HttpOnly" in c and "SameSite=lax" in c for c in cookies), cookies
        assert "Secure" not in cookies[0]  # served over http, no public https URL set
        session_cookie = browser.cookies["pp_session"]
        assert DEV_KEY not in session_cookie
        assert DEV_KEY not in " ".join(cookies)
        assert "pp_login" not in browser.cookies  # the pre-session cookie is dropped

        page = await browser.get(f"/ui/workflows/{slug}")
        assert page.status_code == 200
        assert DEV_KEY not in page.text
        match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert match is not None
        token = match.group(1)
        # Reads work with the cookie alone (EventSource cannot send headers) ...
        assert (await browser.get(f"/api/workflows/{slug}")).status_code == 200
        # ... a POST does not, unless it carries the page's token.
        body = {"input": {"topic": "csrf"}}
        refused = await browser.post(f"/api/workflows/{slug}/run", json=body)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        forged = await browser.post(f"/api/workflows/{slug}/run", json=body,
                                    headers={"X-PromptPilot-CSRF": "guess"})
        assert forged.status_code == 403
        started = await browser.post(f"/api/workflows/{slug}/run", json=body,
                                     headers={"X-PromptPilot-CSRF": token})
        assert started.status_code in (200, 202), started.text
        # Bearer stays the documented way and needs no CSRF token.
        assert (await service.http.post(f"/api/workflows/{slug}/run", json=body)
                ).status_code in (200, 202)

        await _every_page_renders(browser, slug, started.json()["run"]["id"])

        assert (await browser.post("/ui/logout", data={"csrf": "nope"})).status_code == 403
        out = await browser.post("/ui/logout", data={"csrf": token})
        assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert (await browser.get("/ui/workflows")).status_code == 303


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, name
    return match.group(1)


async def _every_page_renders(browser: httpx.AsyncClient, slug: str, run_id: str) -> None:
    for path, expected in [
        (f"/ui/runs?workflow={slug}&status=completed&trigger=api&since=2000-01-01T00:00", slug),
        ("/ui/runs?since=not-a-time&cursor=junk", "Runs"),
        (f"/ui/runs/{run_id}", "Open in Temporal UI"),
        (f"/ui/workflows/{slug}/diff?from=1&to=1", "No changes"),
        (f"/ui/workflows/{slug}/preview", "Use sample data"),
        ("/ui/workflows", slug),
        ("/ui/triggers", "Schedules and triggers"),
    ]:
        response = await browser.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert expected in response.text, path
    for path in ("/ui/runs/not-a-uuid", "/ui/workflows/nope-nope", "/ui/workflows/nope/preview",
                 f"/ui/workflows/{slug}?version=99"):
        assert (await browser.get(path)).status_code == 404, path


async def _login_form(browser: httpx.AsyncClient) -> str:
    return _hidden((await browser.get("/ui/login")).text, "csrf")


async def test_failed_sign_ins_are_throttled_with_retry_after(service: Service) -> None:
    limit = service.settings.api.auth_throttle.client_failures
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        token = await _login_form(browser)
        answers = [(await browser.post("/ui/login", data={
            "api_key": f"pp_dev_wrong{i}", "csrf": token})).status_code for i in range(limit)]
        assert answers == [401] * (limit - 1) + [429]
        throttled = await browser.post("/ui/login", data={"api_key": "pp_x", "csrf": token})
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Too many failed sign-ins" in throttled.text
        assert "pp_session" not in browser.cookies


async def test_session_cookie_is_secure_when_the_public_url_is_https(
        settings: Settings) -> None:
    own = settings.model_copy(deep=True)
    own.api.public_url = "https://inspector.example"
    async with serving(own) as http, httpx.AsyncClient(base_url=str(http.base_url),
                                                       timeout=30) as browser:
        form = await browser.get("/ui/login")
        login_cookie = form.headers.get("set-cookie") or ""
        assert "Secure" in login_cookie
        token = _hidden(form.text, "csrf")
        # httpx, like a browser, keeps a Secure cookie from going over plain http: hand it on.
        browser.cookies.set("pp_login", token)
        signed = await browser.post("/ui/login", data={"api_key": DEV_KEY, "csrf": token})
        assert signed.status_code == 303, signed.text
        cookies = signed.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("pp_session="))
        assert "Secure" in session
        assert "HttpOnly" in session


async def test_pending_runs_show_in_the_run_list_and_their_page_is_live(
        service: Service) -> None:
    # A run accepted while Temporal is unreachable: recorded `pending`, not started yet.
    row = await service.create_workflow(echo(unique_slug("uipend")))
    run_id = str(uuid.uuid4())
    await service.store.create_run(RunRecord(run_id=run_id, environment="dev",
                                             workflow_id=row["id"], workflow_version=1,
                                             status="pending"))
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        await sign_in(browser)
        for query in ("", "?status=pending"):
            listed = await browser.get(f"/ui/runs{query}")
            assert listed.status_code == 200
            line = re.search(rf'<tr data-run-id="{run_id}">.*?</tr>', listed.text, re.S)
            assert line is not None, query
            assert 'class="badge status-pending"' in line.group(0)
        page = await browser.get(f"/ui/runs/{run_id}")
        assert 'data-status="pending"' in page.text
        assert 'data-live="1"' in page.text
