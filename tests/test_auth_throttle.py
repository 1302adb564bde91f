"""The failed-authentication throttle on its own clock: windows, prefixes, forgiveness."""

from __future__ import annotations

from api.auth_throttle import AuthThrottle, retry_after_header
from promptpilot.security_settings import AuthThrottleSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **limits: float) -> AuthThrottle:
    settings = AuthThrottleSettings(**{"client_failures": 3, "prefix_failures": 5,
                                       "window_seconds": 60, **limits})
    return AuthThrottle(settings, clock=clock)


def test_a_client_is_refused_after_its_failures_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1", "pp_abc") is None
        throttle.failed("10.0.0.1", "pp_abc")
        clock.now += 10
    wait = throttle.retry_after("10.0.0.1", "pp_xyz")
    assert wait == 30  # now 1030; the first failure, at 1000, counts until 1060
    assert throttle.retry_after("10.0.0.2", "pp_abc") is None
    clock.now += wait
    assert throttle.retry_after("10.0.0.1", "pp_abc") is None


def test_a_hammered_prefix_slows_every_address_that_failed_with_it_but_not_its_holder() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for n in range(5):  # five addresses, one failure each: no client limit reached
        throttle.failed(f"10.0.0.{n}", "pp_abc")
    assert throttle.retry_after("10.0.0.0", "pp_abc") is not None
    assert throttle.retry_after("10.0.0.0", "pp_other") is None
    assert throttle.retry_after("192.0.2.7", "pp_abc") is None  # the holder has not failed


def test_a_success_does_not_wipe_the_count_of_a_guesser_holding_its_own_key() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.failed("10.0.0.1", "pp_other")
        throttle.succeeded("10.0.0.1", "pp_mine")
    assert throttle.retry_after("10.0.0.1", "pp_other") is not None


def test_memory_stays_bounded_under_fresh_addresses() -> None:
    clock = Clock()
    throttle = _throttle(clock, max_tracked=100)
    for n in range(10_000):
        throttle.failed(f"addr-{n}", f"pp_{n}")
    assert len(throttle._clients._times) == 100
    assert len(throttle._pairs._times) == 100


def test_retry_after_header_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


def test_recent_keys_are_a_bounded_set() -> None:
    throttle = _throttle(Clock(), max_tracked=100)
    for n in range(150):
        throttle.recent_keys.add(f"digest-{n}")
    assert "digest-149" in throttle.recent_keys
    assert "digest-0" not in throttle.recent_keys
    throttle.recent_keys.discard("digest-149")
    assert "digest-149" not in throttle.recent_keys
