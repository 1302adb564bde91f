"""Signing a plain HTTP client in to the inspector, as a browser does (form token included)."""

from __future__ import annotations

import re

import httpx

from tests.conftest import DEV_KEY


async def sign_in(browser: httpx.AsyncClient, key: str = DEV_KEY) -> None:
    """Fetch the login form (its pre-session cookie and token), post the key, keep the session."""
    form = await browser.get("/ui/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None, form.text[:500]
    signed = await browser.post("/ui/login", data={"api_key": key, "next": "/ui",
                                                   "csrf": match.group(1)})
    assert signed.status_code == 303, signed.text[:500]
