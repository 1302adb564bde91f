"""The door's body checks: size (413), JSON depth (422 with a pointer), lone surrogates and
NaN (422 with a pointer); nothing is written for a refused body and the lists stay readable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Service, unique_slug

HEADERS = {"Content-Type": "application/json"}


def nested(levels: int) -> Any:
    """``levels`` objects, one inside the other."""
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def passthrough(slug: str) -> dict[str, Any]:
    """One transform that hands the input `v` on: the run input reaches the worker as is."""
    return {"id": slug, "name": "pass it on",
            "steps": [{"id": "t1", "type": "transform", "inputMapping": {"v": "input.v"}}]}


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    return body


async def test_a_body_over_the_limit_is_413_by_content_length(service: Service) -> None:
    limit = service.settings.limits.max_request_bytes
    slug = unique_slug("big")
    await service.create_workflow(passthrough(slug))
    before = await service.store.count_rows()
    head, tail = b'{"input": {"v": "', b'"}}'
    at_limit = head + b"x" * (limit - len(head) - len(tail)) + tail
    # At the limit the body goes through the door (and the run input's own limit answers).
    response = await service.http.post(f"/api/workflows/{slug}/run", content=at_limit,
                                       headers=HEADERS)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "input_too_large"
    over = head + b"x" * (limit + 1 - len(head) - len(tail)) + tail
    response = await service.http.post(f"/api/workflows/{slug}/run", content=over,
                                       headers=HEADERS)
    body = assert_refused(response, 413, "request_too_large")
    assert f"{limit:,} bytes" in body["error"]["message"]
    assert await service.store.count_rows() == before


async def test_a_chunked_body_over_the_limit_is_413_once_counted(service: Service) -> None:
    limit = service.settings.limits.max_request_bytes
    slug = unique_slug("chunked")
    await service.create_workflow(passthrough(slug))
    before = await service.store.count_rows()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"input": {"v": "'
        for _ in range(limit // 65536 + 1):
            yield b"x" * 65536
        yield b'"}}'

    response = await service.http.post(f"/api/workflows/{slug}/run", content=chunks(),
                                       headers=HEADERS)
    assert_refused(response, 413, "request_too_large")
    assert await service.store.count_rows() == before


async def test_a_run_input_at_the_depth_limit_runs(service: Service) -> None:
    depth = service.settings.limits.max_json_depth
    slug = unique_slug("deep")
    await service.create_workflow(passthrough(slug))
    # The body is {"input": {"v": <nested>}}: two levels before the nested value.
    response = await service.run(slug, {"v": nested(depth - 2)})
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "completed"
    assert run["outputJson"] == {"v": nested(depth - 2)}
    deeper = await service.run(slug, {"v": nested(depth - 1)})
    assert_refused(deeper, 422, "json_too_deep")


@pytest.mark.parametrize("levels", [250, 300, 5000])
async def test_a_run_input_past_the_depth_limit_is_refused_with_a_pointer(
    service: Service, levels: int
) -> None:
    depth = service.settings.limits.max_json_depth
    slug = unique_slug("deep")
    await service.create_workflow(passthrough(slug))
    before = await service.store.count_rows()
    text = '{"input": {"v": ' + '{"a": ' * levels + '"x"' + "}" * levels + "}}"
    response = await service.http.post(f"/api/workflows/{slug}/run", content=text,
                                       headers=HEADERS)
    body = assert_refused(response, 422, "json_too_deep")
    # The first container past the limit: the body, `input` and `v` are levels 1-3.
    where = "/input/v" + "/a" * (depth - 2)
    assert body["error"]["problems"][0]["pointer"] == where
    assert str(depth) in body["error"]["message"]
    assert await service.store.count_rows() == before
    for path in ("/api/workflows/runs", f"/api/workflows/{slug}/runs"):
        assert (await service.http.get(path)).status_code == 200


async def test_a_deep_array_in_a_definition_is_refused_with_a_pointer(service: Service) -> None:
    depth = service.settings.limits.max_json_depth
    definition = passthrough(unique_slug("deep"))
    definition["steps"][0]["args"] = {"x": json.loads("[" * depth + "]" * depth)}
    response = await service.http.post("/api/workflows", json=definition)
    body = assert_refused(response, 422, "json_too_deep")
    assert body["error"]["problems"][0]["pointer"].startswith("/steps/0/args/x/0/0")


LONE_SURROGATES = [
    ("run input", "run", '{"input": {"v": "a\\ud800b"}}', "/input/v"),
    ("run input key", "run", '{"input": {"\\udfff": 1}}', "/input/\\udfff"),
    ("definition", "workflow",
     '{"id": "SLUG", "name": "n", "description": "\\ud800", "steps": '
     '[{"id": "t1", "type": "transform"}]}', "/description"),
    ("trigger", "trigger",
     '{"workflowSlug": "SLUG", "name": "t", "type": "manual", "input": {"v": ["\\udbff"]}}',
     "/input/v/0"),
]


@pytest.mark.parametrize(("case", "target", "text", "where"), LONE_SURROGATES,
                         ids=[c[0] for c in LONE_SURROGATES])
async def test_a_lone_surrogate_is_a_422_naming_the_pointer(
    service: Service, case: str, target: str, text: str, where: str
) -> None:
    slug = unique_slug("text")
    await service.create_workflow(passthrough(slug))
    before = await service.store.count_rows()
    path = {"run": f"/api/workflows/{slug}/run", "workflow": "/api/workflows",
            "trigger": "/api/triggers"}[target]
    response = await service.http.post(path, content=text.replace("SLUG", slug + "-2"
                                       if target == "workflow" else slug), headers=HEADERS)
    body = assert_refused(response, 422, "validation_error")
    assert body["error"]["problems"][0]["pointer"] == where
    assert "surrogate" in body["error"]["message"]
    assert await service.store.count_rows() == before
    assert (await service.http.get(f"/api/workflows/{slug}-2")).status_code == 404
    triggers = (await service.http.get("/api/triggers", params={"workflowSlug": slug})).json()
    assert triggers["triggers"] == []


async def test_a_surrogate_pair_is_text_and_half_of_one_is_not(service: Service) -> None:
    slug = unique_slug("text")
    await service.create_workflow(passthrough(slug))
    response = await service.http.post(f"/api/workflows/{slug}/run", headers=HEADERS,
                                       content='{"input": {"v": "\\ud83d\\ude00"}}')
    assert response.status_code == 200, response.text
    assert response.json()["run"]["outputJson"] == {"v": "\U0001f600"}
    response = await service.http.post(f"/api/workflows/{slug}/run", headers=HEADERS,
                                       content='{"input": {"v": "\\ude00\\ud83d"}}')
    assert_refused(response, 422, "validation_error")


async def test_infinity_in_a_run_input_is_not_a_json_number(service: Service) -> None:
    slug = unique_slug("nan")
    await service.create_workflow(passthrough(slug))
    before = await service.store.count_rows()
    response = await service.http.post(f"/api/workflows/{slug}/run", headers=HEADERS,
                                       content='{"input": {"v": [1, -Infinity]}}')
    body = assert_refused(response, 422, "validation_error")
    assert body["error"]["problems"][0]["pointer"] == "/input/v/1"
    assert "-Infinity" in body["error"]["message"]
    # A JSON number, but past what a float holds: Python reads it as Infinity.
    response = await service.http.post(f"/api/workflows/{slug}/run", headers=HEADERS,
                                       content='{"input": {"v": {"big": 1e400}}}')
    body = assert_refused(response, 422, "validation_error")
    assert body["error"]["problems"][0]["pointer"] == "/input/v/big"
    assert await service.store.count_rows() == before
