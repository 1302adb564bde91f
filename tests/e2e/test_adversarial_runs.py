"""A few hundred generated adversarial definitions and inputs: every accepted run ends, in the
state Temporal agrees with, and no answer is a 5xx."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from tests.adversarial import draw_cases, send, settle
from tests.conftest import Service

CASES = 150  # 600 in tests/reliability (make test stays under its 10 minutes)


@pytest.mark.timeout(300)
async def test_every_accepted_run_ends_and_agrees_with_temporal(service: Service) -> None:
    outcome = await send(service.http, draw_cases(CASES))
    temporal = await Client.connect(service.settings.temporal.address, namespace="dev")
    await settle(service.http, temporal, outcome, within=90)
    print(f"\nadversarial: {outcome.tried} cases, {len(outcome.accepted)} runs accepted, "
          f"{outcome.refused} refused with a 4xx, {len(outcome.non_final)} left non-final, "
          f"{len(outcome.server_errors)} 5xx")
    for reason, count in outcome.reasons.most_common(12):
        print(f"  refused {count:>4}  {reason}")
    assert outcome.server_errors == []
    assert outcome.non_final == []
    assert outcome.disagreements == []
    # The generator must reach the interpreter, not only the validator.
    assert len(outcome.accepted) >= CASES // 4
