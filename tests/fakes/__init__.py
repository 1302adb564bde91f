"""Test fakes that speak real protocols: ``llm_server.FakeLlmServer`` for OpenAI and Anthropic."""

from tests.fakes.llm_server import (
    FakeLlmServer,
    RecordedRequest,
    Reply,
    hang,
    malformed_json,
    ok,
    overloaded_529,
    rate_limited,
    server_error,
    status,
)

__all__ = [
    "FakeLlmServer", "RecordedRequest", "Reply", "hang", "malformed_json", "ok",
    "overloaded_529", "rate_limited", "server_error", "status",
]
