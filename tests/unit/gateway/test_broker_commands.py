"""`shuxin broker config` without a broker: files, modes, password persistence and rotation,
input validation. The broker itself is exercised in tests/integration/gateway/."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from shuxin.gateway.broker_commands import read_credentials, register
from shuxin.gateway.broker_config import verify_password


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shuxin")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def _passwd(out: Path) -> dict[str, str]:
    lines = (out / "passwd").read_text(encoding="utf-8").splitlines()
    return dict(line.split(":", 1) for line in lines)


def test_writes_files_private_and_hashes_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "broker"
    assert _run(["broker", "config", "--out", str(out), "--stations", "st-a,st-b"]) == 0
    creds = read_credentials(out / "credentials")
    assert set(creds) == {"st-a", "st-b", "gateway"}
    for name in ("credentials", "passwd"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    hashes = _passwd(out)
    assert all(verify_password(creds[user], hashes[user]) for user in creds)
    printed = capsys.readouterr().out
    assert not any(password in printed for password in creds.values())
    acl = (out / "acl").read_text(encoding="utf-8")
    assert "user st-a\ntopic readwrite shuxin/v1/st-a/#" in acl
    conf = (out / "mosquitto.conf").read_text(encoding="utf-8")
    assert "listener 1883 127.0.0.1" in conf
    assert "allow_anonymous false" in conf


def test_rerun_keeps_passwords_rotate_changes_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "broker"
    base = ["broker", "config", "--out", str(out), "--stations", "st-a,st-b"]
    assert _run(base) == 0
    first, first_hashes = read_credentials(out / "credentials"), _passwd(out)
    assert _run(base) == 0
    assert read_credentials(out / "credentials") == first
    assert _passwd(out) == first_hashes
    capsys.readouterr()
    assert _run([*base, "--rotate", "st-a", "--show"]) == 0
    rotated = read_credentials(out / "credentials")
    assert rotated["st-a"] != first["st-a"]
    assert rotated["st-b"] == first["st-b"]
    assert rotated["gateway"] == first["gateway"]
    assert f"st-a:{rotated['st-a']}" in capsys.readouterr().out


def test_adding_a_station_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert _run(["broker", "config", "--out", str(out), "--stations", "st-a"]) == 0
    first = read_credentials(out / "credentials")
    assert _run(["broker", "config", "--out", str(out), "--stations", "st-a,st-b"]) == 0
    second = read_credentials(out / "credentials")
    assert second["st-a"] == first["st-a"]
    assert "st-b" in second


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stations", "ST A"], "invalid station id"),
        (["--stations", "st-a,st-a"], "more than once"),
        (["--stations", ","], "no stations"),
        (["--stations", "st-a", "--rotate", "st-z"], "cannot rotate"),
        (["--stations", "st-a", "--listen", "127.0.0.1"], "HOST:PORT"),
        (["--stations", "st-a", "--listen", "127.0.0.1:70000"], "1-65535"),
        (["--stations", "st-a", "--tls-cert", "/nonexistent.pem"], "go together"),
        (["--stations", "st-a", "--gateway-user", "gw:x"], "invalid user name"),
        (["--stations", "st-a", "--gateway-user", "st-a"], "more than once"),
    ],
)
def test_invalid_inputs_exit_2_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "broker"
    assert _run(["broker", "config", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "credentials").exists()


def test_missing_tls_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["broker", "config", "--out", str(tmp_path / "b"), "--stations", "st-a"]
    tls = ["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    assert _run([*argv, *tls]) == 2
    assert "TLS file not found" in capsys.readouterr().err


def test_queue_limits_default_large_and_can_be_set(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert _run(["broker", "config", "--out", str(out), "--stations", "st-a"]) == 0
    conf = (out / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "max_queued_messages 1000000" in conf
    argv = ["broker", "config", "--out", str(out), "--stations", "st-a"]
    argv += ["--max-queued-messages", "0", "--max-queued-bytes", "2000000000"]
    assert _run(argv) == 0
    conf = (out / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    assert "max_queued_messages 0" in conf
    assert "max_queued_bytes 2000000000" in conf
    assert _run([*argv[:-4], "--max-queued-messages", "-5"]) == 2
