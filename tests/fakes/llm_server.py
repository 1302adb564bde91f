"""A real local HTTP server speaking just enough OpenAI and Anthropic for their SDKs.

Endpoints: ``POST /v1/chat/completions`` (OpenAI) and ``POST /v1/messages`` (Anthropic).
Point ``OpenAISettings.base_url`` at ``server.openai_base_url`` (ends in ``/v1``) and
``AnthropicSettings.base_url`` at ``server.anthropic_base_url`` (the root)::

    with FakeLlmServer() as server:
        server.enqueue(rate_limited(retry_after=2), ok(content='{"a": 1}', tokens_in=10))
        ...                                    # each request takes the next scripted reply
        assert server.count("/v1/chat/completions") == 2
        server.requests[0].body["messages"]    # every request is recorded
        server.reset()                         # clear script and records between tests

Scripted replies (FIFO, shared by both endpoints, rendered in the endpoint's own format):
``ok(content=None, tokens_in=None, tokens_out=None, cached=0, model=None)``,
``rate_limited(retry_after=None, retry_after_ms=None)``, ``server_error(status=500)``,
``overloaded_529()``, ``status(code, message)``, ``malformed_json()``, ``hang(seconds)``.
With the queue empty, or for ``ok()`` without content, the answer is generated: a JSON value
satisfying the requested schema (OpenAI ``response_format`` json_schema, or the schema the
Anthropic provider puts in its system prompt), else ``"echo: <user prompt>"``. Token counts
default to ceil(chars / 4). Recorded headers have their key values redacted. A request asking
to stream (``"stream": true``) gets the same answer as server-sent events in the API's own
stream format (chunks, tool-call fragments, usage), as the SDKs' streaming calls read them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from activities.providers.anthropic_provider import SCHEMA_INSTRUCTION
from activities.providers.offline import estimate_tokens, example_for_schema, keywords

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
_SECRET_HEADERS = frozenset({"authorization", "x-api-key"})


@dataclass
class Reply:
    """One scripted reply: ``kind`` is ok, error, malformed or hang."""

    kind: str = "ok"
    status: int = 200
    content: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached: int = 0
    cache_written: int = 0
    model: str | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None
    """Tool calls the model makes (OpenAI ``tool_calls``, Anthropic ``tool_use`` blocks)."""
    chunk_delay: float = 0.0
    """Asked to stream, the pause before each chunk after the first."""
    cut_after: int | None = None
    """Asked to stream, drop the connection after this many chunks."""


@dataclass
class RecordedRequest:
    """What a client sent: path, parsed JSON body and headers (keys redacted)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    """When the request arrived (monotonic seconds), for rate assertions."""


def ok(content: str | None = None, *, tokens_in: int | None = None,
       tokens_out: int | None = None, cached: int = 0, cache_written: int = 0,
       model: str | None = None, chunk_delay: float = 0.0,
       cut_after: int | None = None, wait: float = 0.0) -> Reply:
    """A successful answer; ``content=None`` generates one from the request. ``cached`` and
    ``cache_written`` (Anthropic only) are the part of ``tokens_in`` read from or written to
    the prompt cache; ``wait`` seconds pass before the answer starts. Asked to stream, the
    answer goes out in chunks of up to three words, ``chunk_delay`` seconds apart;
    ``cut_after`` drops the connection after that many (a long answer in bigger chunks)."""
    return Reply(content=content, tokens_in=tokens_in, tokens_out=tokens_out, cached=cached,
                 cache_written=cache_written, model=model, chunk_delay=chunk_delay,
                 cut_after=cut_after, seconds=wait)


def tool_calls(calls: list[tuple[str, dict[str, Any]]], content: str = "",
               *, tokens_in: int | None = None, tokens_out: int | None = None,
               chunk_delay: float = 0.0, wait: float = 0.0) -> Reply:
    """The model calls these tools, e.g. ``tool_calls([("web_search", {"query": "x"})])``;
    call ids are ``call_0``, ``call_1``… (OpenAI) or ``toolu_0``… (Anthropic). Streamed,
    each call's arguments arrive in two fragments."""
    return Reply(content=content, tool_calls=list(calls), tokens_in=tokens_in,
                 tokens_out=tokens_out or 7, chunk_delay=chunk_delay, seconds=wait)


def status(code: int, message: str = "scripted error") -> Reply:
    """An error answer with this HTTP status, in the API's error format."""
    return Reply(kind="error", status=code, message=message)


def rate_limited(retry_after: float | str | None = None,
                 retry_after_ms: float | None = None) -> Reply:
    """429, optionally with ``Retry-After`` (seconds or HTTP date) and ``retry-after-ms``."""
    reply = status(429, "rate limited")
    if retry_after is not None:
        reply.headers["retry-after"] = str(retry_after)
    if retry_after_ms is not None:
        reply.headers["retry-after-ms"] = str(retry_after_ms)
    return reply


def server_error(code: int = 500) -> Reply:
    """A 5xx answer."""
    return status(code, "internal server error")


def overloaded_529() -> Reply:
    """Anthropic's 529 overloaded."""
    return status(529, "Overloaded")


def malformed_json() -> Reply:
    """HTTP 200 labelled application/json whose body is not JSON."""
    return Reply(kind="malformed")


def hang(seconds: float) -> Reply:
    """Wait ``seconds`` before answering normally, to trigger client timeouts."""
    return Reply(kind="hang", seconds=seconds)


def _user_text(body: dict[str, Any]) -> str:
    texts = []
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(part.get("text", "")) for part in content)
            texts.append(str(content))
    return "\n".join(texts)


def _requested_schema(path: str, body: dict[str, Any]) -> Any:
    if path == OPENAI_PATH:
        fmt = body.get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" \
            else None
    system = body.get("system")
    if isinstance(system, str) and SCHEMA_INSTRUCTION in system:
        tail = system.split(SCHEMA_INSTRUCTION, 1)[1]
        return json.JSONDecoder().raw_decode(tail)[0]
    return None


def _render_ok(path: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    prompt = _user_text(body)
    content = reply.content
    if content is None:
        schema = _requested_schema(path, body)
        content = (json.dumps(example_for_schema(schema, keywords(prompt)))
                   if schema is not None else f"echo: {prompt}")
    tokens_in = reply.tokens_in if reply.tokens_in is not None else estimate_tokens(prompt)
    tokens_out = reply.tokens_out if reply.tokens_out is not None else estimate_tokens(content)
    model = reply.model or str(body.get("model", "fake"))
    if reply.tool_calls is not None:
        return _render_tool_calls(path, model, reply, tokens_in, tokens_out)
    if path == OPENAI_PATH:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out,
                      "prompt_tokens_details": {"cached_tokens": reply.cached}},
        }
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": content}], "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in - reply.cached - reply.cache_written,
                  "output_tokens": tokens_out, "cache_read_input_tokens": reply.cached,
                  "cache_creation_input_tokens": reply.cache_written},
    }


def _render_tool_calls(path: str, model: str, reply: Reply, tokens_in: int,
                       tokens_out: int) -> dict[str, Any]:
    calls = reply.tool_calls or []
    if path == OPENAI_PATH:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": reply.content or None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function",
                     "function": {"name": name, "arguments": json.dumps(args)}}
                    for i, (name, args) in enumerate(calls)]}}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out},
        }
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.content}] \
        if reply.content else []
    blocks += [{"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
               for i, (name, args) in enumerate(calls)]
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}


STREAM_CHUNKS = 400
"""A long answer streams in at most about this many chunks (a 5 MB one in 3-word chunks
would be a million events for the SDK to parse)."""


def _pieces(text: str) -> list[str]:
    """Text in chunks of three words or more (whitespace kept), as a provider streams it."""
    words = re.findall(r"\s*\S+\s*|\s+", text)
    size = max(3, -(-len(words) // STREAM_CHUNKS))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [part for part in (text[:middle], text[middle:]) if part]


def _openai_chunks(answer: dict[str, Any], body: dict[str, Any]) -> list[tuple[str, Any]]:
    """A chat completion as Chat Completions stream chunks (``data:`` only), then [DONE]."""
    message = answer["choices"][0]["message"]
    head = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[str, Any]:
        return "", {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _pieces(message.get("content") or "")]
    for index, call in enumerate(message.get("tool_calls") or []):
        first, *rest = _halves(call["function"]["arguments"]) or [""]
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"],
                                                          "arguments": first}}]}))
        chunks += [chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
                   for part in rest]
    chunks.append(chunk({}, answer["choices"][0]["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(("", {**head, "choices": [], "usage": answer["usage"]}))
    return [*chunks, ("", "[DONE]")]


def _anthropic_events(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    """A message as Messages stream events."""
    usage = answer["usage"]
    start = {**answer, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, Any]] = [("message_start", {"type": "message_start",
                                                        "message": start})]
    for index, block in enumerate(answer["content"]):
        if block["type"] == "text":
            opened: dict[str, Any] = {"type": "text", "text": ""}
            deltas: list[dict[str, Any]] = [
                {"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            opened = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": part}
                      for part in _halves(json.dumps(block["input"]))]
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": opened}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": delta}) for delta in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": answer["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}}))
    return [*events, ("message_stop", {"type": "message_stop"})]


def _render_error(path: str, reply: Reply) -> dict[str, Any]:
    if path == OPENAI_PATH:
        return {"error": {"message": reply.message, "type": "fake_error", "code": reply.status}}
    return {"type": "error", "error": {"type": "fake_error", "message": reply.message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw or b"{}")
        headers = {k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
                   for k, v in self.headers.items()}
        fake = self.server.fake
        fake.record(RecordedRequest(self.path, body, headers))
        if self.path not in (OPENAI_PATH, ANTHROPIC_PATH):
            self._send(404, json.dumps({"error": {"message": "no such route"}}).encode())
            return
        if fake.refuses_streams and (body.get("stream") or "stream_options" in body):
            self._send(400, json.dumps({"error": {"message": "Unrecognized request argument "
                                                  "supplied: stream_options"}}).encode())
            return
        reply = fake.next_reply(self.path)
        if reply.seconds:  # a hang, or an answer that waits before it starts
            time.sleep(reply.seconds)
        if reply.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-fake", "choices": [ this is not json')
        elif reply.kind == "error":
            payload = _render_error(self.path, reply)
            self._send(reply.status, json.dumps(payload).encode(), reply.headers)
        elif body.get("stream"):
            answer = _render_ok(self.path, body, reply)
            events = (_openai_chunks(answer, body) if self.path == OPENAI_PATH
                      else _anthropic_events(answer))
            self._stream(events, reply)
        else:
            self._send(200, json.dumps(_render_ok(self.path, body, reply)).encode())

    def _stream(self, events: list[tuple[str, Any]], reply: Reply) -> None:
        """Server-sent events, one write each, then the connection closes."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            for number, (name, data) in enumerate(events):
                if reply.cut_after is not None and number >= reply.cut_after:
                    return
                if number > 1 and reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                text = data if isinstance(data, str) else json.dumps(data)
                self.wfile.write((f"event: {name}\n" if name else "").encode()
                                 + f"data: {text}\n\n".encode())
                self.wfile.flush()
                if number == 1:
                    self.server.fake.first_chunks.append(time.monotonic())
        except OSError:
            pass  # the client gave up

    def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeLlmServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and disconnect are expected


class FakeLlmServer:
    """The scriptable fake on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.refuses_streams = False
        """Answer a streamed request 400, as servers that cannot stream do."""
        self.first_chunks: list[float] = []
        """When each streamed answer's first chunk after the opening one was written
        (monotonic seconds)."""
        self._script: deque[Reply] = deque()
        self._by_path: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for ``AsyncOpenAI`` (with ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for ``AsyncAnthropic`` (the root; the SDK adds ``/v1``)."""
        return self.url

    def start(self) -> FakeLlmServer:
        """Listen and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-llm-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLlmServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Append scripted replies; each request consumes one, oldest first."""
        with self._lock:
            self._script.extend(replies)

    def enqueue_at(self, path: str, *replies: Reply) -> None:
        """Scripted replies for requests to ``path`` only (e.g. one provider), before any
        ``enqueue``d for all paths."""
        with self._lock:
            self._by_path.setdefault(path, deque()).extend(replies)

    def next_reply(self, path: str = "") -> Reply:
        """The next scripted reply for ``path``, else the next for any path, else ``ok()``."""
        with self._lock:
            own = self._by_path.get(path)
            if own:
                return own.popleft()
            return self._script.popleft() if self._script else ok()

    def record(self, request: RecordedRequest) -> None:
        """Keep a request for later assertions."""
        with self._lock:
            self.requests.append(request)

    def count(self, path: str | None = None) -> int:
        """How many requests arrived (at ``path`` when given)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._by_path.clear()
            self.requests.clear()
            self.first_chunks.clear()
            self.refuses_streams = False
