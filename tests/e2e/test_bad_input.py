"""Bad input gets a 422 whose body names the field; nothing half-written stays behind."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery

Edit = Callable[[dict[str, Any]], None]


def _set(path: list[str | int], value: Any) -> Edit:
    def edit(definition: dict[str, Any]) -> None:
        target: Any = definition
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return edit


def _drop(path: list[str | int]) -> Edit:
    def edit(definition: dict[str, Any]) -> None:
        target: Any = definition
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
    return edit


def _dup_step(definition: dict[str, Any]) -> None:
    definition["steps"][1]["id"] = "step1"


def _uninferable_model(definition: dict[str, Any]) -> None:
    del definition["steps"][0]["provider"]
    definition["steps"][0]["model"] = "mystery-7b"


def _dup_variable(definition: dict[str, Any]) -> None:
    definition["variables"].append(dict(definition["variables"][0]))


BAD_DEFINITIONS: list[tuple[str, Edit, str]] = [
    ("missing name", _drop(["name"]), "/name"),
    ("no steps", _set(["steps"], []), "/steps"),
    ("step without id", _drop(["steps", 0, "id"]), "/steps/0/id"),
    ("unknown step type", _set(["steps", 0, "type"], "prompt"), "/steps/0"),
    ("duplicate step id", _dup_step, "/steps/1/id"),
    ("mapping reads a later step", _set(["steps", 0, "inputMapping", "interests"],
                                        "outputs.step3.query"), "/steps/0/inputMapping/interests"),
    ("mapping with unknown root", _set(["steps", 1, "inputMapping", "query"], "env.HOME"),
     "/steps/1/inputMapping/query"),
    ("mapping reads undeclared input", _set(["steps", 0, "inputMapping", "interests"],
                                            "input.topics"), "/steps/0/inputMapping/interests"),
    ("unknown tool", _set(["steps", 1, "toolName"], "shell"), "/steps/1/toolName"),
    ("unknown provider", _set(["steps", 0, "provider"], "acme"), "/steps/0/provider"),
    ("uninferable model", _uninferable_model, "/steps/0/model"),
    ("invalid JSON Schema", _set(["steps", 0, "outputSchema"], {"type": "objekt"}),
     "/steps/0/outputSchema"),
    ("template does not parse", _set(["steps", 0, "promptUser"], "About {{ interests"),
     "/steps/0/promptUser"),
    ("template names an unmapped variable", _set(["steps", 0, "promptUser"], "About {{topic}}"),
     "/steps/0/promptUser"),
    ("bad JMESPath", _set(["steps", 2, "expression"], "feeds[?"), "/steps/2/expression"),
    ("temperature out of range", _set(["steps", 0, "temperature"], 7), "/steps/0/temperature"),
    ("zero attempts", _set(["steps", 0, "retryConfig"], {"maxAttempts": 0}),
     "/steps/0/retryConfig/maxAttempts"),
    ("max interval below initial", _set(["steps", 0, "retryConfig"],
                                        {"initialIntervalSeconds": 10,
                                         "maximumIntervalSeconds": 1}),
     "/steps/0/retryConfig"),
    ("bad slug", _set(["id"], "Feed Discovery!"), "/id"),
    ("default of the wrong type", _set(["variables", 1, "default"], 42),
     "/variables/1/default"),
    ("duplicate variable", _dup_variable, "/variables/2/name"),
    ("misspelt field", _set(["steps", 0, "promptUsr"], "x"), "/steps/0/promptUsr"),
    ("llm step without prompt", _drop(["steps", 0, "promptUser"]), "/steps/0/promptUser"),
    ("negative maxTokens", _set(["steps", 0, "maxTokens"], -1), "/steps/0/maxTokens"),
]


@pytest.mark.parametrize(("case", "edit", "where"), BAD_DEFINITIONS,
                         ids=[c[0] for c in BAD_DEFINITIONS])
async def test_bad_definition_is_refused_naming_the_field(
    service: Service, case: str, edit: Edit, where: str
) -> None:
    slug = unique_slug("bad")
    definition = copy.deepcopy(feed_discovery(slug))
    edit(definition)
    if case == "bad slug":
        slug = definition["id"]

    response = await service.http.post("/api/workflows", json=definition)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["success"] is False
    pointers = [p["pointer"] for p in body["error"]["problems"]]
    assert any(p == where or p.startswith(where + "/") for p in pointers), (case, pointers)
    assert where.split("/")[-1] in body["error"]["message"] or pointers
    # Nothing half-written: the workflow does not exist.
    if case != "bad slug":
        assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404


async def test_step_errors_name_the_step(service: Service) -> None:
    definition = feed_discovery(unique_slug("bad"))
    definition["steps"][1]["toolName"] = "shell"
    body = (await service.http.post("/api/workflows", json=definition)).json()
    problem = body["error"]["problems"][0]
    assert problem["stepId"] == "step2"
    assert problem["field"] == "toolName"
    assert "unknown tool 'shell'" in problem["message"]


BAD_INPUTS: list[tuple[str, Any, str]] = [
    ("required input missing", {"criteria": "x"}, "/input/interests"),
    ("wrong type", {"interests": 5}, "/input/interests"),
    ("unknown input", {"interests": "ai", "bogus": 1}, "/input/bogus"),
    ("input not an object", ["ai"], "/input"),
]


@pytest.mark.parametrize(("case", "run_input", "where"), BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
async def test_bad_run_input_is_refused_and_starts_nothing(
    service: Service, case: str, run_input: Any, where: str
) -> None:
    slug = unique_slug("input")
    await service.create_workflow(feed_discovery(slug))
    before = await service.store.count_rows()

    response = await service.http.post(f"/api/workflows/{slug}/run", json={"input": run_input})

    assert response.status_code == 422, response.text
    pointers = [p["pointer"] for p in response.json()["error"]["problems"]]
    assert where in pointers, (case, pointers)
    assert await service.store.count_rows() == before
    runs = (await service.http.get(f"/api/workflows/{slug}/runs")).json()["runs"]
    assert runs == []


async def test_body_that_is_not_json_is_refused(service: Service) -> None:
    response = await service.http.post("/api/workflows", content=b"{not json",
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_duplicate_slug_is_a_conflict(service: Service) -> None:
    slug = unique_slug("dup")
    await service.create_workflow(feed_discovery(slug))
    response = await service.http.post("/api/workflows", json=feed_discovery(slug))
    assert response.status_code == 409
    assert slug in response.json()["error"]["message"]


async def test_unknown_workflow_and_run_are_404(service: Service) -> None:
    assert (await service.http.get("/api/workflows/nope-nope")).status_code == 404
    missing = await service.http.get("/api/workflows/runs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert (await service.http.get("/api/workflows/runs/not-a-uuid")).status_code == 422


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Token pp_dev_test_key",
                                    "Bearer"])
async def test_missing_or_invalid_key_is_401(service: Service, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as anonymous:
        for method, path in (("GET", "/api/workflows"),
                             ("POST", "/api/workflows/feed-discovery/run"),
                             ("GET", "/api/workflows/runs/00000000-0000-0000-0000-000000000000")):
            response = await anonymous.request(method, path, json={"input": {}})
            assert response.status_code == 401, (header, path, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
