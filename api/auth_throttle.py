"""Throttling of failed authentication, per client address and per key prefix.

Shared by the API's bearer check (``api.deps``) and the inspector's sign-in. Counters live in
this process's memory (SECURITY.md: several API processes each count on their own, so the
effective limit is the per-process limit times the number of processes).

Two sliding windows of ``window_seconds``:

- a **client** (an address) that failed ``client_failures`` times is refused whatever it
  presents, until its oldest failure leaves the window;
- a **prefix** (the visible start of a key, ``store.keys.prefix_of``) that failed
  ``prefix_failures`` times, from any number of addresses, is refused only to the clients
  that themselves failed with it in the window. So failures spread over many addresses slow
  every one of them, while the key's holder, who has not failed, is never locked out by
  someone else's failures.

A key that has verified in this process (``RecentKeys``, by digest) skips the throttle and goes
straight to verification: clients behind one address (NAT, a proxy) are not locked out of a key
they have been using by someone else's failures there. Knowing which digests are recent gives a
guesser nothing: it has to present the key itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from promptpilot.security_settings import AuthThrottleSettings


class _Windows:
    """Recent failure times per name, in a bounded LRU map."""

    def __init__(self, keep: int, max_names: int) -> None:
        self._keep, self._max = keep, max_names
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def add(self, name: str, now: float) -> None:
        times = self._times.pop(name, None) or deque(maxlen=self._keep)
        times.append(now)
        self._times[name] = times
        while len(self._times) > self._max:
            self._times.popitem(last=False)

    def full_until(self, name: str, window: float, now: float) -> float | None:
        """When the window stops being full, or None if it is not full now."""
        times = self._times.get(name)
        if times is None or len(times) < self._keep:
            return None
        until = times[0] + window
        return until if until > now else None

    def recent(self, name: str, window: float, now: float) -> bool:
        """Whether ``name`` failed within the window."""
        times = self._times.get(name)
        return times is not None and len(times) > 0 and times[-1] + window > now


class AuthThrottle:
    """Counts failed sign-ins and says how long a caller must wait."""

    def __init__(self, settings: AuthThrottleSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings = settings or AuthThrottleSettings()
        self._clock = clock
        self._clients = _Windows(settings.client_failures, settings.max_tracked)
        self._prefixes = _Windows(settings.prefix_failures, settings.max_tracked)
        self._pairs = _Windows(1, settings.max_tracked)
        self.recent_keys = RecentKeys(settings.max_tracked)

    def retry_after(self, client: str, prefix: str | None) -> float | None:
        """Seconds ``client`` must wait before presenting a key with ``prefix``; None: go on."""
        now, window = self._clock(), self.settings.window_seconds
        until = self._clients.full_until(client, window, now)
        if prefix is not None and self._pairs.recent(_pair(client, prefix), window, now):
            prefix_until = self._prefixes.full_until(prefix, window, now)
            if prefix_until is not None:
                until = max(until or 0.0, prefix_until)
        return None if until is None else max(until - now, 0.001)

    def failed(self, client: str, prefix: str | None) -> None:
        """Count a refused key (or a missing one: ``prefix`` None counts for the client only)."""
        now = self._clock()
        self._clients.add(client, now)
        if prefix is not None:
            self._prefixes.add(prefix, now)
            self._pairs.add(_pair(client, prefix), now)

    def succeeded(self, client: str, prefix: str | None) -> None:
        """A valid key from ``client``. Nothing is forgiven: a guesser holding one valid key of
        its own could otherwise wipe its count between guesses; failures leave the window on
        their own, and the key itself skips the throttle from now on (``recent_keys``)."""
        del client, prefix


class RecentKeys:
    """Digests of keys that verified lately, newest kept (a bounded LRU set)."""

    def __init__(self, max_keys: int) -> None:
        self._max = max_keys
        self._digests: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, digest: object) -> bool:
        return digest in self._digests

    def add(self, digest: str) -> None:
        """Remember a digest that just verified."""
        self._digests.pop(digest, None)
        self._digests[digest] = None
        while len(self._digests) > self._max:
            self._digests.popitem(last=False)

    def discard(self, digest: str) -> None:
        """Forget a digest that no longer verifies (a revoked key)."""
        self._digests.pop(digest, None)


def _pair(client: str, prefix: str) -> str:
    return f"{client}\x00{prefix}"


def retry_after_header(seconds: float) -> str:
    """The ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, int(-(-seconds // 1))))
