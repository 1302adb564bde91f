"""Definitions in git: `promptpilot workflows apply -f` and `workflows export`, against the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli_support import cli_env, promptpilot
from tests.conftest import DEV_KEY, PROD_KEY, Service, unique_slug


def _transform(slug: str, expression: str = "{x: `1`}") -> dict[str, Any]:
    return {"id": slug, "name": f"{slug} workflow", "steps": [
        {"id": "a", "type": "transform", "expression": expression}]}


def _parent(slug: str, child: str) -> dict[str, Any]:
    return {"id": slug, "name": "parent", "steps": [
        {"id": "call", "type": "workflow", "workflowSlug": child}]}


async def _versions(service: Service, slug: str) -> int:
    response = await service.http.get(f"/api/workflows/{slug}/versions")
    assert response.status_code == 200, response.text
    return len(response.json()["versions"])


async def test_apply_a_folder_twice_changes_nothing_the_second_time(
        service: Service, tmp_path: Path) -> None:
    child, parent = unique_slug("child"), unique_slug("parent")
    # The parent sorts first and names the child: it goes in once the child is there.
    (tmp_path / "a-parent.json").write_text(json.dumps(_parent(parent, child)))
    (tmp_path / "b-child.json").write_text(json.dumps(_transform(child)))
    env = cli_env(url=service.url, key=DEV_KEY)

    first = await promptpilot("workflows", "apply", "-f", str(tmp_path), env=env)
    second = await promptpilot("workflows", "apply", "-f", str(tmp_path), env=env)
    (tmp_path / "b-child.json").write_text(json.dumps(_transform(child, "{x: `2`}")))
    dry = await promptpilot("workflows", "apply", "--dry-run", "-f", str(tmp_path), env=env)
    assert await _versions(service, child) == 1
    third = await promptpilot("workflows", "apply", "-f", str(tmp_path), env=env)

    assert first.code == 0, first.text
    assert f"{tmp_path / 'a-parent.json'}: created {parent} (version 1)" in first.stdout
    assert f"{tmp_path / 'b-child.json'}: created {child} (version 1)" in first.stdout
    assert second.code == 0, second.text
    assert f"{tmp_path / 'a-parent.json'}: unchanged {parent} (version 1)" in second.stdout
    assert f"{tmp_path / 'b-child.json'}: unchanged {child} (version 1)" in second.stdout
    assert dry.code == 0, dry.text
    assert f"{tmp_path / 'b-child.json'}: would update {child} to version 2" in dry.stdout
    assert third.code == 0, third.text
    assert f"{tmp_path / 'b-child.json'}: updated {child} to version 2" in third.stdout
    assert f"unchanged {parent} (version 1)" in third.stdout
    assert (await _versions(service, parent), await _versions(service, child)) == (1, 2)
    listed = await promptpilot("workflows", "list", env=env)
    assert listed.code == 0, listed.text
    assert [line.split()[:2] for line in listed.stdout.splitlines()
            if line.startswith(child)] == [[child, "2"]]


async def test_apply_a_broken_file_exits_1_with_the_pointer(service: Service,
                                                           tmp_path: Path) -> None:
    good, bad = unique_slug("good"), unique_slug("bad")
    (tmp_path / "good.json").write_text(json.dumps(_transform(good)))
    broken = _transform(bad)
    broken["steps"].append({"id": "b", "type": "tool", "toolName": "shell"})
    (tmp_path / "bad.json").write_text(json.dumps(broken))
    (tmp_path / "garbled.json").write_text("{\"id\": ")

    dry = await promptpilot("workflows", "apply", "--dry-run", "-f", str(tmp_path),
                            env=cli_env(url=service.url, key=DEV_KEY))
    assert (await service.http.get(f"/api/workflows/{good}")).status_code == 404
    result = await promptpilot("workflows", "apply", "-f", str(tmp_path / "good.json"),
                               "-f", str(tmp_path / "bad.json"), "-f",
                               str(tmp_path / "garbled.json"),
                               "--url", service.url, "--key", DEV_KEY, env=cli_env())

    assert dry.code == 1, dry.text
    assert f"{tmp_path / 'good.json'}: would create {good}" in dry.stdout
    assert f"{tmp_path / 'bad.json'}: refused\n  /steps/1/toolName: unknown tool" in dry.stdout
    assert result.code == 1, result.text
    lines = result.stdout.splitlines()
    assert f"{tmp_path / 'good.json'}: created {good} (version 1)" in lines
    assert f"{tmp_path / 'bad.json'}: refused: validation failed" in lines
    assert "  /steps/1/toolName: unknown tool 'shell'; known tools: http_request, web_search, "\
        "mcp:<server>/<tool>" \
        in lines
    assert f"{tmp_path / 'garbled.json'}: refused" in lines
    assert "{" not in result.stdout.replace("{x: `1`}", ""), "raw JSON printed"
    missing = await service.http.get(f"/api/workflows/{bad}")
    assert missing.status_code == 404


async def test_export_then_apply_is_unchanged(service: Service, tmp_path: Path) -> None:
    slug = unique_slug("round")
    await service.create_workflow({
        "id": slug, "name": "round trip", "description": "exported and applied back",
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [{"id": "draft", "type": "llm", "model": "gpt-4o-mini",
                   "promptUser": "About {{input.topic}}", "retryConfig": {"maxAttempts": 2}},
                  {"id": "shape", "type": "transform", "expression": "{text: text}",
                   "inputMapping": {"text": "outputs.draft"}}]})
    env = cli_env(url=service.url, key=DEV_KEY)
    exported = tmp_path / f"{slug}.json"

    export = await promptpilot("workflows", "export", slug, "-o", str(exported), env=env)
    printed = await promptpilot("workflows", "export", slug, env=env)
    applied = await promptpilot("workflows", "apply", "-f", str(exported), env=env)

    assert export.code == 0, export.text
    assert json.loads(printed.stdout) == json.loads(exported.read_text())
    assert json.loads(printed.stdout)["steps"][0]["promptUser"] == "About {{input.topic}}"
    assert applied.code == 0, applied.text
    assert f"{exported}: unchanged {slug} (version 1)" in applied.stdout
    assert await _versions(service, slug) == 1
    # Into another environment: created there, then unchanged.
    prod = cli_env(url=service.url, key=PROD_KEY)
    created = await promptpilot("workflows", "apply", "-f", str(exported), env=prod)
    again = await promptpilot("workflows", "apply", "-f", str(exported), env=prod)
    assert f"{exported}: created {slug} (version 1)" in created.stdout, created.text
    assert f"{exported}: unchanged {slug} (version 1)" in again.stdout, again.text


async def test_errors_are_readable_lines_with_exit_codes(service: Service) -> None:
    missing = await promptpilot("workflows", "export", "no-such-workflow",
                                env=cli_env(url=service.url, key=DEV_KEY))
    bad_key = await promptpilot("workflows", "export", "no-such-workflow",
                                env=cli_env(url=service.url, key="pp_dev_not_a_key"))
    nowhere = await promptpilot("workflows", "export", "x",
                                env=cli_env(url="http://127.0.0.1:9", key=DEV_KEY))

    run_missing = await promptpilot("run", "no-such-workflow",
                                    env=cli_env(url=service.url, key=DEV_KEY))
    bad_input = await promptpilot("run", "no-such-workflow", "--input", "{nope",
                                  env=cli_env(url=service.url, key=DEV_KEY))

    assert (missing.code, missing.stderr) == (1, "error: workflow 'no-such-workflow' not found\n")
    assert (run_missing.code, run_missing.stderr) == (
        1, "error: workflow 'no-such-workflow' not found\n")
    assert bad_input.code == 2
    assert bad_input.stderr.startswith("error: --input is not JSON")
    assert (bad_key.code, bad_key.stderr) == (2, "error: invalid or revoked API key\n")
    assert nowhere.code == 2
    assert nowhere.stderr.startswith("error: cannot reach the API at http://127.0.0.1:9")
