"""`shuxin analyze` end to end through the real dispatcher, on files it writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shuxin.cli.main import main
from shuxin.signal.hrv_summary import hrv_summary
from shuxin.signal.rr_simulate import rr_simulate

REQUIRED_RR_KEYS = {
    "n_beats",
    "duration_s",
    "artifact_pct",
    "mean_rr_ms",
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "ln_rmssd",
    "pnn50_pct",
    "vlf_ms2",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "lf_nu",
    "hf_nu",
    "lf_ms2_lomb",
    "hf_ms2_lomb",
    "lf_hf_lomb",
    "sd1_ms",
    "sd2_ms",
    "sampen",
    "dfa_alpha1",
    "dfa_alpha2",
    "baevsky_si",
    "stress_index",
    "coherence_ratio",
    "resp_rate_bpm",
    "algorithm_version",
    "corrections",
}


@pytest.fixture(scope="module")
def simulated() -> np.ndarray:
    sim = rr_simulate(400, np.random.default_rng(42), ectopic=[100], missed=[200])
    return sim.rr_ms


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["analyze", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rr_json_has_every_documented_key(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rr.txt"
    np.savetxt(path, simulated, fmt="%.3f")
    result = _run_json(capsys, "--rr", str(path))
    assert set(result) >= REQUIRED_RR_KEYS
    assert result["rr_unit"] == "ms"
    expected = hrv_summary(np.loadtxt(path))
    # The CLI only formats: its numbers are the signal core's, to float round-trip precision.
    assert result["rmssd_ms"] == pytest.approx(expected.rmssd_ms, rel=1e-12)
    assert result["n_beats"] == expected.n_beats
    kinds = {c["index"]: c["kind"] for c in result["corrections"]}  # type: ignore[union-attr]
    assert kinds.get(200) == "missed"
    assert kinds.get(100) == "ectopic"


def test_seconds_are_detected_and_kubios_two_columns_read(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    times = np.cumsum(simulated) / 1000.0
    kubios = tmp_path / "kubios.txt"
    kubios.write_text(
        "# exported RR\nTime(s)\tRR(s)\n"
        + "".join(f"{t:.3f}\t{rr / 1000:.6f}\n" for t, rr in zip(times, simulated, strict=True)),
        encoding="utf-8",
    )
    from_seconds = _run_json(capsys, "--rr", str(kubios))
    assert from_seconds["rr_unit"] == "s"
    ms = tmp_path / "rr_ms.txt"
    np.savetxt(ms, simulated, fmt="%.6f")
    from_ms = _run_json(capsys, "--rr", str(ms))
    # The seconds file keeps RR to 1 µs (0.001 ms), so RMSSD may differ at the 1e-6 level.
    assert from_seconds["rmssd_ms"] == pytest.approx(from_ms["rmssd_ms"], rel=1e-5)


def test_csv_column_and_unit_override(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "beats.csv"
    path.write_text(
        "t_s,rr\n" + "".join(f"{i},{rr:.2f}\n" for i, rr in enumerate(simulated)), "utf-8"
    )
    result = _run_json(capsys, "--rr", str(path), "--column", "rr", "--unit", "ms")
    assert result["rr_unit_detected"] is False
    assert result["n_beats_input"] == simulated.size


def test_no_correct_analyses_the_series_as_given(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rr.txt"
    np.savetxt(path, simulated, fmt="%.3f")
    raw = _run_json(capsys, "--rr", str(path), "--no-correct")
    assert raw["n_beats"] == simulated.size
    assert raw["corrections"] == []
    expected = hrv_summary(np.loadtxt(path), correct=False)
    assert raw["rmssd_ms"] == pytest.approx(expected.rmssd_ms, rel=1e-12)


def test_table_output_is_bilingual_with_units(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rr.txt"
    np.savetxt(path, simulated, fmt="%.3f")
    assert main(["analyze", "--rr", str(path)]) == 0
    out = capsys.readouterr().out
    assert "平均心率 / mean HR" in out
    assert " bpm" in out
    assert "RMSSD" in out


def test_windowed_output_jsonl_and_csv(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rr.txt"
    np.savetxt(path, simulated, fmt="%.3f")
    assert main(["analyze", "--rr", str(path), "--window", "120", "--step", "60"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["window_start_s"] for r in rows] == [0.0, 60.0, 120.0, 180.0, 240.0]
    # A window holds the beats that END inside it, so it may reach back one interval (< 2 s).
    assert all(118.0 <= r["duration_s"] <= 122.0 for r in rows)
    out = tmp_path / "w.csv"
    assert (
        main(
            [
                "analyze",
                "--rr",
                str(path),
                "--window",
                "120",
                "--step",
                "120",
                "--format",
                "csv",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("window_start_s,window_end_s,n_beats")
    assert len(lines) == 1 + 3


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("800\n810\nabc\n790\n", ":3: 'abc' is not a number"),
        ("800\n-5\n790\n", "must be > 0"),
        ("# nothing\n", "no numeric values"),
        ("800\ninf\n", "not a finite number"),
    ],
)
def test_bad_files_name_the_line_and_problem(
    tmp_path: Path, content: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    assert main(["analyze", "--rr", str(path)]) == 2
    assert fragment in capsys.readouterr().err


def test_missing_file_and_missing_fs_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", "--rr", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["analyze", "--ecg", str(tmp_path / "nope.txt")]) == 2
    assert "needs --fs" in capsys.readouterr().err


def test_too_short_recording_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.txt"
    path.write_text("800\n810\n", encoding="utf-8")
    assert main(["analyze", "--rr", str(path)]) == 2
    assert "short.txt" in capsys.readouterr().err


def test_eda_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shuxin.signal.eda_simulate import eda_simulate

    sim = eda_simulate(300.0, 8.0, np.random.default_rng(3))
    path = tmp_path / "eda.txt"
    np.savetxt(path, sim.eda_us, fmt="%.5f")
    result = _run_json(capsys, "--eda", str(path), "--fs", "8")
    for key in (
        "scl_mean_us",
        "scl_slope_us_per_min",
        "scr_count",
        "scr_per_min",
        "scr_amp_mean_us",
    ):
        assert key in result
    assert result["scl_mean_us"] == pytest.approx(float(np.mean(sim.eda_us)), rel=0.1)


def test_implausible_intervals_are_reported_as_short_or_long(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    rr = simulated.copy()
    rr[50] = 2600.0  # a dropout: far too long to be one beat
    rr[150] = 180.0  # far too short to be a heartbeat
    path = tmp_path / "rr.txt"
    np.savetxt(path, rr, fmt="%.3f")
    result = _run_json(capsys, "--rr", str(path))
    kinds = {c["index"]: c["kind"] for c in result["corrections"]}  # type: ignore[union-attr]
    assert set(kinds.values()) <= {"ectopic", "long", "short", "missed", "extra"}
    assert kinds[50] in ("long", "missed")
    assert kinds[150] in ("short", "extra")


def test_ecg_file_detects_beats_then_analyses(
    tmp_path: Path, simulated: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    from shuxin.signal.ecg_simulate import ecg_simulate

    clean = rr_simulate(300, np.random.default_rng(9)).rr_ms
    ecg = ecg_simulate(clean, 130.0, np.random.default_rng(10))
    path = tmp_path / "ecg.csv"
    path.write_text(
        "t_s,ecg_mv\n" + "".join(f"{i / 130:.4f},{v:.5f}\n" for i, v in enumerate(ecg.ecg_mv)),
        encoding="utf-8",
    )
    result = _run_json(capsys, "--ecg", str(path), "--column", "ecg_mv", "--fs", "130")
    # Clean simulated ECG: every R peak is found (ecg_peaks reaches sensitivity/PPV 1.0 here).
    assert result["n_peaks"] == clean.size + 1
    assert result["mean_rr_ms"] == pytest.approx(float(np.mean(clean)), rel=0.005)
