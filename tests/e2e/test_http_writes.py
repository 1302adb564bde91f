"""http_request writes are not repeated behind the user's back: a POST that met a 5xx may have
been applied, so it is retried only when the step says so, and then with an Idempotency-Key
that is the same on every attempt of that step and different for every other step and run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first request of each path, 201 after; records every request."""

    seen: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.lock:
            first = all(path != self.path for path, _ in self.seen)
            self.seen.append((self.path, self.headers.get("Idempotency-Key")))
        raw = json.dumps({"ok": not first}).encode()
        self.send_response(503 if first else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_POST = _answer
    do_GET = _answer


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings, allowed to call the local target."""
    settings.tools.http_allow_private = True
    return settings


def _post(step_id: str, url: str, **args: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "tool", "toolName": "http_request",
            "retryConfig": {"maxAttempts": 3, "initialIntervalSeconds": 0.1},
            "args": {"url": url, "method": "POST", "json": {"order": 1}, **args}}


def _requests(path: str) -> list[str | None]:
    with _Flaky.lock:
        return [key for seen, key in _Flaky.seen if seen == path]


async def test_a_post_that_met_a_5xx_is_not_sent_again(service: Service, target: str) -> None:
    slug = unique_slug("post-once")
    path = f"/orders/{slug}"
    await service.create_workflow({"id": slug, "name": "one POST",
                                   "steps": [_post("order", target + path)]})

    run = (await service.run(slug, {})).json()["run"]

    assert run["status"] == "failed"
    assert len(_requests(path)) == 1  # retried, it could have placed the order twice
    error = run["steps"][0]["error"]
    assert "503" in error["message"]
    assert "may have been applied" in error["message"]
    assert error["retryable"] is False


async def test_retry_writes_repeats_a_post_with_one_idempotency_key(
        service: Service, target: str) -> None:
    slug = unique_slug("post-retried")
    first, second = f"/orders/{slug}/a", f"/orders/{slug}/b"
    await service.create_workflow({"id": slug, "name": "two POSTs, retried", "steps": [
        _post("a", target + first, retryWrites=True),
        _post("b", target + second, retryWrites=True)]})

    runs = [(await service.run(slug, {})).json()["run"] for _ in range(2)]

    assert [r["status"] for r in runs] == ["completed", "completed"]
    # Run 1 meets a 503 on each step and retries it; run 2's first requests succeed.
    keys_a, keys_b = _requests(first), _requests(second)
    assert len(keys_a) == len(keys_b) == 3
    for keys in (keys_a, keys_b):
        assert None not in keys
        assert keys[0] == keys[1]  # the retry carries the same key: the target can dedupe
        assert keys[2] != keys[0]  # another run's step is another request
    assert not set(keys_a) & set(keys_b)  # and so is another step


async def test_a_preview_does_not_send_a_post_unless_it_says_so(
        service: Service, target: str) -> None:
    slug = unique_slug("preview-post")
    path, read = f"/orders/{slug}", f"/catalog/{slug}"
    definition = {"id": slug, "name": "a read, then a POST", "steps": [
        {"id": "look", "type": "tool", "toolName": "http_request",
         "args": {"url": target + read}},
        _post("order", target + path),
        {"id": "after", "type": "transform", "inputMapping": {"placed": "outputs.order"}}]}

    dry = await service.http.post("/api/workflows/preview", json={"definition": definition})
    assert dry.status_code == 200, dry.text
    steps = {s["stepId"]: s for s in dry.json()["preview"]["steps"]}
    assert _requests(path) == []  # nothing was posted
    assert _requests(read)  # a GET is no side effect: it ran (503, then retried)
    assert steps["order"]["status"] == "skipped"
    assert "POST is a side effect" in steps["order"]["rendered"]["skipReason"]
    assert steps["after"]["output"] == {"placed": None}

    real = await service.http.post("/api/workflows/preview", json={
        "definition": definition, "allowSideEffects": True})
    assert real.status_code == 200, real.text
    assert len(_requests(path)) == 1
