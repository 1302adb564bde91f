"""What every inspector page shares: templates and filters, the signed-in key, redirects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import StateDep
from api.ui.session import current_session
from store.access_tables import ApiKeyRow

HERE = Path(__file__).parent
TERMINAL = ("completed", "failed", "cancelled")
templates = Jinja2Templates(directory=HERE / "templates")


class LoginRequired(Exception):
    """No valid session cookie: the page redirects to the login form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    """303 to the login form, remembering where the user was going."""
    return RedirectResponse(f"/ui/login?next={quote(exc.next_path, safe='/')}", status_code=303)


def safe_next(value: str | None) -> str:
    """Only inspector paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/workflows"


async def ui_key(request: Request, state: StateDep) -> ApiKeyRow:
    """The key of the live session; otherwise (none, expired, key revoked) a redirect to the
    login form."""
    found = await current_session(request, state)
    if found is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return found.key


UiKey = Annotated[ApiKeyRow, Depends(ui_key)]


def page(request: Request, template: str, key: ApiKeyRow | None, *, status_code: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a page with the layout's context (environment, the session's CSRF token, nav)."""
    found = getattr(request.state, "ui_session", None)
    csrf = found.csrf_token if key is not None and found is not None else ""
    return templates.TemplateResponse(
        request, template, {"environment": key.environment if key else None,
                            "csrf": csrf, **context},
        status_code=status_code, headers={"Cache-Control": "no-store", **(headers or {})})


def not_found_page(request: Request, key: ApiKeyRow, what: str) -> HTMLResponse:
    """A 404 page in the layout."""
    return page(request, "not_found.html", key, status_code=404, title="Not found", what=what)


def parse_time(value: str | None) -> datetime | None:
    """A filter's time (datetime-local or ISO); naive times are UTC; junk is ignored."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # junk, or a time outside the years 1-9999 in UTC
        return None


# A page shows this much of one value (a 5 MB model answer, a 20 MB fetched page would make
# the browser crawl); the rest is named, never dropped: the API returns every value whole.
VIEW_CHARS = 100_000


def _clip(value: Any) -> str:
    text = str(value)
    if len(text) <= VIEW_CHARS:
        return text
    return (f"{text[:VIEW_CHARS]}\n… {len(text) - VIEW_CHARS:,} more characters not shown here"
            " (the API returns the whole value: GET /api/workflows/runs/<run id>)")


def _pretty(value: Any) -> str:
    return _clip(json.dumps(value, indent=2, sort_keys=False, default=str, ensure_ascii=False))


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _duration_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 120_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def run_duration_ms(started: datetime | None, finished: datetime | None) -> float | None:
    """Milliseconds between two stamps, when both are known."""
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds() * 1000


def _money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _delta_money(value: float | None) -> str:
    """A cost difference with its sign: +$0.0012, -$0.000300, or $0 when equal."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    return ("+" if value > 0 else "-") + _money(abs(value))


def _delta_duration(value: float | None) -> str:
    """A latency difference with its sign."""
    if value is None:
        return "—"
    return ("+" if value >= 0 else "-") + _duration_ms(abs(value))


def _short(value: str | None) -> str:
    return (value or "")[:8]


templates.env.filters.update(pretty=_pretty, clip=_clip, when=_when, duration=_duration_ms,
                             money=_money, short=_short,
                             delta_money=_delta_money, delta_duration=_delta_duration)
templates.env.globals.update(TERMINAL=TERMINAL, run_duration_ms=run_duration_ms)
