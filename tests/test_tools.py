"""Tools run through the real tool_call activity, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools import ToolActivities, ToolContext, addresses, known_tools, tool, tool_catalog
from activities.tools.addresses import forbidden_reason
from activities.tools.web_search import WebSearchArgs
from promptpilot.settings import Settings, ToolSettings
from schema.activities import ToolRequest, ToolResult
from schema.errors import ErrorType

MakeTools = Callable[..., ToolActivities]


class Handler(BaseHTTPRequestHandler):
    """Routes the tests need: JSON, statuses, a big body, a redirect, echo and two search APIs."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        kind = "text/plain" if isinstance(body, bytes) else "application/json"
        for name, value in {"Content-Type": kind, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/json":
            self._send(200, {"hello": "world"})
        elif url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            self._send(code, f"status {code}".encode(), {"Retry-After": "7"})
        elif url.path == "/big":
            self._send(200, b"x" * 5000)
        elif url.path == "/redirect":
            self._send(302, b"", {"Location": "http://127.0.0.1:1/json"})
        elif url.path == "/hop1":
            self._send(301, b"", {"Location": "/hop2"})
        elif url.path == "/hop2":
            self._send(302, b"", {"Location": "/json"})
        elif url.path == "/search" and query.get("format") == "json":
            rows = [{"title": f"{query['q']} {n}", "url": f"https://s.test/{n}",
                     "content": f"about {query['q']}"} for n in range(30)]
            self._send(200, {"query": query["q"], "results": rows})
        elif url.path == "/brave" and self.headers["X-Subscription-Token"] == "test-key":
            rows = [{"title": "B", "url": "https://b.test/", "description": query["q"]}]
            self._send(200, {"web": {"results": rows * int(query["count"])}})
        else:
            self._send(404 if url.path != "/brave" else 401, b"no")

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self._send(201, {"got": body, "path": self.path, "host": self.headers["Host"]})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
async def make_tools() -> AsyncIterator[MakeTools]:
    made: list[ToolActivities] = []

    def make(transport: httpx.AsyncBaseTransport | None = None, **tools: Any) -> ToolActivities:
        settings = Settings(_env_file=None, tools=ToolSettings(**tools))
        made.append(ToolActivities(settings, transport=transport))
        return made[-1]

    yield make
    for acts in made:
        await acts.aclose()


async def call(acts: ToolActivities, name: str, args: dict[str, Any]) -> ToolResult:
    request = ToolRequest(run_id="run-1", step_id="step-1", tool_name=name, args=args)
    result: ToolResult = await ActivityEnvironment().run(acts.call, request)
    return result


async def failure(acts: ToolActivities, name: str, args: dict[str, Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await call(acts, name, args)
    return info.value


def no_network() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler), sent


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
    ("192.168.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff0e::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("240.0.0.1", "private"), ("100.64.0.1", "non-global"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
    ("2002:a00:1::", "private"), ("fc00::1", "private"),
    ("8.8.8.8", None), ("::ffff:8.8.8.8", None), ("2606:4700::1111", None),
    # Python 3.11's is_global calls these global; the special-purpose registry does not.
    ("192.0.0.8", "special-purpose (non-global)"), ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link-local"), ("198.18.0.1", "private"),
    ("fd00:ec2::254", "private"), ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::808:808", None),
])
def test_address_classifier(address: str, reason: str | None) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


async def test_loopback_refused_by_default(make_tools: MakeTools, server: str) -> None:
    err = await failure(make_tools(), "http_request", {"url": f"{server}/json"})
    assert err.type == ErrorType.TOOL_FORBIDDEN_TARGET
    assert err.non_retryable
    assert "'127.0.0.1'" in err.message
    assert "loopback" in err.message
    assert "PROMPTPILOT_TOOLS__HTTP_ALLOW_PRIVATE" in err.message


async def test_allowed_when_private_enabled(make_tools: MakeTools, server: str) -> None:
    result = await call(make_tools(http_allow_private=True), "http_request",
                        {"url": f"{server}/json", "method": "get"})
    assert result.output["status"] == 200
    assert result.output["body"] == {"hello": "world"}
    assert result.output["headers"]["content-type"] == "application/json"
    assert result.output["truncated"] is False
    assert result.trace.tool_name == "http_request"
    assert result.trace.result == result.output
    assert result.trace.error is None
    assert result.trace.duration_ms > 0
    assert result.attempt == 1


async def test_post_json_params_and_redacted_trace(make_tools: MakeTools, server: str) -> None:
    args = {"url": f"{server}/echo", "method": "POST", "json": {"a": [1, 2]},
            "params": {"q": "x y"}, "headers": {"Authorization": "Bearer s3cret"}}
    result = await call(make_tools(http_allow_private=True), "http_request", args)
    assert result.output["status"] == 201
    assert result.output["body"]["got"] == {"a": [1, 2]}
    assert result.output["body"]["path"] == "/echo?q=x+y"
    assert result.trace.args["headers"] == {"Authorization": "***"}


async def test_hostname_resolving_to_loopback_refused(make_tools: MakeTools, server: str) -> None:
    url = server.replace("127.0.0.1", "localhost") + "/json"
    err = await failure(make_tools(), "http_request", {"url": url})
    assert err.type == ErrorType.TOOL_FORBIDDEN_TARGET
    assert err.non_retryable
    assert "'localhost'" in err.message
    assert "resolves to" in err.message


@pytest.mark.parametrize("url", [
    "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/",
    "http://[::ffff:127.0.0.1]/", "https://0.0.0.0/", "http://2130706433/", "http://[fe80::1]/",
    "http://192.0.0.8/", "http://[fd00:ec2::254]/latest/meta-data/", "http://0x7f.1/",
    "http://127.1/", "http://[64:ff9b::a9fe:a9fe]/latest/", "http://[::ffff:a9fe:a9fe]/",
])
async def test_private_targets_refused_without_connecting(make_tools: MakeTools, url: str) -> None:
    transport, sent = no_network()
    err = await failure(make_tools(transport), "http_request", {"url": url})
    assert err.type == ErrorType.TOOL_FORBIDDEN_TARGET
    assert err.non_retryable
    assert sent == []


async def test_public_host_is_pinned_to_vetted_address(
    make_tools: MakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr(addresses, "_resolve", resolve)
    transport, sent = no_network()
    result = await call(make_tools(transport), "http_request", {"url": "https://api.test/x"})
    assert result.output["body"] == {"ok": True}
    assert sent[0].url.host == "93.184.215.14"
    assert sent[0].headers["Host"] == "api.test"
    assert sent[0].extensions["sni_hostname"] == "api.test"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com"])
async def test_non_http_scheme_is_bad_input(make_tools: MakeTools, url: str) -> None:
    err = await failure(make_tools(http_allow_private=True), "http_request", {"url": url})
    assert err.type == ErrorType.TOOL_BAD_INPUT
    assert err.non_retryable
    assert "url:" in err.message


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True),
                                                   (404, False), (400, False)])
async def test_status_errors(make_tools: MakeTools, server: str, status: int,
                             retryable: bool) -> None:
    acts = make_tools(http_allow_private=True)
    err = await failure(acts, "http_request", {"url": f"{server}/status/{status}"})
    assert err.type == ErrorType.TOOL_FAILED
    assert err.non_retryable is not retryable
    assert f"HTTP {status}" in err.message
    assert err.next_retry_delay == (timedelta(seconds=7) if retryable else None)
    assert err.details[-1]["trace"]["error"] == err.message


async def test_connection_refused_is_retryable(make_tools: MakeTools) -> None:
    acts = make_tools(http_allow_private=True)
    err = await failure(acts, "http_request", {"url": "http://127.0.0.1:1/", "timeoutSeconds": 2})
    assert err.type == ErrorType.TOOL_FAILED
    assert not err.non_retryable


async def test_oversize_body_truncated(make_tools: MakeTools, server: str) -> None:
    acts = make_tools(http_allow_private=True, http_max_response_bytes=1000)
    result = await call(acts, "http_request", {"url": f"{server}/big"})
    assert result.output["truncated"] is True
    assert result.output["body"] == "x" * 1000


async def test_octal_address_is_refused_without_connecting(make_tools: MakeTools) -> None:
    transport, sent = no_network()
    err = await failure(make_tools(transport), "http_request", {"url": "http://0177.0.0.1/"})
    assert err.type == ErrorType.TOOL_BAD_INPUT
    assert "url" in err.message
    assert sent == []


async def test_redirect_chain_followed_on_the_local_server(make_tools: MakeTools,
                                                           server: str) -> None:
    result = await call(make_tools(http_allow_private=True), "http_request",
                        {"url": f"{server}/hop1"})
    assert result.output["status"] == 200
    assert result.output["body"] == {"hello": "world"}


async def test_local_server_refused_without_allow_private_even_through_a_chain(
        make_tools: MakeTools, server: str) -> None:
    err = await failure(make_tools(), "http_request", {"url": f"{server}/hop1"})
    assert err.type == ErrorType.TOOL_FORBIDDEN_TARGET


def _public(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> None:
    async def resolve(host: str, port: int) -> list[addresses.IPAddress]:
        return [ipaddress.ip_address(names[host])]

    monkeypatch.setattr(addresses, "_resolve", resolve)


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:8080/admin", "http://[::1]/", "http://2130706433/",
    "http://169.254.169.254/latest/meta-data/", "http://rebound.test/", "http://192.0.0.8/",
])
async def test_redirect_to_a_non_global_address_is_refused(
        make_tools: MakeTools, monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    _public(monkeypatch, {"api.test": "93.184.215.14", "hop.test": "93.184.215.15",
                          "rebound.test": "10.0.0.7"})
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.host == "93.184.215.14":
            return httpx.Response(302, headers={"Location": "http://hop.test/next"})
        return httpx.Response(307, headers={"Location": location})

    err = await failure(make_tools(httpx.MockTransport(handler)), "http_request",
                        {"url": "https://api.test/start"})
    assert err.type == ErrorType.TOOL_FORBIDDEN_TARGET
    assert err.non_retryable
    assert "a redirect led there" in err.message
    assert [r.url.host for r in sent] == ["93.184.215.14", "93.184.215.15"]  # never the third


async def test_each_hop_is_pinned_and_another_origin_gets_no_credentials(
        make_tools: MakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    _public(monkeypatch, {"api.test": "93.184.215.14", "other.test": "93.184.215.16"})
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/start":
            return httpx.Response(303, headers={"Location": "https://other.test/done?x=1"})
        return httpx.Response(200, json={"ok": True})

    result = await call(make_tools(httpx.MockTransport(handler)), "http_request", {
        "url": "https://api.test/start", "method": "POST", "json": {"a": 1},
        "headers": {"Authorization": "Bearer secret", "X-Trace": "t"}})
    assert result.output["body"] == {"ok": True}
    final = sent[1]
    assert (final.method, final.url.host, final.headers["Host"]) == (
        "GET", "93.184.215.16", "other.test")
    assert final.extensions["sni_hostname"] == "other.test"
    assert "authorization" not in final.headers
    assert final.headers["X-Trace"] == "t"


async def test_redirect_returned_not_followed(make_tools: MakeTools, server: str) -> None:
    acts = make_tools(http_allow_private=True, http_max_redirects=0)
    result = await call(acts, "http_request", {"url": f"{server}/redirect"})
    assert result.output["status"] == 302
    assert result.output["headers"]["location"] == "http://127.0.0.1:1/json"


async def test_web_search_not_configured(make_tools: MakeTools) -> None:
    err = await failure(make_tools(), "web_search", {"query": "temporal"})
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED
    assert err.non_retryable
    assert "PROMPTPILOT_TOOLS__WEB_SEARCH_BACKEND" in err.message


async def test_web_search_offline_is_deterministic(make_tools: MakeTools) -> None:
    acts = make_tools(web_search_backend="offline")
    first = await call(acts, "web_search", {"query": "Durable Workflows", "limit": 3})
    again = await call(acts, "web_search", {"query": "Durable Workflows", "limit": 3})
    other = await call(acts, "web_search", {"query": "llm costs"})
    assert first.output == again.output
    assert first.output["query"] == "Durable Workflows"
    results = first.output["results"]
    assert len(results) == 3
    assert len(other.output["results"]) == 5
    assert all(r["source"] == "offline" for r in results)
    assert all(r["url"].startswith("https://example.com/offline/") for r in results)
    assert "durable" in results[0]["snippet"]
    assert "workflows" in results[1]["title"]
    assert other.output["results"][0]["url"] != results[0]["url"]


async def test_web_search_searxng(make_tools: MakeTools, server: str) -> None:
    acts = make_tools(web_search_backend="searxng", web_search_url=server + "/")
    result = await call(acts, "web_search", {"query": "temporal", "limit": 4})
    assert len(result.output["results"]) == 4
    assert result.output["results"][0] == {"title": "temporal 0", "url": "https://s.test/0",
                                           "snippet": "about temporal", "source": "searxng"}


async def test_web_search_brave(make_tools: MakeTools, server: str) -> None:
    acts = make_tools(web_search_backend="brave", web_search_url=f"{server}/brave",
                      web_search_api_key=SecretStr("test-key"))
    result = await call(acts, "web_search", {"query": "q1", "limit": 2})
    assert result.output["results"] == [{"title": "B", "url": "https://b.test/",
                                         "snippet": "q1", "source": "brave"}] * 2
    err = await failure(make_tools(web_search_backend="brave"), "web_search", {"query": "q"})
    assert err.type == ErrorType.TOOL_NOT_CONFIGURED
    assert "PROMPTPILOT_TOOLS__WEB_SEARCH_API_KEY" in err.message


def test_registry_and_catalog() -> None:
    assert {"http_request", "web_search"} <= known_tools()
    catalog = {entry["name"]: entry for entry in tool_catalog()}
    http_props = catalog["http_request"]["inputSchema"]["properties"]
    assert {"url", "method", "headers", "params", "json", "timeoutSeconds"} <= set(http_props)
    search_schema = catalog["web_search"]["inputSchema"]
    assert search_schema["required"] == ["query"]
    assert search_schema["properties"]["limit"]["maximum"] == 20
    assert all(entry["description"] for entry in catalog.values())

    async def again(args: WebSearchArgs, ctx: ToolContext) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        tool("web_search", description="again")(again)


async def test_bad_args_name_the_fields(make_tools: MakeTools) -> None:
    acts = make_tools(web_search_backend="offline")
    err = await failure(acts, "web_search", {"query": "  ", "limit": 50, "extra": 1})
    assert err.type == ErrorType.TOOL_BAD_INPUT
    assert err.non_retryable
    assert "query:" in err.message
    assert "limit:" in err.message
    assert "extra:" in err.message
    assert {p["field"] for p in err.details[0]["fields"]} == {"query", "limit", "extra"}


async def test_unknown_tool(make_tools: MakeTools) -> None:
    err = await failure(make_tools(), "nope", {})
    assert err.type == ErrorType.UNKNOWN_TOOL
    assert err.non_retryable
    assert "'nope'" in err.message
    assert "web_search" in err.message
