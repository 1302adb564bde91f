"""The CLI's HTTP client for the API: where it is, which key, and errors as readable lines.

Exit codes every API command shares (README "Commands"): 0 done; 1 the API refused what was
asked (a definition with problems, a workflow or run not found, a step not waiting, a run that
failed); 2 a usage or connection error (bad arguments, an unreadable file, the API unreachable
or failing with a 5xx, a key it refuses, too many failed sign-ins).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from promptpilot.settings import Settings

DEFAULT_DEV_KEY = "pp_dev_key"
OK, REFUSED, USAGE = 0, 1, 2


def out(message: str = "") -> None:
    """A line of the command's own output."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def err(message: str) -> None:
    """A line on stderr (errors and hints)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class CliError(Exception):
    """A failure with its exit code and the lines that say why (the first is the headline)."""

    def __init__(self, code: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.problems = code, message, problems or []

    def print(self) -> None:
        """`error: <message>`, then one line per problem."""
        err(f"error: {self.message}")
        for line in self.problems:
            err(f"  {line}")


def problem_lines(problems: Any) -> list[str]:
    """`/steps/0/model: unknown model ...` for each problem of an error envelope."""
    if not isinstance(problems, list):
        return []
    lines = []
    for problem in problems:
        if isinstance(problem, dict):
            lines.append(f"{problem.get('pointer') or '/'}: {problem.get('message', '')}")
    return lines


def api_error(response: httpx.Response) -> CliError:
    """The error envelope of a refused request as a CliError (raw text only if it has none)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = f"HTTP {response.status_code}: {response.text[:200]}"
    problems = problem_lines(error.get("problems")) if isinstance(error, dict) else []
    if problems and message.startswith("validation failed"):
        message = "validation failed"  # the problems follow, one per line
    usage = response.status_code in (401, 403, 429) or response.status_code >= 500
    return CliError(USAGE if usage else REFUSED, message, problems)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """`--url` and `--key` on every command that talks to the API."""
    parser.add_argument("--url", "--api", dest="url", default=None,
                        help="API base URL (default $PROMPTPILOT_URL, else the API setting's "
                        "host and port, http://127.0.0.1:8000)")
    parser.add_argument("--key", default=None, help="API key (default $PROMPTPILOT_API_KEY, "
                        "else PROMPTPILOT_API__DEV_API_KEY, else the dev key pp_dev_key)")


def base_url(settings: Settings, args: argparse.Namespace) -> str:
    """--url, else $PROMPTPILOT_URL, else where `promptpilot api` / `dev` listens."""
    if args.url or os.environ.get("PROMPTPILOT_URL"):
        return str(args.url or os.environ["PROMPTPILOT_URL"]).rstrip("/")
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    return f"http://{host}:{settings.api.port}"


def api_key(settings: Settings, args: argparse.Namespace) -> str:
    """--key, else $PROMPTPILOT_API_KEY, else the dev key `promptpilot dev` registers."""
    if args.key or os.environ.get("PROMPTPILOT_API_KEY"):
        return str(args.key or os.environ["PROMPTPILOT_API_KEY"])
    dev = settings.api.dev_api_key
    return dev.get_secret_value() if dev else DEFAULT_DEV_KEY


def segment(value: str) -> str:
    """A value quoted as one URL path segment (a slug with `/` stays one segment)."""
    return quote(value, safe="")


class Api:
    """The API as the CLI sees it: JSON in, JSON out, every failure a CliError."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202),
                   **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """Send one request; the status and JSON body when the status is in ``ok``."""
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(USAGE, f"cannot reach the API at {self.http.base_url}: "
                           f"{exc or type(exc).__name__} (is `promptpilot dev` or "
                           "`promptpilot api` running? set --url or PROMPTPILOT_URL)") from exc
        if response.status_code not in ok:
            raise api_error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise CliError(USAGE, f"the API answered {response.status_code} without JSON: "
                           f"{response.text[:200]}") from exc
        return response.status_code, body if isinstance(body, dict) else {}


@asynccontextmanager
async def connect(settings: Settings, args: argparse.Namespace) -> AsyncIterator[Api]:
    """An authenticated client for the API that --url / PROMPTPILOT_URL names."""
    headers = {"Authorization": f"Bearer {api_key(settings, args)}"}
    async with httpx.AsyncClient(base_url=base_url(settings, args), headers=headers,
                                 timeout=60) as http:
        yield Api(http)
