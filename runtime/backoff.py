"""Capped exponential backoff with full jitter, shared by every retry loop in shuxin.

Used by the edge's MQTT publisher (:mod:`shuxin.edge.outbox_publisher`), the gateway's MQTT
reconnect loop (:mod:`shuxin.gateway.mqtt_ingest`) and its spool drain loop
(:mod:`shuxin.gateway.spool`). "Full jitter" (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015): the wait before attempt ``n`` is uniform in ``[0, min(cap, initial·factorⁿ)]``,
so replicas that failed together do not retry together. Pure; it never sleeps itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter.

    Attributes
    ----------
    initial_s : float
        Ceiling of the first wait (s), > 0.
    cap_s : float
        Largest ceiling (s), ≥ ``initial_s``.
    factor : float
        Growth of the ceiling per failed attempt, ≥ 1.
    """

    initial_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.cap_s >= self.initial_s and self.factor >= 1):
            raise ValueError("backoff needs initial_s > 0, cap_s >= initial_s, factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """Return the largest wait (s) before retry ``attempt`` (0-based)."""
        # Stop multiplying once past the cap so huge attempt counts cannot overflow a float.
        ceiling = self.initial_s
        for _ in range(max(0, attempt)):
            if ceiling >= self.cap_s:
                break
            ceiling *= self.factor
        return min(self.cap_s, ceiling)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return a random wait (s) in ``[0, ceiling(attempt)]`` before retry ``attempt``."""
        return rng.uniform(0.0, self.ceiling(attempt))
