"""Runs and keys from the command line: follow a run to its approval, approve it, list runs,
cancel one, and revoke a key."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from store.keys import ApiKeys
from tests.cli_support import PROMPTPILOT, cli_env, promptpilot
from tests.conftest import DEV_KEY, PROD_KEY, Service, unique_slug
from tests.e2e.test_approval import _waiting, gated


async def _line_matching(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), timeout=30)).decode()
        assert line, "the command ended before printing " + pattern + "\n" + "".join(seen)
        seen.append(line)
        if re.search(pattern, line):
            return line


async def test_run_says_how_to_approve_and_approve_completes_the_run(service: Service) -> None:
    slug = unique_slug("cli-appr")
    await service.create_workflow(gated(slug))
    env = cli_env(url=service.url, key=DEV_KEY)
    follow = await asyncio.create_subprocess_exec(
        PROMPTPILOT, "run", slug, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert follow.stdout is not None
    seen: list[str] = []
    run_id = (await _line_matching(follow.stdout, r"^run \S+ started", seen)).split()[1]
    hint = await _line_matching(follow.stdout, "waits for approval", seen)

    assert hint.strip() == (f"step 'review' waits for approval: promptpilot approve {run_id} "
                            "review (or --reject, with --comment TEXT)")
    approved = await promptpilot("approve", run_id, "review", "--comment", "ship it", env=env)
    rest, _ = await asyncio.wait_for(follow.communicate(), timeout=30)

    assert approved.code == 0, approved.text
    assert approved.stdout.startswith(f"step review approved; run {run_id} is completed\n")
    assert follow.returncode == 0, "".join(seen) + rest.decode()
    assert "run completed" in rest.decode()
    run = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert (review["outputJson"]["decision"], review["outputJson"]["comment"]) == (
        "approved", "ship it")

    listed = await promptpilot("runs", "list", "--workflow", slug, env=env)
    assert listed.code == 0, listed.text
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["RUN", "WORKFLOW", "STATUS", "STARTED", "(UTC)", "COST"]
    assert len(rows) == 1
    assert rows[0].split()[:3] == [run_id, slug, "completed"]
    assert rows[0].split()[-1].startswith("$")


async def test_cancel_a_waiting_run_and_decide_no_more(service: Service) -> None:
    slug = unique_slug("cli-cancel")
    await service.create_workflow(gated(slug))
    env = cli_env(url=service.url, key=DEV_KEY)
    detached = await promptpilot("run", slug, "--detach", env=env)
    assert detached.code == 0, detached.text
    run_id = detached.stdout.strip()
    await _waiting(service, run_id)

    cancelled = await promptpilot("runs", "cancel", run_id, env=env)
    late = await promptpilot("approve", run_id, "review", "--reject", env=env)
    bad_status = await promptpilot("runs", "list", "--status", "done", env=env)
    listed = await promptpilot("runs", "list", "--workflow", slug, "--status", "cancelled",
                               "--limit", "5", env=env)

    assert cancelled.code == 0, cancelled.text
    assert cancelled.stdout.startswith(f"run {run_id} cancelled")
    assert late.code == 1, late.text
    assert late.stderr == f"error: run '{run_id}' is already cancelled\n"
    assert bad_status.code == 1, bad_status.text
    assert bad_status.stderr.startswith("error: ")
    assert "/status" in bad_status.stderr
    assert [row.split()[:3] for row in listed.stdout.splitlines()[1:]] == [
        [run_id, slug, "cancelled"]]


async def test_approve_right_after_a_detached_start(service: Service) -> None:
    """A script starts a run and approves at once: the decision waits for the step to wait."""
    slug = unique_slug("cli-script")
    await service.create_workflow(gated(slug))
    env = cli_env(url=service.url, key=DEV_KEY)

    detached = await promptpilot("runs", "start", slug, "--detach", env=env)
    run_id = detached.stdout.strip()
    approved = await promptpilot("runs", "approve", run_id, "review", env=env)
    quiet = await promptpilot("runs", "list", "--workflow", slug, "-q", env=env)
    typo = await promptpilot("approve", run_id, "reveiw", "--wait", "0", env=env)

    assert approved.code == 0, approved.text
    assert approved.stdout.startswith(f"step review approved; run {run_id} is completed\n")
    assert quiet.stdout == f"{run_id}\n"
    assert typo.code == 1, typo.text
    assert typo.stderr.startswith("error: ")


async def _keys(service: Service, key: str) -> list[dict[str, Any]]:
    response = await service.http.get("/api/keys", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def test_keys_revoke_makes_the_key_fail_with_401(service: Service,
                                                        engine: AsyncEngine) -> None:
    name = f"cli revoke {uuid.uuid4().hex[:8]}"
    doomed = await ApiKeys(engine).create("dev", name)
    row = next(k for k in await _keys(service, DEV_KEY) if k["name"] == name)
    env = cli_env(url=service.url, key=DEV_KEY)

    listed = await promptpilot("keys", "list", env=env)
    works = await promptpilot("runs", "list", "--limit", "1", "--key", doomed, env=env)
    # The whole key names its key too (by the prefix the server keeps of it).
    revoked = await promptpilot("keys", "revoke", doomed, env=env)
    refused = await service.http.get("/api/workflows",
                                     headers={"Authorization": f"Bearer {doomed}"})
    cli_refused = await promptpilot("runs", "list", "--key", doomed, env=env)

    assert listed.code == 0, listed.text
    line = next(li for li in listed.stdout.splitlines() if name in li)
    assert line.split()[:2] == [row["id"], row["prefix"]]
    assert doomed not in listed.stdout
    assert works.code == 0, works.text
    assert revoked.code == 0, revoked.text
    assert revoked.stdout.startswith(f"revoked key {row['id']} ({row['prefix']}, {name}) at ")
    assert refused.status_code == 401
    assert (cli_refused.code, cli_refused.stderr) == (2, "error: invalid or revoked API key\n")
    assert next(k for k in await _keys(service, DEV_KEY) if k["id"] == row["id"])["revokedAt"]


async def test_keys_are_scoped_to_the_environment(service: Service, engine: AsyncEngine) -> None:
    name = f"cli scope {uuid.uuid4().hex[:8]}"
    await ApiKeys(engine).create("dev", name)
    row = next(k for k in await _keys(service, DEV_KEY) if k["name"] == name)
    prod = {"Authorization": f"Bearer {PROD_KEY}"}

    other = await service.http.delete(f"/api/keys/{row['id']}", headers=prod)
    not_an_id = await service.http.delete("/api/keys/pp_dev")
    unknown = await promptpilot("keys", "revoke", "pp_nothing_like_it",
                                env=cli_env(url=service.url, key=DEV_KEY))

    listed = await service.http.get("/api/keys")
    assert all(set(k) == {"id", "name", "environment", "prefix", "createdAt", "revokedAt"}
               for k in listed.json()["keys"]), "a key's digest or more is shown"
    assert all(k["environment"] == "prod" for k in await _keys(service, PROD_KEY))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    assert not_an_id.status_code == 422
    assert unknown.code == 1
    assert unknown.stderr.startswith("error: no live key with id or prefix 'pp_nothing_like_it'")
    still = next(k for k in await _keys(service, DEV_KEY) if k["id"] == row["id"])
    assert still["revokedAt"] is None
