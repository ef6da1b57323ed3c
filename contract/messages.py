"""Payload models of the v1 MQTT contract (DESIGN §5), one per stream plus the two statuses.

Every session-stream payload carries the envelope: ``schema`` (contract version, 1),
``station``, ``session``, ``stream``, ``seq`` (counts the messages of its topic from 0 without
gaps and survives edge restarts, so ``(topic, seq)`` identifies a message), ``sent_at`` (edge
clock, UTC) and ``clock`` (the edge's estimate of its own offset and where it came from).
Status payloads are retained state rather than a stream: they carry ``sent_at`` but no ``seq``
(a last will is fixed at connect time and may never be sent, so a counter there could not be
gap-free); the newest ``sent_at`` wins.

Samples travel in batches of about one second, columnar: a batch start ``t0`` plus per-sample
offsets (irregular beats) or a sampling rate (regular signals). All floats are finite; every
list is bounded; unknown fields are rejected. Pure models; no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shuxin.contract.ids import DeviceId, FreeText, Label, SessionId, StationId, SubjectCode

SCHEMA_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({SCHEMA_VERSION})

#: Largest payload the gateway parses at all (bytes). A 130 Hz ECG second is ~1.5 kB.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: Most samples in one batch (a second of 1 kHz waveform with headroom).
MAX_SAMPLES: Final = 4096
#: Most beats in one RR batch (about one second of data; generous for replays).
MAX_BEATS: Final = 512
MAX_SEQ: Final = 2**53 - 1  # largest integer JSON carries exactly

Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
OffsetMs = Annotated[float, Field(ge=0.0, le=3_600_000.0)]


class _Model(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        str_max_length=512,
    )


def _to_utc(value: datetime | None) -> datetime | None:
    """Normalise an aware timestamp to UTC (the contract's only zone)."""
    return None if value is None else value.astimezone(UTC)


class ClockInfo(_Model):
    """The edge clock's estimated offset from true time, and where that estimate comes from."""

    offset_ms: float = Field(
        ge=-86_400_000, le=86_400_000, description="edge clock minus reference clock (ms)"
    )
    source: Literal["ntp", "gateway", "gps", "rtc", "none"] = Field(
        description="what the offset was estimated against; 'none' if never synchronised"
    )
    uncertainty_ms: float | None = Field(
        default=None, ge=0, le=86_400_000, description="half-width of the estimate (ms)"
    )


class _Envelope(_Model):
    schema_: Literal[1] = Field(alias="schema", description="contract version")
    station: StationId
    session: SessionId
    seq: Seq = Field(description="message counter of this topic, from 0, no gaps")
    sent_at: AwareDatetime = Field(description="edge time of publishing (UTC)")
    clock: ClockInfo

    model_config = ConfigDict(populate_by_name=True)

    utc_times = field_validator("sent_at")(_to_utc)


class ProtocolRef(_Model):
    """Which protocol definition a session follows."""

    id: Label
    version: Label


class PhasePlan(_Model):
    """One planned phase of a protocol, as the edge announced it at session start."""

    name: Label
    kind: Literal["baseline", "training", "vr", "recovery", "assessment", "rest"]
    duration_s: float = Field(gt=0, le=4 * 3600)
    pacer_bpm: float | None = Field(default=None, ge=2, le=30, description="breaths/min")
    inhale_exhale_ratio: float | None = Field(default=None, gt=0, le=4)
    vr_scene: Label | None = None


class LifecycleMessage(_Envelope):
    """Session start, end, abort or timeout. The subject is a pseudonymous code only."""

    stream: Literal["lifecycle"]
    event: Literal["start", "end", "abort", "timeout"]
    subject: SubjectCode
    protocol: ProtocolRef
    phases: list[PhasePlan] = Field(default_factory=list, max_length=32)
    devices: list[DeviceId] = Field(default_factory=list, max_length=8)
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    reason: Label | None = Field(default=None, description="why a session aborted or timed out")

    utc_times = field_validator("sent_at", "started_at", "ended_at")(_to_utc)

    @model_validator(mode="after")
    def _check_lifecycle(self) -> LifecycleMessage:
        if self.event == "start" and not self.phases:
            raise ValueError("a start message lists the protocol's phases")
        if self.event != "start" and self.ended_at is None:
            raise ValueError(f"an {self.event!r} message needs ended_at")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


class _Batch(_Envelope):
    device: DeviceId
    t0: AwareDatetime = Field(description="time of the batch's first sample (edge clock, UTC)")

    utc_times = field_validator("sent_at", "t0")(_to_utc)


def _same_length(name_a: str, a: list[object], name_b: str, b: list[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length")


class RrMessage(_Batch):
    """Beat-to-beat intervals as the sensor reported them (uncorrected)."""

    stream: Literal["rr"]
    source: Literal["hrs", "ecg", "ppi", "ppg", "sim", "replay"] = Field(
        description="HRS RR field, R-peaks from ECG, Polar PPI, pulses from PPG, or simulated"
    )
    t_offset_ms: list[OffsetMs] = Field(max_length=MAX_BEATS, description="beat time − t0 (ms)")
    rr_ms: list[Annotated[float, Field(gt=0, le=5000)]] = Field(max_length=MAX_BEATS)
    contact: Literal["detected", "not_detected", "unsupported"] | None = None

    @model_validator(mode="after")
    def _check_columns(self) -> RrMessage:
        _same_length("t_offset_ms", list(self.t_offset_ms), "rr_ms", list(self.rr_ms))
        if any(b < a for a, b in zip(self.t_offset_ms, self.t_offset_ms[1:], strict=False)):
            raise ValueError("t_offset_ms must not decrease")
        return self


class HrMessage(_Batch):
    """Heart rate values as the sensor reported them."""

    stream: Literal["hr"]
    t_offset_ms: list[OffsetMs] = Field(max_length=MAX_BEATS)
    hr_bpm: list[Annotated[float, Field(ge=0, le=300)]] = Field(max_length=MAX_BEATS)
    contact: Literal["detected", "not_detected", "unsupported"] | None = None
    energy_kj: int | None = Field(default=None, ge=0, le=65535)

    @model_validator(mode="after")
    def _check_columns(self) -> HrMessage:
        _same_length("t_offset_ms", list(self.t_offset_ms), "hr_bpm", list(self.hr_bpm))
        return self


class _Regular(_Batch):
    fs_hz: float = Field(gt=0, le=2000, description="sampling rate (Hz)")


class EdaMessage(_Regular):
    """Skin conductance samples in microsiemens, regularly sampled from ``t0``."""

    stream: Literal["eda"]
    eda_us: list[Annotated[float, Field(ge=0, le=200)]] = Field(
        min_length=1, max_length=MAX_SAMPLES
    )
    flags: list[Literal["contact_lost", "clipped", "gap_before"]] = Field(
        default_factory=list, max_length=3
    )


class EcgMessage(_Regular):
    """Raw ECG in microvolts (Polar PMD), regularly sampled from ``t0``. Edge-only by default."""

    stream: Literal["ecg"]
    ecg_uv: list[Annotated[int, Field(ge=-(2**23), le=2**23 - 1)]] = Field(
        min_length=1, max_length=MAX_SAMPLES
    )


class PpgMessage(_Regular):
    """Raw PPG in sensor units, regularly sampled from ``t0``. Edge-only by default."""

    stream: Literal["ppg"]
    ppg: list[Annotated[float, Field(ge=-(2**31), le=2**31)]] = Field(
        min_length=1, max_length=MAX_SAMPLES
    )


MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class MetricsMessage(_Envelope):
    """Live metrics the edge computed for feedback (the gateway recomputes summaries)."""

    stream: Literal["metrics"]
    t: AwareDatetime = Field(description="end of the window the values describe")
    window_s: float = Field(gt=0, le=3600)
    values: dict[MetricName, float] = Field(max_length=32)
    algorithm_version: Label

    utc_times = field_validator("sent_at", "t")(_to_utc)


class _Event(_Model):
    t: AwareDatetime

    utc_times = field_validator("t")(_to_utc)


class PhaseEvent(_Event):
    """A protocol phase began or ended."""

    kind: Literal["phase_start", "phase_end"]
    phase: Label
    index: int = Field(ge=0, le=31)


class MarkerEvent(_Event):
    """A marker set by staff (e.g. ``movement``, ``talking``)."""

    kind: Literal["marker"]
    label: Label


class VrEvent(_Event):
    """An event posted by the VR client (scene start/end, interaction)."""

    kind: Literal["vr_event"]
    scene: Label
    label: Label


class RatingEvent(_Event):
    """A before/after self-rated tension on a 0–10 scale."""

    kind: Literal["rating"]
    when: Literal["before", "after"]
    scale: Literal["tension_0_10"] = "tension_0_10"
    value: int = Field(ge=0, le=10)


class NoteEvent(_Event):
    """A staff note. Bounded, screened for long numbers; staff must not write names."""

    kind: Literal["note"]
    text: FreeText


class GapEvent(_Event):
    """A device's data is missing between ``start`` and ``end`` (link or contact lost)."""

    kind: Literal["gap"]
    device: DeviceId
    start: AwareDatetime
    end: AwareDatetime
    reason: Literal["link_lost", "contact_lost", "watchdog", "sensor_reset"]

    utc_times = field_validator("t", "start", "end")(_to_utc)

    @model_validator(mode="after")
    def _check_order(self) -> GapEvent:
        if self.end < self.start:
            raise ValueError("gap end is before its start")
        return self


Event = Annotated[
    PhaseEvent | MarkerEvent | VrEvent | RatingEvent | NoteEvent | GapEvent,
    Field(discriminator="kind"),
]


class EventsMessage(_Envelope):
    """Phase changes, markers, VR events, ratings, notes and gaps."""

    stream: Literal["events"]
    events: list[Event] = Field(min_length=1, max_length=64)


SessionMessage = Annotated[
    LifecycleMessage
    | RrMessage
    | HrMessage
    | EdaMessage
    | EcgMessage
    | PpgMessage
    | MetricsMessage
    | EventsMessage,
    Field(discriminator="stream"),
]


class StationStatus(_Model):
    """Retained presence of a station's edge agent; the last will says ``offline``."""

    schema_: Literal[1] = Field(alias="schema")
    station: StationId
    state: Literal["online", "offline"]
    sent_at: AwareDatetime
    agent_version: Label | None = None
    outbox_backlog: int | None = Field(default=None, ge=0)
    outbox_dropped: int | None = Field(default=None, ge=0)
    reconnects: int | None = Field(default=None, ge=0)

    model_config = ConfigDict(populate_by_name=True)

    utc_times = field_validator("sent_at")(_to_utc)


class DeviceStatus(_Model):
    """Retained state of one sensor at a station."""

    schema_: Literal[1] = Field(alias="schema")
    station: StationId
    device: DeviceId
    sent_at: AwareDatetime
    profile: Label
    connected: bool
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    contact: Literal["detected", "not_detected", "unsupported"] | None = None
    firmware: Label | None = None
    rssi_dbm: int | None = Field(default=None, ge=-127, le=20)

    model_config = ConfigDict(populate_by_name=True)

    utc_times = field_validator("sent_at")(_to_utc)
