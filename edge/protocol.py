"""Session protocols: the validated model of ``firmware_configs/protocols/*.yaml``.

A protocol is what station staff pick before a session: an ordered list of phases (rest
baseline, paced resonance breathing, a VR scene, recovery, a stepped resonance-frequency
assessment), each with a duration and, for paced phases, the breathing pacer's rate and its
inhale:exhale ratio. ``load_protocol`` / ``load_protocols`` read files into frozen pydantic
models; every failure is a :class:`ProtocolError` naming the file and the field.

Pure functions of the protocol live here too: where a session is at a given time
(:meth:`ProtocolDefinition.phase_at`) and the pacer's breathing phase (:func:`pacer_at`).
This module must not do I/O beyond reading the YAML files, read clocks, or talk to devices.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shuxin.contract.ids import Label
from shuxin.contract.messages import PhasePlan, ProtocolRef
from shuxin.edge import yaml_files
from shuxin.edge.errors import EdgeError

PROTOCOL_FORMAT_VERSION: Final = 1
PROTOCOLS_ENV: Final = "SHUXIN_PROTOCOLS"

PhaseKind = Literal["baseline", "training", "vr", "recovery", "assessment", "rest"]
#: Phases measured with spontaneous breathing: a pacer there would change what is measured.
SPONTANEOUS_KINDS: Final = frozenset({"baseline", "recovery", "rest"})
#: Phases that only make sense with a pacer.
PACED_KINDS: Final = frozenset({"training", "assessment"})

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,47}$")]


class ProtocolError(EdgeError):
    """A protocol file is missing, not YAML, or breaks the model; the message names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Model):
    """A display name in Chinese (shown to staff) and English (docs, logs)."""

    zh: Annotated[str, Field(min_length=1, max_length=64)]
    en: Annotated[str, Field(min_length=1, max_length=64)]


class Description(_Model):
    """A longer description for staff (zh) and documentation (en)."""

    zh: Annotated[str, Field(min_length=1, max_length=500)]
    en: Annotated[str, Field(min_length=1, max_length=500)]


class ProtocolPhase(_Model):
    """One phase of a protocol.

    ``inhale_exhale_ratio`` is inhale time divided by exhale time (0.67 = 4 s in, 6 s out at
    6 breaths/min); it is required with a pacer and refused without one.
    """

    id: Slug
    names: Names
    kind: PhaseKind
    duration_s: Annotated[float, Field(gt=0, le=4 * 3600)]
    pacer_bpm: Annotated[float, Field(ge=2, le=30)] | None = None
    inhale_exhale_ratio: Annotated[float, Field(gt=0, le=4)] | None = None
    vr_scene: Label | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind in PACED_KINDS and self.pacer_bpm is None:
            raise ValueError(f"a {self.kind} phase needs pacer_bpm")
        if self.kind in SPONTANEOUS_KINDS and self.pacer_bpm is not None:
            raise ValueError(f"a {self.kind} phase measures spontaneous breathing: no pacer_bpm")
        if (self.pacer_bpm is None) != (self.inhale_exhale_ratio is None):
            raise ValueError("give inhale_exhale_ratio together with pacer_bpm, and only then")
        if (self.kind == "vr") != (self.vr_scene is not None):
            raise ValueError("vr_scene is required for a vr phase and only for it")
        return self

    def plan(self) -> PhasePlan:
        """This phase as the contract's lifecycle ``start`` message lists it."""
        return PhasePlan(
            name=self.id,
            kind=self.kind,
            duration_s=self.duration_s,
            pacer_bpm=self.pacer_bpm,
            inhale_exhale_ratio=self.inhale_exhale_ratio,
            vr_scene=self.vr_scene,
        )


@dataclass(frozen=True, slots=True)
class PhasePosition:
    """Where a session is: phase ``index``, seconds into it, and seconds left in it."""

    index: int
    phase: ProtocolPhase
    elapsed_s: float
    remaining_s: float


class ProtocolDefinition(_Model):
    """One ``firmware_configs/protocols/<id>.yaml`` file."""

    format: Literal[1]
    id: Slug
    version: Label
    names: Names
    description: Description | None = None
    phases: tuple[ProtocolPhase, ...] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _unique_phase_ids(self) -> Self:
        ids = [p.id for p in self.phases]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"phase id listed twice: {', '.join(duplicated)}")
        if self.total_s > 4 * 3600:
            raise ValueError("a protocol lasts at most 4 hours")
        return self

    @property
    def total_s(self) -> float:
        """Planned duration of the whole protocol (s)."""
        return math.fsum(p.duration_s for p in self.phases)

    def ref(self) -> ProtocolRef:
        """The contract's protocol reference (id and version)."""
        return ProtocolRef(id=self.id, version=self.version)

    def plans(self) -> list[PhasePlan]:
        """Every phase as the lifecycle ``start`` message lists it."""
        return [p.plan() for p in self.phases]

    def phase_starts_s(self) -> tuple[float, ...]:
        """Start of every phase, seconds from the session start."""
        starts: list[float] = []
        total = 0.0
        for phase in self.phases:
            starts.append(total)
            total += phase.duration_s
        return tuple(starts)

    def phase_at(self, elapsed_s: float) -> PhasePosition | None:
        """The phase at ``elapsed_s`` seconds after the start; None before 0 or after the end."""
        if elapsed_s < 0:
            return None
        for index, (start, phase) in enumerate(
            zip(self.phase_starts_s(), self.phases, strict=True)
        ):
            if elapsed_s < start + phase.duration_s:
                into = elapsed_s - start
                return PhasePosition(index, phase, into, phase.duration_s - into)
        return None


@dataclass(frozen=True, slots=True)
class PacerState:
    """The breathing pacer at one instant.

    ``breath`` is ``inhale`` or ``exhale``; ``progress`` runs 0 → 1 through that half;
    ``cycle_fraction`` runs 0 → 1 through the whole breath (inhale first).
    """

    breath: Literal["inhale", "exhale"]
    progress: float
    cycle_fraction: float
    pacer_bpm: float
    period_s: float
    inhale_s: float
    exhale_s: float


def pacer_at(pacer_bpm: float, inhale_exhale_ratio: float, t_s: float) -> PacerState:
    """The pacer state ``t_s`` seconds after the paced phase began (a breath starts at 0 s).

    Parameters
    ----------
    pacer_bpm
        Breaths per minute, > 0.
    inhale_exhale_ratio
        Inhale time / exhale time, > 0.
    t_s
        Seconds since the paced phase began, ≥ 0.
    """
    if not (pacer_bpm > 0 and inhale_exhale_ratio > 0 and t_s >= 0):
        raise ValueError("pacer_bpm and inhale_exhale_ratio must be > 0 and t_s >= 0")
    period = 60.0 / pacer_bpm
    inhale = period * inhale_exhale_ratio / (1.0 + inhale_exhale_ratio)
    exhale = period - inhale
    into = math.fmod(t_s, period)
    fraction = into / period
    if into < inhale:
        return PacerState("inhale", into / inhale, fraction, pacer_bpm, period, inhale, exhale)
    return PacerState(
        "exhale", (into - inhale) / exhale, fraction, pacer_bpm, period, inhale, exhale
    )


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must be a mapping; raise :class:`ProtocolError` otherwise."""
    return yaml_files.read_yaml_mapping(path, ProtocolError)


def format_validation_error(error: ValidationError) -> str:
    """``field.path: problem; …`` for every error, without repeating the input."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in item["loc"]) or "(file)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def load_protocol(path: str | os.PathLike[str]) -> ProtocolDefinition:
    """Read and validate one protocol file; its ``id`` must equal the file stem.

    Raises
    ------
    ProtocolError
        Unreadable, not YAML, not a mapping, breaks the model (every ``field: problem`` is
        listed), or an id that differs from the file name.
    """
    file = Path(path)
    data = read_yaml_mapping(file)
    try:
        protocol = ProtocolDefinition.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(str(file), format_validation_error(exc)) from exc
    if protocol.id != file.stem:
        raise ProtocolError(str(file), f"id: {protocol.id!r} must equal the file name")
    return protocol


def load_protocols(directory: str | os.PathLike[str]) -> dict[str, ProtocolDefinition]:
    """Load every ``*.yaml`` in ``directory``, keyed by protocol id, in id order."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ProtocolError(str(folder), "not a directory of protocols")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ProtocolError(str(folder), "no *.yaml protocols found")
    return {p.id: p for p in (load_protocol(f) for f in files)}


def default_protocols_dir() -> Path:
    """``$SHUXIN_PROTOCOLS``, else the checkout's ``firmware_configs/protocols`` (found from
    this file's real location), else the one under the current directory."""
    override = os.environ.get(PROTOCOLS_ENV)
    if override:
        return Path(override)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "firmware_configs" / "protocols"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "firmware_configs" / "protocols"
