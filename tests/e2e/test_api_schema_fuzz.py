"""Schemathesis over every operation of the API with every check, bounded to run in
``make test`` (about 40 s here): no 5xx, every answer as documented, every 4xx our error
envelope. ``tests/reliability/test_api_fuzz.py`` runs the long version."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from tests.api_fuzz import (
    fuzz_settings,
    fuzz_targets,
    run_schemathesis,
    trigger_problems,
    unreadable_versions,
)
from tests.conftest import Service

MAX_EXAMPLES = 7  # 40 in tests/reliability


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings for fuzzing (tests/api_fuzz.py: fuzz_settings)."""
    return fuzz_settings(settings)


@pytest.mark.timeout(240)
async def test_every_operation_answers_as_documented(
        service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        engine: AsyncEngine) -> None:
    since = datetime.now(UTC)
    targets = await fuzz_targets(service)
    result = await run_schemathesis(service, targets, max_examples=MAX_EXAMPLES,
                                    phases="examples,fuzzing", seed=12,
                                    calls=tmp_path / "calls.txt",
                                    writes=tmp_path / "writes.jsonl")
    # The API logs where each 5xx came from (type and frames, no data): shown with the cases.
    logged = [r.getMessage() for r in caplog.records
              if r.name == "promptpilot.api" and r.levelno >= logging.ERROR]
    # Scheduled triggers the run left odd, with what the fuzzer sent each: a stored config
    # that does not read is a bug (every write is checked); a schedule Temporal lost is made
    # again by the trigger's next control (tests/e2e/test_schedule_repair.py), so it is shown.
    odd = await trigger_problems(service, engine, since, tmp_path / "writes.jsonl")
    assert result.server_errors == [], (result.output[-4000:] + "\n".join(logged)[-6000:]
                                        + "\n".join(odd)[-8000:])
    assert [p for p in odd if "config does not read" in p] == [], "\n".join(odd)[-8000:]
    assert result.returncode == 0, result.output[-6000:]
    # Whatever the fuzzer saved reads back as it was checked.
    assert await unreadable_versions(engine, since) == []
    assert result.cases > 200  # every operation was reached, several times
