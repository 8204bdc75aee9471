"""How a simulated device sends on the demo clock, and the tally of what the engine answered.

``DemoClock`` counts demo seconds (real seconds times ``speed``). A ``Sender`` is a thread that calls its
``send`` every ``period`` demo seconds, from a random first moment within the first period (devices are not
in step), until the demo stops or the device's scenario silences it; each answer (``AA``, ``CA+AA``,
``HTTP 201``, ``ok``, ``error ConnectionRefusedError``) is counted in the ``Tally``. ``MllpLink`` is
the MLLP side of a monitor: one persistent connection, opened again after a failure.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from adapters.mllp.client import MllpClient, MllpError, acknowledgement_code

Say = Callable[[str], None]


class DemoClock:
    def __init__(self, speed: float = 1.0):
        self.speed = speed
        self._started = time.monotonic()

    def now(self) -> float:
        """Demo seconds since the clock was made."""
        return (time.monotonic() - self._started) * self.speed

    def real_seconds(self, demo_seconds: float) -> float:
        return demo_seconds / self.speed


class Tally:
    """Thread-safe counts of answers, per channel (MLLP, SOAP, REST)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, channel: str, answer: str) -> None:
        with self._lock:
            self._counts[(channel, answer)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)


class Sender(threading.Thread):
    """Calls ``send(t)`` (``t`` in demo seconds) every ``period`` demo seconds; ``send`` returns the answer
    to count. An exception counts as ``error <type>``, and the device tries again at its next turn."""

    def __init__(self, name: str, channel: str, send: Callable[[float], str], period: float, clock: DemoClock,
                 tally: Tally, stop: threading.Event, say: Say, silent_after: float | None = None,
                 close: Callable[[], None] | None = None, rng: random.Random | None = None):
        super().__init__(name=f"demo-{name}", daemon=True)
        self.device = name
        self.channel = channel
        self._send = send
        self._period = period
        self._clock = clock
        self._tally = tally
        self._halt = stop
        self._say = say
        self._silent_after = silent_after
        self._close = close
        self._first_delay = (rng or random.Random()).uniform(0, period)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            if self._close is not None:
                self._close()

    def _loop(self) -> None:
        due = self._first_delay
        while not self._halt.wait(max(0.0, self._clock.real_seconds(due - self._clock.now()))):
            t = self._clock.now()
            if self._silent_after is not None and t >= self._silent_after:
                self._say(f"{self.device} goes silent (its scenario): the engine should raise a device_offline "
                          "incident at the next stale-devices check")
                return
            try:
                answer = self._send(t)
            except Exception as error:  # a demo device keeps trying whatever went wrong
                answer = f"error {type(error).__name__}"
            self._tally.count(self.channel, answer)
            due += self._period


class MllpLink:
    """A monitor's MLLP connection: connects when needed, answers the ACK codes joined by ``+``."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self._client = MllpClient(host, port, timeout=timeout)

    def exchange(self, message: bytes) -> str:
        try:
            self._client.connect()
            acks = self._client.exchange(message)
        except MllpError:
            self._client.close()
            raise
        return "+".join(acknowledgement_code(ack).decode("ascii", "replace") for ack in acks) or "no ACK"

    def close(self) -> None:
        self._client.close()
