"""Nothing a run carries is readable in Temporal: not in its history's payloads, not anywhere
in the Temporal server's database files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import unique_slug
from tests.fakes.llm_server import FakeLlmServer, ok
from tests.payload_support import files_containing, history_payloads, persisted_temporal, serving

SENTINEL = "sentinel-4be1d7-patient-record"


def pipeline(slug: str) -> dict[str, Any]:
    return {"id": slug, "name": "private", "variables": [
        {"name": "note", "type": "string", "required": True}], "steps": [
        {"id": "ask", "type": "llm", "model": "gpt-4o-mini", "name": "ask the model",
         "promptUser": "Summarise this note: {{note}}", "inputMapping": {"note": "input.note"}},
        {"id": "keep", "type": "transform", "expression": "{summary: s, note: n}",
         "inputMapping": {"s": "outputs.ask", "n": "input.note"}},
    ]}


async def test_a_sentinel_from_the_input_is_nowhere_in_temporal(
        settings: Settings, engine: AsyncEngine, llm: FakeLlmServer, tmp_path: Path) -> None:
    async with persisted_temporal(tmp_path / "temporal") as temporal:
        own = settings.model_copy(deep=True)
        own.temporal.address = temporal.address
        slug = unique_slug("private")
        llm.enqueue(ok(f"the note says {SENTINEL}"), ok(f"long: {SENTINEL} " + "z" * 100_000))
        async with serving(own) as http:
            assert (await http.post("/api/workflows", json=pipeline(slug))).status_code == 201
            runs = []
            for note in (SENTINEL, SENTINEL + " " + "y" * 100_000):  # inline, then stored
                response = await http.post(f"/api/workflows/{slug}/run",
                                           json={"input": {"note": note}})
                runs.append(response.json()["run"])
            assert [r["status"] for r in runs] == ["completed", "completed"], runs
            assert SENTINEL in runs[0]["outputJson"]["summary"]  # it really flowed through
            client = await connect(own, "dev")
            for run in runs:
                history = await client.get_workflow_handle(run["id"]).fetch_history()
                assert all(SENTINEL.encode() not in p.SerializeToString()
                           for p in history_payloads(history))
                assert all(SENTINEL.encode() not in e.SerializeToString()
                           for e in history.events)
        folder = tmp_path / "temporal"
        # The database (and its write-ahead log) holds the runs: their ids are in it...
        assert files_containing(folder, runs[0]["id"].encode())
        assert files_containing(folder, slug.encode())
        # ...but nothing they carried.
        assert files_containing(folder, SENTINEL.encode()) == []
    async with engine.connect() as db:
        stored = (await db.execute(text("select data from payload_blobs where workflow_id = "
                                        "any(:ids)"), {"ids": [r["id"] for r in runs]})).all()
    assert stored
    assert all(SENTINEL.encode() not in row.data for row in stored)
