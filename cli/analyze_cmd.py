"""`shuxin analyze`: HRV, biofeedback and EDA metrics for recorded files.

For counselors, researchers and tests. Reads RR, ECG, PPG or EDA files (``analyze_io``), runs
the signal core (``hrv_report``, ``eda_summary``, the beat detectors) and prints a readable
zh-CN/English table or one JSON object. Windowed mode writes one row per window (JSON lines or
CSV) for long recordings. Argument handling and presentation only: no metric is computed here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

_RR_KEYS: tuple[tuple[str, str, str, str], ...] = (
    # (json key, zh label, en label, unit)
    ("n_beats", "心搏数", "beats", ""),
    ("duration_s", "时长", "duration", "s"),
    ("artifact_pct", "伪迹比例", "artefacts", "%"),
    ("mean_rr_ms", "平均RR间期", "mean RR", "ms"),
    ("mean_hr_bpm", "平均心率", "mean HR", "bpm"),
    ("sdnn_ms", "SDNN", "SDNN", "ms"),
    ("rmssd_ms", "RMSSD", "RMSSD", "ms"),
    ("ln_rmssd", "ln RMSSD", "ln RMSSD", "ln(ms)"),
    ("pnn50_pct", "pNN50", "pNN50", "%"),
    ("vlf_ms2", "极低频功率 VLF", "VLF power", "ms²"),
    ("lf_ms2", "低频功率 LF", "LF power", "ms²"),
    ("hf_ms2", "高频功率 HF", "HF power", "ms²"),
    ("lf_hf", "LF/HF", "LF/HF", ""),
    ("lf_nu", "LF 标准化", "LF n.u.", "n.u."),
    ("hf_nu", "HF 标准化", "HF n.u.", "n.u."),
    ("lf_ms2_lomb", "LF (Lomb)", "LF (Lomb)", "ms²"),
    ("hf_ms2_lomb", "HF (Lomb)", "HF (Lomb)", "ms²"),
    ("lf_hf_lomb", "LF/HF (Lomb)", "LF/HF (Lomb)", ""),
    ("sd1_ms", "庞加莱 SD1", "Poincaré SD1", "ms"),
    ("sd2_ms", "庞加莱 SD2", "Poincaré SD2", "ms"),
    ("sampen", "样本熵", "sample entropy", ""),
    ("dfa_alpha1", "DFA α1", "DFA α1", ""),
    ("dfa_alpha2", "DFA α2", "DFA α2", ""),
    ("baevsky_si", "Baevsky 压力指数", "Baevsky SI", ""),
    ("stress_index", "压力指数 (√SI)", "stress index (√SI)", ""),
    ("pns_index", "副交感指数 (Kubios式)", "PNS index (Kubios-style)", ""),
    ("sns_index", "交感指数 (Kubios式)", "SNS index (Kubios-style)", ""),
    ("coherence_ratio", "心率协调比", "coherence ratio", ""),
    ("resp_rate_bpm", "呼吸频率", "breathing rate", "次/min"),
)

_EDA_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("duration_s", "时长", "duration", "s"),
    ("valid_fraction", "有效数据比例", "valid fraction", ""),
    ("scl_mean_us", "平均皮肤电导水平 SCL", "mean SCL", "µS"),
    ("scl_slope_us_per_min", "SCL 斜率", "SCL slope", "µS/min"),
    ("scr_count", "皮肤电反应次数", "SCR count", ""),
    ("scr_per_min", "每分钟皮肤电反应", "SCRs per minute", "/min"),
    ("scr_amp_mean_us", "平均 SCR 幅度", "mean SCR amplitude", "µS"),
    ("scr_rise_time_mean_s", "平均上升时间", "mean rise time", "s"),
    ("scr_half_recovery_mean_s", "平均半恢复时间", "mean half recovery", "s"),
)


def register(subparsers: Any) -> None:
    """Add the `analyze` command."""
    parser = subparsers.add_parser(
        "analyze",
        help="analyse RR / ECG / PPG / EDA recordings (HRV, coherence, EDA)",
        description=(
            "Analyse one recording with the shuxin signal core. RR files hold one interval per "
            "line (ms or s, auto-detected) or Kubios-style 'time RR' columns; CSV files need "
            "--column. Waveform files hold one sample per line or a CSV column."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rr", type=Path, metavar="FILE", help="RR intervals (ms or s)")
    source.add_argument("--ecg", type=Path, metavar="FILE", help="ECG waveform (needs --fs)")
    source.add_argument("--ppg", type=Path, metavar="FILE", help="PPG waveform (needs --fs)")
    source.add_argument("--eda", type=Path, metavar="FILE", help="skin conductance in µS (--fs)")
    parser.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of a waveform")
    parser.add_argument(
        "--unit", choices=("auto", "ms", "s"), default="auto", help="RR unit (default: auto)"
    )
    parser.add_argument("--column", metavar="NAME", help="read this CSV column (name or index)")
    parser.add_argument(
        "--no-correct",
        action="store_true",
        help="analyse the RR series exactly as given (no artefact correction)",
    )
    parser.add_argument(
        "--paced", action="store_true", help="slow paced breathing: search 3-30 breaths/min"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--window", type=float, metavar="S", help="windowed analysis: length (s)")
    parser.add_argument("--step", type=float, metavar="S", help="windowed analysis: step (s)")
    parser.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="windowed output format"
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write windowed rows here")
    parser.set_defaults(handler=run)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _correction_kind(kind: str, rr_ms: float) -> str:
    """Name a correction with the documented kinds: a physiologically implausible interval
    (outside 300–2000 ms) is reported as the short or long interval it is."""
    if kind == "implausible":
        return "short" if rr_ms < 300.0 else "long"
    return kind


def rr_result(rr_ms: Any, *, correct: bool, paced: bool) -> dict[str, Any]:
    """Run ``hrv_report`` and flatten it into the documented JSON keys."""
    import numpy as np

    from shuxin.signal.hrv_report import hrv_report

    rr_in = np.asarray(rr_ms, dtype=np.float64)
    report = hrv_report(rr_in, correct=correct, paced=paced)
    summary = report.summary
    out: dict[str, Any] = {}
    for key, *_ in _RR_KEYS:
        if key in ("coherence_ratio", "resp_rate_bpm"):
            out[key] = _finite_or_none(getattr(report, key))
        else:
            out[key] = _finite_or_none(getattr(summary, key))
    out["n_beats_input"] = summary.n_beats_input
    out["corrected_pct"] = summary.corrected_pct
    out["corrections"] = [
        {"index": i, "kind": _correction_kind(kind, float(rr_in[i]))}
        for i, kind in summary.corrections
    ]
    out["suppressed"] = list(summary.suppressed)
    out["notes"] = [*summary.notes, *report.notes]
    out["algorithm_version"] = summary.algorithm_version
    out["component_versions"] = [*summary.component_versions, report.algorithm_version]
    return out


def eda_result(eda_us: Any, fs_hz: float) -> dict[str, Any]:
    """Run ``eda_summary`` and flatten it into the documented JSON keys."""
    from shuxin.signal.eda_summary import eda_summary

    summary = eda_summary(eda_us, fs_hz)
    out: dict[str, Any] = {key: _finite_or_none(getattr(summary, key)) for key, *_ in _EDA_KEYS}
    out["n_samples"] = summary.n_samples
    out["fs_hz"] = summary.fs_hz
    out["quality_flags"] = list(summary.quality_flags)
    out["notes"] = list(summary.notes)
    out["algorithm_version"] = summary.algorithm_version
    return out


def _beats_from_waveform(kind: str, signal: Any, fs_hz: float) -> tuple[Any, dict[str, Any]]:
    if kind == "ecg":
        from shuxin.signal.ecg_peaks import ecg_peaks

        peaks: Any = ecg_peaks(signal, fs_hz)
    else:
        from shuxin.signal.ppg_peaks import ppg_peaks

        peaks = ppg_peaks(signal, fs_hz)
    detection = {
        "n_peaks": len(peaks.peak_index),
        "detector_version": peaks.algorithm_version,
    }
    return peaks.rr_ms, detection


def _fail(message: str) -> int:
    print(f"shuxin analyze: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Handle `shuxin analyze`."""
    from shuxin.cli.analyze_io import RecordingFileError, read_rr, read_waveform
    from shuxin.signal.errors import SignalError

    kind = next(k for k in ("rr", "ecg", "ppg", "eda") if getattr(args, k) is not None)
    if kind != "rr" and args.fs is None:
        return _fail(f"--{kind} needs --fs HZ (the sampling rate)")
    if (args.window is None) != (args.step is None):
        return _fail("--window and --step go together")
    if args.window is not None and (args.window <= 0 or args.step <= 0):
        return _fail("--window and --step must be positive")
    path: Path = getattr(args, kind)
    try:
        extra: dict[str, Any] = {}
        if kind == "rr":
            recording = read_rr(path, unit=args.unit, column=args.column)
            rr_ms = recording.rr_ms
            extra = {"rr_unit": recording.unit, "rr_unit_detected": recording.unit_detected}
        else:
            waveform = read_waveform(path, column=args.column)
            if kind == "eda":
                if args.window is not None:
                    return _windowed_eda(args, waveform)
                result = eda_result(waveform, args.fs)
                return _emit(args, result, _EDA_KEYS)
            rr_ms, extra = _beats_from_waveform(kind, waveform, args.fs)
        if args.window is not None:
            return _windowed_rr(args, rr_ms)
        result = {**rr_result(rr_ms, correct=not args.no_correct, paced=args.paced), **extra}
    except RecordingFileError as exc:
        return _fail(str(exc))
    except SignalError as exc:
        return _fail(f"{path}: {exc}")
    return _emit(args, result, _RR_KEYS)


def _format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def _display_width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _emit(args: argparse.Namespace, result: dict[str, Any], keys: Any) -> int:
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    labels = [(key, f"{zh} / {en}", unit) for key, zh, en, unit in keys]
    width = max(_display_width(label) for _, label, _ in labels) + 2
    for key, label, unit in labels:
        value = _format_value(result.get(key))
        suffix = f" {unit}" if unit and value != "—" else ""
        padding = " " * (width - _display_width(label))
        print(f"{label}{padding}{value}{suffix}")
    for line in result.get("suppressed", []):
        print(f"已抑制 / suppressed: {line}")
    for line in result.get("notes", []):
        print(f"注 / note: {line}")
    corrections = result.get("corrections", [])
    if corrections:
        print(f"校正 / corrected beats: {len(corrections)}")
    print(f"算法版本 / algorithm: {result.get('algorithm_version')}")
    return 0


def _windows(total_s: float, window_s: float, step_s: float) -> Iterator[tuple[float, float]]:
    start = 0.0
    while start + window_s <= total_s + 1e-9:
        yield start, start + window_s
        start += step_s


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() and total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")


def _windowed_rr(args: argparse.Namespace, rr_ms: Any) -> int:
    import numpy as np

    from shuxin.signal.errors import SignalError

    beat_end_s = np.cumsum(rr_ms) / 1000.0
    spans = list(_windows(float(beat_end_s[-1]), args.window, args.step))
    rows = []
    for i, (start, end) in enumerate(spans):
        mask = (beat_end_s > start) & (beat_end_s <= end)
        row: dict[str, Any] = {"window_start_s": start, "window_end_s": end}
        try:
            row |= rr_result(rr_ms[mask], correct=not args.no_correct, paced=args.paced)
        except SignalError as exc:
            row["error"] = str(exc)
        rows.append(row)
        _progress(i + 1, len(spans))
    return _write_rows(args, rows, [k for k, *_ in _RR_KEYS])


def _windowed_eda(args: argparse.Namespace, eda_us: Any) -> int:
    from shuxin.signal.errors import SignalError

    fs = float(args.fs)
    spans = list(_windows(len(eda_us) / fs, args.window, args.step))
    rows = []
    for i, (start, end) in enumerate(spans):
        row: dict[str, Any] = {"window_start_s": start, "window_end_s": end}
        try:
            row |= eda_result(eda_us[round(start * fs) : round(end * fs)], fs)
        except SignalError as exc:
            row["error"] = str(exc)
        rows.append(row)
        _progress(i + 1, len(spans))
    return _write_rows(args, rows, [k for k, *_ in _EDA_KEYS])


def _write_rows(args: argparse.Namespace, rows: list[dict[str, Any]], keys: list[str]) -> int:
    if not rows:
        return _fail("the recording is shorter than one window")
    buffer = io.StringIO()
    if args.format == "csv":
        fields = ["window_start_s", "window_end_s", *keys, "algorithm_version", "error"]
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
    out: TextIO
    if args.out is not None:
        args.out.write_text(buffer.getvalue(), encoding="utf-8")
        print(f"wrote {len(rows)} windows to {args.out}", file=sys.stderr)
    else:
        out = sys.stdout
        out.write(buffer.getvalue())
    return 0
