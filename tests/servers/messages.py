"""Contract-valid payloads for tests that need traffic on a real broker.

One ``rr`` batch builder instead of a copy per test file; the contract's own models check
what it returns, so a test never publishes something the gateway would quarantine unless it
means to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shuxin.contract.codec import encode
from shuxin.contract.messages import ClockInfo, RrMessage


def rr_payload(
    station: str,
    session: str,
    seq: int,
    t0: datetime,
    rr_ms: Sequence[float] = (800.0, 810.0),
    *,
    device: str = "hrs-1",
) -> bytes:
    """Encoded ``rr`` message ``seq`` of ``session``: beats ``rr_ms`` 400 ms apart from
    ``t0 + seq`` seconds (so consecutive batches never overlap in time), sent then."""
    start = t0 + timedelta(seconds=seq)
    return encode(
        RrMessage(
            schema_=1,
            station=station,
            session=session,
            stream="rr",
            seq=seq,
            sent_at=start,
            clock=ClockInfo(offset_ms=0.0, source="ntp"),
            device=device,
            t0=start,
            source="sim",
            t_offset_ms=[400.0 * i for i in range(len(rr_ms))],
            rr_ms=list(rr_ms),
        )
    )
