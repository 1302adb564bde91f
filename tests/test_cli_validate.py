"""`promptpilot validate`: the API's save checks offline, problems by JSON pointer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import cli_env, promptpilot

# Nothing listens here: validate must not need a server.
NOWHERE = "http://127.0.0.1:9"


def _write(folder: Path, name: str, definition: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(definition) if not isinstance(definition, str) else definition)
    return path


async def test_validate_names_every_problem_by_pointer_with_no_server(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.json", {"id": "fine", "name": "fine", "steps": [
        {"id": "a", "type": "transform", "expression": "{x: `1`}"}]})
    bad = _write(tmp_path, "bad.json", {"id": "broken", "name": "broken", "steps": [
        {"id": "a", "type": "llm", "provider": "nope", "model": "demo", "promptUser": "hi"},
        {"id": "b", "type": "tool", "toolName": "shell"},
        {"id": "c", "type": "transform", "inputMapping": {"x": "outputs.later"}}]})
    env = cli_env(url=NOWHERE)

    ok = await promptpilot("validate", str(good), env=env)
    refused = await promptpilot("validate", str(good), str(bad), env=env)

    assert ok.code == 0, ok.text
    assert f"{good}: ok (fine, 1 step)" in ok.stdout
    assert refused.code == 1, refused.text
    lines = refused.stdout.splitlines()
    assert f"{bad}: refused" in lines
    assert any(line.startswith("  /steps/0/provider: unknown provider") for line in lines)
    assert "  /steps/1/toolName: unknown tool 'shell'; known tools: http_request, web_search, "\
        "mcp:<server>/<tool>" \
        in lines
    assert any(line.startswith("  /steps/2/inputMapping/x:") for line in lines), refused.text
    assert "Traceback" not in refused.stderr


async def test_validate_refuses_what_is_not_a_definition(tmp_path: Path) -> None:
    not_json = _write(tmp_path, "a.json", "{ nope")
    slugs = _write(tmp_path, "b.json", {"id": "one", "slug": "two", "name": "x", "steps": [
        {"id": "a", "type": "transform", "expression": "{x: `1`}"}]})
    too_big = _write(tmp_path, "c.json", {"id": "big", "name": "x", "steps": [
        {"id": f"s{i}", "type": "transform", "expression": "{x: `1`}"} for i in range(6)]})
    reserved = _write(tmp_path, "d.json", {"id": "runs", "name": "x", "steps": [
        {"id": "a", "type": "transform", "expression": "{x: `1`}"}]})
    metadata = _write(tmp_path, "e.json", {"id": "fetch", "name": "x", "steps": [
        {"id": "a", "type": "tool", "toolName": "http_request",
         "args": {"url": "http://169.254.169.254/latest"}}]})
    env = {**cli_env(url=NOWHERE), "PROMPTPILOT_LIMITS__MAX_STEPS": "5"}

    result = await promptpilot("validate", str(tmp_path), env=env)
    missing = await promptpilot("validate", str(tmp_path / "nothing.json"), env=env)

    assert result.code == 1, result.text
    assert f"{not_json}: refused\n  /: not JSON:" in result.stdout
    assert f"{slugs}: refused\n  /slug: " in result.stdout
    assert f"{too_big}: refused\n  /steps: " in result.stdout
    assert "PROMPTPILOT_LIMITS__MAX_STEPS" in result.stdout
    assert f"{reserved}: refused\n  /id: 'runs' is a reserved slug" in result.stdout
    assert f"{metadata}: refused\n  /steps/0/args/url: refusing to reach '169.254.169.254'" \
        in result.stdout
    assert missing.code == 2
    assert missing.stderr.startswith("error: ")
    assert "no such file" in missing.stderr
