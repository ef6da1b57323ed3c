"""Readings → contract messages: ~1 s batches per device and stream, live metrics every 5 s.

:class:`ContractWriter` is the one place the agent turns data into v1 contract messages: it
fills the envelope (station, session, stream, ``sent_at``, clock info), validates through the
contract models, and stores each message with ``Outbox.enqueue(topic, build)`` so that the
``seq`` comes from the outbox, in the same transaction that stores the payload. A message the
models refuse is counted and dropped, never raised into a session.

:class:`Batcher` routes each reading of a device to the session the device is in and batches it:

* ``rr`` — beats as reported (uncorrected), with beat time offsets; ``hr`` — heart-rate values;
* ``eda`` — regular samples; an invalid sample, a jump in time or a change of flags closes the
  batch, and the next one says ``gap_before`` when samples were missing;
* ``ecg`` — raw ECG only for devices configured to upload it (raw waveforms stay on the edge by
  default, DESIGN §2);
* ``events`` — a :class:`~shuxin.edge.decode.DataGap` becomes a contract ``gap`` event;
* ``metrics`` — every ``metrics_every_s`` from the signal core's streaming windows
  (``shuxin.signal.hrv_stream``: live HR, RMSSD over 60 s, coherence every 5 s;
  ``shuxin.signal.eda_stream``: SCL and SCR rate over 60 s).

A batch closes when it spans ``batch_s`` of station time (on the next reading or on
:meth:`Batcher.tick`), and every batch of a session is flushed when the session closes.
Values outside the contract's ranges are dropped and counted, so a hostile device cannot make
a batch invalid. No I/O except through the injected outbox; no clock reads (times come from
readings and from the caller).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from pydantic import BaseModel, ValidationError

from shuxin.contract.codec import encode
from shuxin.contract.messages import (
    ClockInfo,
    DeviceStatus,
    EcgMessage,
    EdaMessage,
    EventsMessage,
    GapEvent,
    HrMessage,
    LifecycleMessage,
    MetricsMessage,
    RrMessage,
)
from shuxin.contract.topics import Stream, device_status_topic, session_topic
from shuxin.edge.clock import Clock, to_datetime
from shuxin.edge.decode import Beat, DataGap, EcgSamples, EdaSamples, HeartRate, Reading
from shuxin.signal.eda_stream import EdaLive, EdaStream
from shuxin.signal.hrv_coherence import coherence_level
from shuxin.signal.hrv_stream import HrvLive, HrvStream
from shuxin.signal.version import algorithm_version

log = logging.getLogger(__name__)

#: Beats fed to the live metrics must look physiological (30-200 bpm) and not jump by more
#: than this fraction from the previous accepted beat (Malik et al. 1993 use 20 %; the
#: looser 30 % keeps fast RSA swings during 6/min breathing). Uploaded RR stays uncorrected.
LIVE_RR_RANGE_MS: Final = (300.0, 2000.0)
LIVE_RR_MAX_JUMP: Final = 0.30
#: Contract limits (shuxin.contract.messages) checked before building, so nothing is refused.
_MAX_RR_MS: Final = 5000.0
_MAX_HR_BPM: Final = 300
_MAX_EDA_US: Final = 200.0
_ECG_LIMIT: Final = 2**23
_MAX_BATCH_ITEMS: Final = 512

_MODELS: Final[dict[Stream, type[BaseModel]]] = {
    Stream.LIFECYCLE: LifecycleMessage,
    Stream.RR: RrMessage,
    Stream.HR: HrMessage,
    Stream.EDA: EdaMessage,
    Stream.ECG: EcgMessage,
    Stream.METRICS: MetricsMessage,
    Stream.EVENTS: EventsMessage,
}


class OutboxPort(Protocol):
    """What the agent needs from the durable outbox (``shuxin.edge.outbox.Outbox`` fits)."""

    def enqueue(self, topic: str, build: Callable[[int], bytes]) -> int:
        """Store a sequenced message; ``build(seq)`` makes its bytes."""
        ...

    def enqueue_state(self, topic: str, payload: bytes) -> None:
        """Store a retained state message (no seq)."""
        ...

    def next_seq(self, topic: str) -> int:
        """The seq the next message of ``topic`` will get."""
        ...


class ContractWriter:
    """Builds v1 contract messages and stores them in the outbox.

    Parameters
    ----------
    outbox
        Where messages go; the outbox assigns ``seq``.
    station
        This station's id.
    clock
        Station clock, for ``sent_at``.
    clock_info
        The edge clock's offset estimate and its source, carried in every envelope.
    on_enqueue
        Called after each stored message (wakes the publisher).
    """

    def __init__(
        self,
        outbox: OutboxPort,
        station: str,
        clock: Clock,
        clock_info: ClockInfo,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.station = station
        self._clock = clock
        self._clock_info = clock_info
        self._on_enqueue = on_enqueue
        #: ``invalid_message`` (a model refused a message; a bug, logged once per stream).
        self.counters: Counter[str] = Counter()
        self._logged: set[str] = set()

    def topic(self, session: str, stream: Stream) -> str:
        """The topic of one stream of one session at this station."""
        return session_topic(self.station, session, stream)

    def next_seq(self, session: str, stream: Stream) -> int:
        """How many messages of this stream the outbox has ever stored."""
        return self.outbox.next_seq(self.topic(session, stream))

    def session_message(
        self, session: str, stream: Stream, fields: Mapping[str, Any]
    ) -> int | None:
        """Store one session message; return its ``seq``, or None when the model refused it."""
        model = _MODELS[stream]
        envelope = {
            "schema_": 1,
            "station": self.station,
            "session": session,
            "stream": stream.value,
            "clock": self._clock_info,
        }

        def build(seq: int) -> bytes:
            sent_at = to_datetime(self._clock.now())
            return encode(model(**envelope, **fields, seq=seq, sent_at=sent_at))

        try:
            seq = self.outbox.enqueue(self.topic(session, stream), build)
        except ValidationError as exc:
            self.counters["invalid_message"] += 1
            if stream.value not in self._logged:
                self._logged.add(stream.value)
                log.error(
                    "dropped an invalid %s message (%d errors, first at %s); further ones are "
                    "counted",
                    stream.value,
                    exc.error_count(),
                    ".".join(str(p) for p in exc.errors()[0]["loc"]),
                )
            return None
        if self._on_enqueue is not None:
            self._on_enqueue()
        return seq

    def device_status(self, status_fields: Mapping[str, Any]) -> bool:
        """Store a retained device status; False when the model refused it."""
        try:
            status = DeviceStatus(
                schema_=1,
                station=self.station,
                sent_at=to_datetime(self._clock.now()),
                **status_fields,
            )
        except ValidationError:
            self.counters["invalid_message"] += 1
            return False
        self.outbox.enqueue_state(device_status_topic(self.station, status.device), encode(status))
        if self._on_enqueue is not None:
            self._on_enqueue()
        return True


# --- batches ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Irregular:
    """Beats or heart-rate values with their own times."""

    t0: float
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    contact: str | None = None
    source: str = "hrs"
    energy_kj: int | None = None


@dataclass(slots=True)
class _Regular:
    """Regularly sampled values from ``t0``."""

    t0: float
    fs_hz: float
    values: list[float] = field(default_factory=list)
    flags: tuple[str, ...] = ()

    @property
    def end(self) -> float:
        return self.t0 + len(self.values) / self.fs_hz


@dataclass(slots=True)
class _DeviceBatches:
    rr: _Irregular | None = None
    hr: _Irregular | None = None
    eda: _Regular | None = None
    ecg: _Regular | None = None
    eda_expected: float | None = None  # where the next EDA sample should start
    eda_gap_pending: bool = False


@dataclass(slots=True)
class _LiveMetrics:
    """Per-session live state from the signal core's streaming windows."""

    hrv: HrvStream = field(default_factory=HrvStream)
    beat_device: str | None = None
    last: HrvLive | None = None
    last_accepted_rr: float | None = None
    beats_seen: int = 0
    beats_rejected: int = 0
    eda: EdaStream | None = None
    eda_device: str | None = None
    eda_last: EdaLive | None = None
    eda_fs_hz: float = 0.0
    next_due: float | None = None
    last_reading_t: float = -math.inf


@dataclass(slots=True)
class _Session:
    session_id: str
    devices: frozenset[str]
    batches: dict[str, _DeviceBatches] = field(default_factory=dict)
    live: _LiveMetrics = field(default_factory=_LiveMetrics)


class Batcher:
    """Batches readings per session, device and stream, and writes them through the writer.

    Parameters
    ----------
    writer
        Builds and stores the contract messages.
    batch_s
        Station seconds a batch spans before it is sent (contract: about one second).
    metrics_every_s
        Station seconds between live-metrics messages.
    upload_ecg
        Device ids whose raw ECG is uploaded (off by default: raw waveforms stay on the edge).
    eda_window_s
        Window of the live skin-conductance level and SCR rate (``EdaStream``).
    """

    def __init__(
        self,
        writer: ContractWriter,
        *,
        batch_s: float = 1.0,
        metrics_every_s: float = 5.0,
        upload_ecg: Iterable[str] = (),
        eda_window_s: float = 60.0,
    ) -> None:
        self._writer = writer
        self._batch_s = batch_s
        self._metrics_every_s = metrics_every_s
        self._upload_ecg = frozenset(upload_ecg)
        self._eda_window_s = eda_window_s
        self._sessions: dict[str, _Session] = {}
        self._device_session: dict[str, str] = {}
        #: Readings dropped: ``unassigned`` (no open session), ``rr_out_of_range``,
        #: ``hr_out_of_range``, ``eda_invalid``, ``eda_clipped``, ``ecg_out_of_range``,
        #: ``ecg_not_uploaded``.
        self.counters: Counter[str] = Counter()

    # --- sessions -----------------------------------------------------------------------

    def open_session(self, session_id: str, devices: Sequence[str], now: float) -> None:
        """Start routing the readings of ``devices`` to ``session_id``."""
        taken = [d for d in devices if d in self._device_session]
        if taken:
            raise ValueError(f"devices already in a session: {', '.join(taken)}")
        session = _Session(session_id, frozenset(devices))
        session.live.next_due = now + self._metrics_every_s
        self._sessions[session_id] = session
        for device in devices:
            self._device_session[device] = session_id

    def close_session(self, session_id: str) -> None:
        """Send everything still batched for the session and stop routing its devices."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        for device, batches in session.batches.items():
            self._flush_device(session, device, batches)
        for device in session.devices:
            self._device_session.pop(device, None)

    def flush_session(self, session_id: str) -> None:
        """Send everything batched for the session now, keeping it open (agent shutdown)."""
        session = self._sessions.get(session_id)
        if session is not None:
            for device, batches in session.batches.items():
                self._flush_device(session, device, batches)

    def session_of(self, device_id: str) -> str | None:
        """The open session ``device_id`` belongs to, if any."""
        return self._device_session.get(device_id)

    def live_values(self, session_id: str) -> dict[str, float]:
        """The latest live values of a session (for the station console and VR feed)."""
        session = self._sessions.get(session_id)
        return {} if session is None else _metric_values(session.live)

    # --- readings -----------------------------------------------------------------------

    def add(self, reading: Reading) -> None:
        """Route one reading to its device's session and batch it."""
        session_id = self._device_session.get(reading.device_id)
        if session_id is None:
            self.counters["unassigned"] += 1
            return
        session = self._sessions[session_id]
        t = _reading_time(reading)
        self._maybe_metrics(session, t)
        session.live.last_reading_t = max(session.live.last_reading_t, t)
        batches = session.batches.setdefault(reading.device_id, _DeviceBatches())
        if isinstance(reading, Beat):
            self._add_beat(session, batches, reading)
        elif isinstance(reading, HeartRate):
            self._add_hr(session, batches, reading)
        elif isinstance(reading, EdaSamples):
            self._add_eda(session, batches, reading)
        elif isinstance(reading, EcgSamples):
            self._add_ecg(session, batches, reading)
        elif isinstance(reading, DataGap):
            self._add_gap(session, reading)

    def tick(self, now: float) -> None:
        """Close batches older than ``batch_s``; send metrics for sessions whose data stalled.

        While data flows, metrics follow the readings' own times (every ``metrics_every_s`` of
        data time), so a busy or paused loop cannot skip or bunch them.
        """
        for session in list(self._sessions.values()):
            for device, batches in session.batches.items():
                self._flush_old(session, device, batches, now)
            live = session.live
            if now - live.last_reading_t > self._metrics_every_s + self._batch_s:
                self._maybe_metrics(session, now)

    def _maybe_metrics(self, session: _Session, t: float) -> None:
        live = session.live
        if live.next_due is None or t < live.next_due:
            return
        self._send_metrics(session, live.next_due)
        while live.next_due <= t:
            live.next_due += self._metrics_every_s

    # --- per stream ---------------------------------------------------------------------

    def _add_beat(self, session: _Session, batches: _DeviceBatches, beat: Beat) -> None:
        if not 0 < beat.rr_ms <= _MAX_RR_MS or not math.isfinite(beat.rr_ms):
            self.counters["rr_out_of_range"] += 1
            return
        batch = batches.rr
        if batch is not None and (
            beat.t - batch.t0 >= self._batch_s
            or beat.t < batch.times[-1]
            or beat.contact != batch.contact
            or beat.source != batch.source
            or len(batch.times) >= _MAX_BATCH_ITEMS
        ):
            self._send_rr(session.session_id, beat.device_id, batch)
            batch = None
        if batch is None:
            batch = batches.rr = _Irregular(t0=beat.t, contact=beat.contact, source=beat.source)
        batch.times.append(beat.t)
        batch.values.append(beat.rr_ms)
        self._live_beat(session, beat)

    def _add_hr(self, session: _Session, batches: _DeviceBatches, hr: HeartRate) -> None:
        if not 0 <= hr.hr_bpm <= _MAX_HR_BPM:
            self.counters["hr_out_of_range"] += 1
            return
        batch = batches.hr
        if batch is not None and (
            hr.t - batch.t0 >= self._batch_s
            or hr.t < batch.times[-1]
            or hr.contact != batch.contact
            or len(batch.times) >= _MAX_BATCH_ITEMS
        ):
            self._send_hr(session.session_id, hr.device_id, batch)
            batch = None
        if batch is None:
            batch = batches.hr = _Irregular(t0=hr.t, contact=hr.contact)
        batch.times.append(hr.t)
        batch.values.append(float(hr.hr_bpm))
        if hr.energy_kj is not None:
            batch.energy_kj = hr.energy_kj

    def _add_eda(self, session: _Session, batches: _DeviceBatches, chunk: EdaSamples) -> None:
        step = 1.0 / chunk.fs_hz
        device = chunk.device_id
        flags: list[str] = []
        if chunk.electrode_off:
            flags.append("contact_lost")
        if chunk.saturated:
            flags.append("clipped")
        if batches.eda_expected is not None and chunk.t0 - batches.eda_expected > 1.5 * step:
            batches.eda_gap_pending = True
        for i, raw_value in enumerate(chunk.eda_us):
            t = chunk.t0 + i * step
            value = raw_value
            if value is None or not math.isfinite(value) or value < 0:
                self.counters["eda_invalid"] += 1
                if batches.eda is not None:
                    self._send_eda(session.session_id, device, batches.eda)
                    batches.eda = None
                batches.eda_gap_pending = True
                continue
            sample_flags = list(flags)
            if value > _MAX_EDA_US:
                self.counters["eda_clipped"] += 1
                value = _MAX_EDA_US
                if "clipped" not in sample_flags:
                    sample_flags.append("clipped")
            batch = batches.eda
            if batch is not None and (
                abs(t - batch.end) > 0.5 * step
                or batch.fs_hz != chunk.fs_hz
                or tuple(f for f in batch.flags if f != "gap_before") != tuple(sample_flags)
                or batch.end - batch.t0 >= self._batch_s
            ):
                if abs(t - batch.end) > 1.5 * step:
                    batches.eda_gap_pending = True
                self._send_eda(session.session_id, device, batch)
                batch = batches.eda = None
            if batch is None:
                all_flags = (
                    (*sample_flags, "gap_before")
                    if batches.eda_gap_pending
                    else tuple(sample_flags)
                )
                batch = batches.eda = _Regular(t0=t, fs_hz=chunk.fs_hz, flags=all_flags)
                batches.eda_gap_pending = False
            batch.values.append(value)
            self._live_eda(session, device, chunk, value, gap=batches.eda_gap_pending)
        batches.eda_expected = chunk.t0 + len(chunk.eda_us) * step

    def _add_ecg(self, session: _Session, batches: _DeviceBatches, chunk: EcgSamples) -> None:
        if chunk.device_id not in self._upload_ecg:
            self.counters["ecg_not_uploaded"] += 1
            return
        step = 1.0 / chunk.fs_hz
        batch = batches.ecg
        if batch is not None and (
            abs(chunk.t0 - batch.end) > 0.5 * step
            or batch.fs_hz != chunk.fs_hz
            or batch.end - batch.t0 >= self._batch_s
        ):
            self._send_ecg(session.session_id, chunk.device_id, batch)
            batch = batches.ecg = None
        if batch is None:
            batch = batches.ecg = _Regular(t0=chunk.t0, fs_hz=chunk.fs_hz)
        for value in chunk.samples_uv:
            if -_ECG_LIMIT <= value < _ECG_LIMIT:
                batch.values.append(float(value))
            else:  # cannot happen for 3-byte samples; kept so a batch is never invalid
                self.counters["ecg_out_of_range"] += 1

    def _add_gap(self, session: _Session, gap: DataGap) -> None:
        event = GapEvent(
            t=to_datetime(gap.end),
            kind="gap",
            device=gap.device_id,
            start=to_datetime(gap.start),
            end=to_datetime(max(gap.end, gap.start)),
            reason=gap.reason,
        )
        self._writer.session_message(session.session_id, Stream.EVENTS, {"events": [event]})
        if gap.reason in ("link_lost", "sensor_reset", "watchdog") and (
            session.live.beat_device == gap.device_id
        ):
            session.live.hrv.reset()  # the stream's time is the RR sum: restart after a gap
            session.live.last_accepted_rr = None

    # --- flushing -------------------------------------------------------------------------

    def _flush_old(self, session: _Session, device: str, b: _DeviceBatches, now: float) -> None:
        sid = session.session_id
        if b.rr is not None and now - b.rr.t0 >= self._batch_s:
            self._send_rr(sid, device, b.rr)
            b.rr = None
        if b.hr is not None and now - b.hr.t0 >= self._batch_s:
            self._send_hr(sid, device, b.hr)
            b.hr = None
        if b.eda is not None and now - b.eda.t0 >= self._batch_s:
            self._send_eda(sid, device, b.eda)
            b.eda = None
        if b.ecg is not None and now - b.ecg.t0 >= self._batch_s:
            self._send_ecg(sid, device, b.ecg)
            b.ecg = None

    def _flush_device(self, session: _Session, device: str, b: _DeviceBatches) -> None:
        self._flush_old(session, device, b, math.inf)

    def _send_rr(self, session: str, device: str, batch: _Irregular) -> None:
        fields = {
            "device": device,
            "t0": to_datetime(batch.t0),
            "source": batch.source,
            "t_offset_ms": [_offset_ms(batch.t0, t) for t in batch.times],
            "rr_ms": batch.values,
            "contact": batch.contact,
        }
        self._writer.session_message(session, Stream.RR, fields)

    def _send_hr(self, session: str, device: str, batch: _Irregular) -> None:
        fields = {
            "device": device,
            "t0": to_datetime(batch.t0),
            "t_offset_ms": [_offset_ms(batch.t0, t) for t in batch.times],
            "hr_bpm": batch.values,
            "contact": batch.contact,
            "energy_kj": batch.energy_kj,
        }
        self._writer.session_message(session, Stream.HR, fields)

    def _send_eda(self, session: str, device: str, batch: _Regular) -> None:
        if not batch.values:
            return
        fields = {
            "device": device,
            "t0": to_datetime(batch.t0),
            "fs_hz": batch.fs_hz,
            "eda_us": batch.values,
            "flags": list(dict.fromkeys(batch.flags)),
        }
        self._writer.session_message(session, Stream.EDA, fields)

    def _send_ecg(self, session: str, device: str, batch: _Regular) -> None:
        if not batch.values:
            return
        fields = {
            "device": device,
            "t0": to_datetime(batch.t0),
            "fs_hz": batch.fs_hz,
            "ecg_uv": [int(v) for v in batch.values],
        }
        self._writer.session_message(session, Stream.ECG, fields)

    # --- live metrics ---------------------------------------------------------------------

    def _live_beat(self, session: _Session, beat: Beat) -> None:
        live = session.live
        if live.beat_device is None:
            live.beat_device = beat.device_id  # the first device that delivers beats
        if beat.device_id != live.beat_device:
            return
        live.beats_seen += 1
        rr = beat.rr_ms
        low, high = LIVE_RR_RANGE_MS
        previous = live.last_accepted_rr
        if not low <= rr <= high or (
            previous is not None and abs(rr - previous) > LIVE_RR_MAX_JUMP * previous
        ):
            live.beats_rejected += 1
            if previous is None or not low <= rr <= high:
                return
            # A jump: skip this beat but follow a lasting change of rate.
            live.last_accepted_rr = 0.5 * (previous + rr)
            return
        live.last_accepted_rr = rr
        live.last = live.hrv.push(rr)

    def _live_eda(
        self, session: _Session, device: str, chunk: EdaSamples, value: float, *, gap: bool
    ) -> None:
        live = session.live
        if live.eda_device is None:
            live.eda_device = device  # the first EDA device of the session
        if device != live.eda_device or chunk.electrode_off:
            return
        if live.eda is None or live.eda_fs_hz != chunk.fs_hz or gap:
            live.eda = EdaStream(chunk.fs_hz, window_s=self._eda_window_s)
            live.eda_fs_hz = chunk.fs_hz
        live.eda_last = live.eda.push(value)

    def _send_metrics(self, session: _Session, now: float) -> None:
        live = session.live
        values = _metric_values(live)
        live.beats_seen = live.beats_rejected = 0
        if not values:
            return
        versions = [x.algorithm_version for x in (live.last, live.eda_last) if x is not None]
        version = ":".join(versions) if versions else algorithm_version("edge_live")
        fields = {
            "t": to_datetime(now),
            "window_s": 60.0,
            "values": values,
            "algorithm_version": version,
        }
        self._writer.session_message(session.session_id, Stream.METRICS, fields)


_LEVELS: Final[dict[str, float]] = {"low": 0.0, "medium": 1.0, "high": 2.0}


def _metric_values(live: _LiveMetrics) -> dict[str, float]:
    values: dict[str, float] = {}
    last = live.last
    if last is not None:
        values["hr_bpm"] = last.hr_bpm
        values["mean_hr_bpm"] = last.mean_hr_bpm
        values["rmssd_ms"] = last.rmssd_ms
        values["coherence_ratio"] = last.last_coherence_ratio
        if math.isfinite(last.last_coherence_ratio):
            level = coherence_level(last.last_coherence_ratio)
            values["coherence_level"] = _LEVELS.get(level, math.nan)
    if live.beats_seen:
        values["beats_rejected_pct"] = 100.0 * live.beats_rejected / live.beats_seen
    if live.eda_last is not None:
        values["eda_scl_us"] = live.eda_last.scl_us
        values["eda_scr_per_min"] = live.eda_last.scr_per_min
    return {k: float(v) for k, v in values.items() if math.isfinite(v)}


def _reading_time(reading: Reading) -> float:
    if isinstance(reading, (EdaSamples, EcgSamples)):
        return reading.t0
    if isinstance(reading, DataGap):
        return reading.end
    return reading.t


def _offset_ms(t0: float, t: float) -> float:
    return max(0.0, round((t - t0) * 1000.0, 3))
