"""Failed sign-ins slow further guessing down, as OWASP's authentication cheat sheet recommends: a throttle,
never a lasting lockout (a nurse lead kept out of the dashboard is itself a harm).

Failures are counted per name typed and per client address. Every name is counted the same way, configured
or not, so a pause tells nothing about which names exist. Once a key has had its allowed failures, attempts
for it are refused for a delay that doubles with each further failure, without the password being checked (no
answer to learn from, no PBKDF2 time spent). A success clears the name's and the address's counts; a key
starts again after ``FORGET_AFTER_SECONDS`` with no failure, counted from the end of its pause (else the
longest pause would always end in a clean slate of free tries). An admitted attempt counts as a failure until
``succeeded`` clears it, so requests sent in parallel cannot all get in under the limit.

The counts live in this process only (each engine node counts on its own), for at most ``MAX_TRACKED_KEYS``
keys: the key whose latest failure is oldest is forgotten first.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FAILURES_PER_NAME = 5  # a few typos pass unnoticed; someone guessing one name's password gets 5 tries, then waits
FAILURES_PER_ADDRESS = 20  # higher: a shift shares ward computers (or a proxy's address) under many names
FIRST_DELAY_SECONDS = 30.0  # short for a nurse who mistyped, and slows a guessing script from many tries a second
MAX_DELAY_SECONDS = 15 * 60.0  # the longest anyone waits: throttling, not a lockout
FORGET_AFTER_SECONDS = 15 * 60.0  # OWASP's observation window: after this long quiet, failures no longer count
MAX_TRACKED_KEYS = 10_000  # a few MB at most, however many made-up names or addresses are tried
ALLOWED_FAILURES = {"name": FAILURES_PER_NAME, "address": FAILURES_PER_ADDRESS}


@dataclass(frozen=True)
class Pause:
    """An attempt refused: whose count reached its limit (``name`` or ``address``) and for how long."""

    of: str
    seconds: int  # until an attempt is admitted again, rounded up


@dataclass(frozen=True)
class _Failures:
    count: int
    last_at: float  # clock seconds of the latest one


class SignInThrottle:
    """Thread-safe (sign-in runs in FastAPI's thread pool); ``clock`` returns monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_TRACKED_KEYS):
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def admit(self, name: str, address: str) -> Pause | None:
        """None: check the password (the attempt counts as a failure until ``succeeded``); else the pause."""
        keys = (("name", name), ("address", address))
        with self._lock:
            now = self._clock()
            pauses = [Pause(key[0], math.ceil(wait)) for key in keys if (wait := self._wait(key, now)) > 0]
            if pauses:
                return max(pauses, key=lambda pause: pause.seconds)
            for key in keys:
                self._count_failure(key, now)
            return None

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(("name", name), None)
            self._failures.pop(("address", address), None)

    def tracked_keys(self) -> int:
        with self._lock:
            return len(self._failures)

    def _wait(self, key: tuple[str, str], now: float) -> float:
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        paused_until = failures.last_at + delay_after(failures.count, ALLOWED_FAILURES[key[0]])
        if now >= paused_until + FORGET_AFTER_SECONDS:
            del self._failures[key]
            return 0.0
        return paused_until - now

    def _count_failure(self, key: tuple[str, str], now: float) -> None:
        earlier = self._failures.pop(key, None)
        self._failures[key] = _Failures(earlier.count + 1 if earlier else 1, now)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)


def delay_after(failures: int, allowed: int) -> float:
    """Seconds refused after ``failures`` in a row: none below ``allowed``, then doubling up to the cap."""
    if failures < allowed:
        return 0.0
    return min(FIRST_DELAY_SECONDS * 2.0 ** min(failures - allowed, 32), MAX_DELAY_SECONDS)
