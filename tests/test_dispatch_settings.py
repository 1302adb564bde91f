"""The start dispatcher's settings: read from the environment, nonsense refused by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promptpilot.settings import Settings


def test_dispatch_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTPILOT_DISPATCH__BATCH_SIZE", "8")
    monkeypatch.setenv("PROMPTPILOT_DISPATCH__BACKOFF_MAX_SECONDS", "12.5")
    monkeypatch.setenv("PROMPTPILOT_DISPATCH__IN_WORKER", "false")

    dispatch = Settings().dispatch

    assert (dispatch.batch_size, dispatch.backoff_max_seconds, dispatch.in_worker) == (
        8, 12.5, False)
    assert (dispatch.poll_seconds, dispatch.start_timeout_seconds) == (1.0, 5.0)


@pytest.mark.parametrize(("name", "value"), [("BATCH_SIZE", "0"), ("POLL_SECONDS", "0"),
                                             ("START_TIMEOUT_SECONDS", "-1"),
                                             ("LEASE_SECONDS", "0.5")])
def test_a_dispatch_setting_out_of_range_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str,
) -> None:
    monkeypatch.setenv(f"PROMPTPILOT_DISPATCH__{name}", value)

    with pytest.raises(ValidationError, match=f"dispatch.{name.lower()}"):
        Settings()
