"""Schemathesis against the app's own OpenAPI document, the long run: every operation with
every check, boundary values (the coverage phase) and more generated cases than the
``make test`` version (``tests/e2e/test_api_schema_fuzz.py``); no 5xx."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from tests.api_fuzz import fuzz_settings, fuzz_targets, run_schemathesis, unreadable_versions
from tests.conftest import Service
from tests.reliability.conftest import Record

MAX_EXAMPLES = 40


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings for fuzzing (tests/api_fuzz.py: fuzz_settings)."""
    return fuzz_settings(settings)


@pytest.mark.timeout(1200)
async def test_fuzz_the_openapi_document(service: Service, record: Record,
                                         tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture,
                                         engine: AsyncEngine) -> None:
    since = datetime.now(UTC)
    targets = await fuzz_targets(service)
    result = await run_schemathesis(service, targets, max_examples=MAX_EXAMPLES,
                                    phases="examples,coverage,fuzzing", seed=8,
                                    calls=tmp_path / "calls.txt",
                                    extra=("--max-time", "600"))
    summary = [line.strip() for line in result.output.splitlines() if "generated" in line][-1:]
    record(result.seconds, fault="schemathesis, every operation, --checks all",
           maxExamples=MAX_EXAMPLES, cases=result.cases,
           serverErrors=len(result.server_errors), summary=summary)
    # The API logs where each 5xx came from (type and frames, no data): shown with the cases.
    logged = [r.getMessage() for r in caplog.records
              if r.name == "promptpilot.api" and r.levelno >= logging.ERROR]
    assert result.server_errors == [], result.output[-4000:] + "\n".join(logged)[-6000:]
    assert result.returncode == 0, result.output[-6000:]
    # Whatever the fuzzer saved reads back as it was checked.
    assert await unreadable_versions(engine, since) == []
