"""Protocol files: every shipped YAML loads; the model refuses inconsistent phases; the pacer."""

from __future__ import annotations

from pathlib import Path

import pytest

from shuxin.edge.protocol import (
    ProtocolError,
    default_protocols_dir,
    load_protocol,
    load_protocols,
    pacer_at,
)

PROTOCOLS = Path(__file__).resolve().parents[3] / "firmware_configs" / "protocols"

REQUIRED = {"rest-resonance-recovery", "resonance-assessment", "vr-relaxation", "rest-only"}


def test_every_shipped_protocol_loads() -> None:
    protocols = load_protocols(PROTOCOLS)
    assert set(protocols) >= REQUIRED
    assert len(protocols) == len(list(PROTOCOLS.glob("*.yaml")))
    for protocol in protocols.values():
        assert protocol.names.zh
        assert protocol.names.en
        assert all(p.names.zh and p.names.en for p in protocol.phases)
        # The contract's PhasePlan accepts every phase (names are labels, limits hold).
        assert len(protocol.plans()) == len(protocol.phases)


def test_default_dir_is_the_checkout() -> None:
    assert default_protocols_dir().resolve() == PROTOCOLS.resolve()


def test_rest_resonance_recovery_matches_the_brief() -> None:
    p = load_protocol(PROTOCOLS / "rest-resonance-recovery.yaml")
    assert [(ph.kind, ph.duration_s, ph.pacer_bpm) for ph in p.phases] == [
        ("baseline", 300, None),
        ("training", 600, 6.0),
        ("recovery", 300, None),
    ]
    assert p.total_s == 1200


def test_resonance_assessment_steps_down_from_6_5_to_4_5() -> None:
    p = load_protocol(PROTOCOLS / "resonance-assessment.yaml")
    assert p.phases[0].kind == "baseline"
    steps = [ph for ph in p.phases if ph.kind == "assessment"]
    assert [s.pacer_bpm for s in steps] == [6.5, 6.0, 5.5, 5.0, 4.5]
    assert {s.duration_s for s in steps} == {120}


def test_vr_and_rest_only() -> None:
    vr = load_protocol(PROTOCOLS / "vr-relaxation.yaml")
    assert [ph.kind for ph in vr.phases] == ["baseline", "vr", "recovery"]
    assert vr.phases[1].vr_scene
    rest = load_protocol(PROTOCOLS / "rest-only.yaml")
    assert [(ph.kind, ph.duration_s) for ph in rest.phases] == [("rest", 300)]


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


HEAD = """format: 1
id: {id}
version: "1"
names: {{zh: 测试, en: Test}}
phases:
"""


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        ("{id: ph, names: {zh: a, en: a}, kind: training, duration_s: 60}", "needs pacer_bpm"),
        (
            "{id: ph, names: {zh: a, en: a}, kind: baseline, duration_s: 60, pacer_bpm: 6,"
            " inhale_exhale_ratio: 1}",
            "spontaneous",
        ),
        (
            "{id: ph, names: {zh: a, en: a}, kind: training, duration_s: 60, pacer_bpm: 6}",
            "inhale_exhale_ratio",
        ),
        ("{id: ph, names: {zh: a, en: a}, kind: vr, duration_s: 60}", "vr_scene"),
        ("{id: ph, names: {zh: a, en: a}, kind: rest, duration_s: 0}", "duration_s"),
        ("{id: ph, names: {zh: a, en: a}, kind: nap, duration_s: 60}", "kind"),
        ("{id: A B, names: {zh: a, en: a}, kind: rest, duration_s: 60}", "phases.0.id"),
    ],
)
def test_inconsistent_phases_are_refused_with_the_field(
    tmp_path: Path, phase: str, message: str
) -> None:
    path = _write(tmp_path, "bad", HEAD.format(id="bad") + f"  - {phase}\n")
    with pytest.raises(ProtocolError, match=message) as info:
        load_protocol(path)
    assert str(path) in str(info.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="must equal the file name"):
        load_protocol(
            _write(
                tmp_path,
                "other",
                HEAD.format(id="right") + "  - {id: ph, names: {zh: a, en: a}, kind: rest,"
                " duration_s: 5}\n",
            )
        )
    with pytest.raises(ProtocolError, match="given twice"):
        load_protocol(_write(tmp_path, "dup", "format: 1\nformat: 1\n"))
    with pytest.raises(ProtocolError, match="mapping"):
        load_protocol(_write(tmp_path, "list", "- 1\n"))
    with pytest.raises(ProtocolError, match="phase id listed twice"):
        load_protocol(
            _write(
                tmp_path,
                "twice",
                HEAD.format(id="twice")
                + "  - {id: ph, names: {zh: a, en: a}, kind: rest, duration_s: 5}\n" * 2,
            )
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ProtocolError, match=r"no \*\.yaml"):
        load_protocols(empty)


def test_phase_at_walks_the_phases() -> None:
    p = load_protocol(PROTOCOLS / "rest-resonance-recovery.yaml")
    assert p.phase_at(-1) is None
    first = p.phase_at(0)
    assert first is not None
    assert (first.index, first.elapsed_s) == (0, 0)
    mid = p.phase_at(450)
    assert mid is not None
    assert (mid.index, mid.elapsed_s, mid.remaining_s) == (1, 150, 450)
    assert p.phase_at(1199.5) is not None
    assert p.phase_at(1200) is None


def test_pacer_splits_each_breath_by_the_ratio() -> None:
    # 6 breaths/min with inhale/exhale 2/3 -> 10 s breath, 4 s in, 6 s out.
    start = pacer_at(6.0, 2 / 3, 0.0)
    assert (start.breath, start.progress) == ("inhale", 0.0)
    assert start.period_s == pytest.approx(10.0)
    assert start.inhale_s == pytest.approx(4.0)
    half_in = pacer_at(6.0, 2 / 3, 2.0)
    assert half_in.breath == "inhale"
    assert half_in.progress == pytest.approx(0.5)
    out = pacer_at(6.0, 2 / 3, 7.0)
    assert out.breath == "exhale"
    assert out.progress == pytest.approx(0.5)
    assert out.cycle_fraction == pytest.approx(0.7)
    # The next breath starts again with an inhale.
    assert pacer_at(6.0, 2 / 3, 10.5).breath == "inhale"
    with pytest.raises(ValueError, match="must be > 0"):
        pacer_at(0.0, 1.0, 1.0)
