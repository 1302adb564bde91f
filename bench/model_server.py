"""A tiny OpenAI-compatible model server for the LLM pipeline benchmark (B4, scale pass).

``python -m bench.model_server`` prints its port and serves ``POST /<lane>/v1/chat/completions``
until stdin closes or SIGTERM. Lanes: ``fast`` answers at once, ``slow`` after
``--latency`` seconds (default 1). A request with a ``json_schema`` response format gets a JSON
object answering the bench's query schema; others get one sentence. Both with usage figures;
asked to stream, the answer comes as Chat Completions stream chunks.
It runs in its own process so its CPU is not the worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from aiohttp import web

QUERY = {"query": "durable execution for llm pipelines", "angle": "cost"}
_TEXT = "Durable execution keeps every step's result, so a crash costs no model call."


def _content(body: dict[str, object]) -> str:
    return json.dumps(QUERY) if isinstance(body.get("response_format"), dict) else _TEXT


def _chunks(body: dict[str, object]) -> bytes:
    """The answer as a Chat Completions stream: a few words a chunk, usage last."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.get("model", "bench")}
    words = _content(body).split(" ")
    pieces = [" ".join(words[i:i + 4]) + (" " if i + 4 < len(words) else "")
              for i in range(0, len(words), 4)]
    events = [{**head, "choices": [{"index": 0, "delta": {"content": piece},
                                    "finish_reason": None}]} for piece in pieces]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**head, "choices": [], "usage": {"prompt_tokens": 40,
                                                    "completion_tokens": 12,
                                                    "total_tokens": 52}})
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _answer(body: dict[str, object]) -> bytes:
    content = _content(body)
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "bench"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }).encode()


def app(latency: float) -> web.Application:
    """The server's routes."""
    served = {"n": 0}

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        if request.match_info["lane"] == "slow":
            await asyncio.sleep(latency)
        served["n"] += 1
        if body.get("stream"):
            return web.Response(body=_chunks(body), content_type="text/event-stream")
        return web.Response(body=_answer(body), content_type="application/json")

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(served)

    application = web.Application()
    application.router.add_post("/{lane}/v1/chat/completions", complete)
    application.router.add_get("/count", count)
    return application


async def serve(latency: float) -> None:
    """Serve on a free port until SIGTERM or stdin's end."""
    runner = web.AppRunner(app(latency), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.model_server")
    parser.add_argument("--latency", type=float, default=1.0)
    asyncio.run(serve(parser.parse_args().latency))
