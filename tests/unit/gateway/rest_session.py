"""Test helper: store one simulated rest-only session the way ingest would (beats in the
time-series store, start and end lifecycle messages applied to SQL and handed to the summary
sink), so the gateway's own code computes its summary and alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np

from shuxin.contract.messages import ClockInfo, LifecycleMessage, PhasePlan, ProtocolRef
from shuxin.gateway.timeseries import Point, epoch_us
from shuxin.signal.rr_simulate import rr_simulate


def store_rest_session(
    sql: Any,
    tsdb: Any,
    sink: Any,
    *,
    session: str,
    start: datetime,
    duration_s: float,
    stress: float,
    seed: int,
    subject: str = "S-7F3K2Q",
) -> None:
    """Write ``duration_s`` of simulated beats for station st-a / device h10-1 and end the
    session (``stress`` and ``seed`` go to ``rr_simulate``)."""
    sim = rr_simulate(duration_s, np.random.default_rng(seed), stress=stress)
    beat_us = epoch_us(start) + np.round(np.cumsum(sim.rr_ms) * 1000).astype(np.int64)
    tsdb.write(
        [Point.make("rr", {"station": "st-a", "device": "h10-1", "source": "sim"},
                    {"rr_ms": float(v)}, int(t))
         for t, v in zip(beat_us, sim.rr_ms, strict=True)]
    )  # fmt: skip
    for seq, event in enumerate(("start", "end")):
        message = LifecycleMessage(
            schema_=1, station="st-a", session=session, seq=seq, sent_at=start,
            clock=ClockInfo(offset_ms=0.0, source="ntp"), stream="lifecycle",
            event=event, subject=subject,
            protocol=ProtocolRef(id="rest-only", version="1"),
            phases=[PhasePlan(name="rest", kind="rest", duration_s=duration_s)],
            devices=["h10-1"], started_at=start,
            ended_at=None if event == "start" else start + timedelta(seconds=duration_s),
        )  # fmt: skip
        sql.apply_lifecycle(message)
        sink.accept([SimpleNamespace(message=message)])
