"""Six hundred generated adversarial definitions and inputs: runs left non-final must be 0."""

from __future__ import annotations

import time

import pytest
from temporalio.client import Client

from tests.adversarial import draw_cases, send, settle
from tests.conftest import Service
from tests.reliability.conftest import Record

CASES = 600


@pytest.mark.timeout(900)
async def test_adversarial_storm_leaves_no_run_non_final(service: Service,
                                                         record: Record) -> None:
    began = time.monotonic()
    outcome = await send(service.http, draw_cases(CASES))
    temporal = await Client.connect(service.settings.temporal.address, namespace="dev")
    await settle(service.http, temporal, outcome, within=180)
    statuses = {s: list(outcome.statuses.values()).count(s) for s in set(outcome.statuses.values())}
    record(time.monotonic() - began, casesTried=outcome.tried, runsAccepted=len(outcome.accepted),
           refused4xx=outcome.refused, serverErrors5xx=len(outcome.server_errors),
           runsLeftNonFinal=len(outcome.non_final), disagreements=len(outcome.disagreements),
           finalStatuses=statuses)
    assert outcome.server_errors == []
    assert outcome.non_final == []
    assert outcome.disagreements == []
