"""The station clock the agent runs on: wall time, accelerated time, or virtual time in tests.

Every part of the agent that reads or waits for time (sources, the session runner, the batcher,
the agent's tick) takes a :class:`Clock` instead of calling :func:`time.time` or
:func:`asyncio.sleep`. The simulated station runs on a :class:`ScaledClock` (``time_scale`` K:
one real second is K station seconds), a real station on :class:`SystemClock`, and unit tests on
:class:`ManualClock` (virtual time, moved by the test or by the sleeper itself).

Times are POSIX seconds (float, UTC). This module must not import anything outside the
standard library, and must not keep global state.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Station time: ``now()`` in POSIX seconds, and a way to wait until a station time."""

    def now(self) -> float:
        """Current station time (POSIX seconds)."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return when station time has reached ``t`` (at once if it already has)."""
        ...


class SystemClock:
    """The host's wall clock (NTP-disciplined on a real station)."""

    def now(self) -> float:
        """Wall time (POSIX seconds)."""
        return time.time()

    async def sleep_until(self, t: float) -> None:
        """Sleep until the wall clock reads ``t``."""
        await asyncio.sleep(max(0.0, t - time.time()))


class ScaledClock:
    """Accelerated station time: ``time_scale`` station seconds pass per real second.

    Parameters
    ----------
    time_scale
        Station seconds per real second, > 0 (1 = real time).
    start
        Station time at construction; default the wall clock. A restarted simulated station
        passes the last station time it saved so its time line never runs backwards.
    """

    def __init__(self, time_scale: float, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = float(time_scale)
        self._start = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()

    def now(self) -> float:
        """Station time (POSIX seconds on the accelerated time line)."""
        return self._start + (time.monotonic() - self._mono0) * self.time_scale

    async def sleep_until(self, t: float) -> None:
        """Sleep the real time it takes station time to reach ``t``."""
        await asyncio.sleep(max(0.0, (t - self.now()) / self.time_scale))


class ManualClock:
    """Virtual time for tests.

    With ``auto_advance`` (the default) ``sleep_until`` jumps time forward at once — right for
    one task following a time line. With ``auto_advance=False`` sleepers wait until the test
    moves time with :meth:`advance`, so several tasks (sources, the agent's tick) wake in
    time order to within the test's step.
    """

    def __init__(self, start: float = 1_800_000_000.0, *, auto_advance: bool = True) -> None:
        self.t = float(start)
        self.auto_advance = auto_advance

    def now(self) -> float:
        """The current virtual time."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``."""
        self.t += seconds

    async def sleep_until(self, t: float) -> None:
        """Jump to ``t`` (auto-advance), or yield until the test has moved time past ``t``."""
        if self.auto_advance:
            self.t = max(self.t, t)
            await asyncio.sleep(0)
            return
        while self.t < t:
            await asyncio.sleep(0)


def to_datetime(t: float) -> datetime:
    """A POSIX time as an aware UTC datetime (the contract's timestamp type)."""
    return datetime.fromtimestamp(t, UTC)
