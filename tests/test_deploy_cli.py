"""`promptpilot deploy`: a ramp that is not a percentage is refused before anything is sent."""

from __future__ import annotations

import pytest

from promptpilot.cli import main


@pytest.mark.parametrize("percent", ["150", "-1", "half"])
def test_a_ramp_past_0_to_100_percent_is_refused(percent: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["deploy", "ramp", "build-2", percent])
    assert stop.value.code == 2
    assert "percent" in capsys.readouterr().err
