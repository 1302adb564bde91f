"""Schemathesis against the app's own OpenAPI document: no 5xx, every 4xx well-formed."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEV_KEY, Service
from tests.reliability.conftest import Record

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 12


@pytest.mark.timeout(400)
async def test_fuzz_the_openapi_document(service: Service, record: Record) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{service.url}/openapi.json",
        "--checks", "not_a_server_error,error_envelope",
        "--phases", "examples,fuzzing", "--max-examples", str(MAX_EXAMPLES),
        "--seed", "8", "--no-shrink", "--workers", "2", "--request-timeout", "20",
        "--header", f"Authorization: Bearer {DEV_KEY}",
        # Event streams stay open by design: they are not request/response operations.
        "--exclude-path-regex", r"/events",
        "--suppress-health-check", "all", "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.reliability.fuzz_checks",
           "PYTHONPATH": str(ROOT)}
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    seconds = time.monotonic() - began
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    # `--checks error_envelope` is refused unless the hooks module loaded, so it did run.
    summary = [line.strip() for line in text.splitlines() if "passed" in line][-1:]
    record(seconds, fault="schemathesis fuzzing of the OpenAPI document",
           maxExamples=MAX_EXAMPLES, summary=summary[:8])
