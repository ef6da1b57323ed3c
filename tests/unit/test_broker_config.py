"""Mosquitto config, ACL and password-file rendering (shuxin.gateway.broker_config).

That Mosquitto itself accepts the output is proven in tests/integration/test_servers.py (every
login there uses a hash from this module, and the ACL is enforced); here: formats, validation,
and a known-answer vector produced by ``mosquitto_passwd`` 2.0.11.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuxin.gateway.broker_config import (
    DEFAULT_PBKDF2_ITERATIONS,
    BrokerConfigError,
    MosquittoConfig,
    TlsFiles,
    hash_password,
    render_acl,
    render_mosquitto_conf,
    render_password_file,
    station_topic_filter,
    validate_station_id,
    validate_username,
    verify_password,
)

# `mosquitto_passwd -b pwfile st-a 's3cret pw'` (mosquitto 2.0.11, Debian), run once by hand.
MOSQUITTO_PASSWD_LINE = (
    "st-a:$7$101$e5f+YIDRSYzv9UGa$qDikaf0X0+p7hnw4NvAqevYBc3+RiTpfax7vYZPODRp+9qPN+86KA98fF03096"
    "Q4vokYk1EeGRn0pN+xLxA29g=="
)


def _config(**overrides: object) -> MosquittoConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 18830,
        "password_file": Path("/srv/broker/passwd"),
        "acl_file": Path("/srv/broker/acl"),
        "data_dir": Path("/srv/broker/data"),
    }
    values.update(overrides)
    return MosquittoConfig(**values)  # type: ignore[arg-type]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# --- password hashes -------------------------------------------------------------------------


def test_hash_reproduces_mosquitto_passwd_output() -> None:
    user, encoded = MOSQUITTO_PASSWD_LINE.split(":", 1)
    salt = base64.b64decode(encoded.split("$")[3])
    assert user == "st-a"
    assert hash_password("s3cret pw", salt=salt) == encoded
    assert verify_password("s3cret pw", encoded)
    assert not verify_password("s3cret pw ", encoded)


def test_hash_format_matches_mosquitto_2() -> None:
    encoded = hash_password("another secret")
    match = re.fullmatch(r"\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", encoded)
    assert match is not None
    assert int(match.group(1)) == DEFAULT_PBKDF2_ITERATIONS == 101
    assert len(base64.b64decode(match.group(2), validate=True)) == 12
    assert len(base64.b64decode(match.group(3), validate=True)) == 64
    assert match.group(3).endswith("==")  # standard base64 with padding (64 bytes → 88 chars)


def test_each_hash_gets_a_fresh_salt() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert verify_password("same", first)
    assert verify_password("same", second)


def test_iterations_are_honoured() -> None:
    encoded = hash_password("pw", salt=b"0123456789ab", iterations=1000)
    assert encoded.startswith("$7$1000$MDEyMzQ1Njc4OWFi$")
    assert verify_password("pw", encoded)


@pytest.mark.parametrize(
    "encoded",
    ["", "$6$abc$def", "$7$101$!!!$AAAA", "$7$x$AAAA$AAAA", "$7$101$AAAA", "plain"],
)
def test_verify_rejects_malformed_hashes(encoded: str) -> None:
    with pytest.raises(BrokerConfigError):
        verify_password("pw", encoded)


def test_empty_password_or_salt_rejected() -> None:
    with pytest.raises(BrokerConfigError):
        hash_password("")
    with pytest.raises(BrokerConfigError):
        hash_password("pw", salt=b"")
    with pytest.raises(BrokerConfigError):
        hash_password("pw", iterations=0)


def test_password_file_has_one_verifiable_line_per_user() -> None:
    credentials = {"st-a": "alpha pw", "st-b": "beta:pw", "gateway": "gw-pw"}
    text = render_password_file(credentials)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["st-a", "st-b", "gateway"]
    for line, password in zip(lines, credentials.values(), strict=True):
        assert verify_password(password, line.split(":", 1)[1])
    assert render_password_file({}) == ""


@pytest.mark.parametrize("user", ["", "a:b", "a b", "st-a\n", "a#", "a+", "a/b", "-x", "x" * 65])
def test_password_file_rejects_unsafe_user_names(user: str) -> None:
    with pytest.raises(BrokerConfigError):
        render_password_file({user: "pw"})


# --- station ids and ACL ---------------------------------------------------------------------


@pytest.mark.parametrize("station", ["st-a", "a1", "0b", "station-" + "x" * 24])
def test_valid_station_ids(station: str) -> None:
    assert validate_station_id(station) == station
    assert station_topic_filter(station) == f"shuxin/v1/{station}/#"


@pytest.mark.parametrize(
    "station",
    ["", "a", "St-A", "st/a", "st+a", "st#", "#", "+", "-st", "st a", "st-a\n", "x" * 33, "站点"],
)
def test_invalid_station_ids(station: str) -> None:
    with pytest.raises(BrokerConfigError, match="invalid station id"):
        validate_station_id(station)


@given(st.text(max_size=40))
def test_station_filter_never_widens(station: str) -> None:
    """Any string either is refused or yields a filter confined to one station."""
    try:
        topic_filter = station_topic_filter(station)
    except BrokerConfigError:
        return
    assert topic_filter == f"shuxin/v1/{station}/#"
    assert topic_filter.count("#") == 1
    assert "+" not in topic_filter
    assert topic_filter.count("/") == 3
    assert "\n" not in topic_filter


def test_acl_confines_each_station_and_lets_the_gateway_read_all() -> None:
    text = render_acl(["st-a", "st-b"], ["gateway"])
    assert text.endswith("\n")
    assert _lines(text) == [
        "user st-a",
        "topic readwrite shuxin/v1/st-a/#",
        "user st-b",
        "topic readwrite shuxin/v1/st-b/#",
        "user gateway",
        "topic read shuxin/v1/#",
    ]


def test_acl_has_no_rules_outside_user_blocks() -> None:
    # Mosquitto applies `topic` lines before any `user` line to anonymous clients.
    first_rule = _lines(render_acl(["st-a"], ["gateway"]))[0]
    assert first_rule.startswith("user ")


@pytest.mark.parametrize(
    ("stations", "readers"),
    [
        (["st-a", "st-a"], []),
        (["st-a"], ["st-a"]),
        ([], ["gw", "gw"]),
        (["st/a"], []),
        ([], ["g w"]),
    ],
)
def test_acl_rejects_duplicates_and_invalid_names(stations: list[str], readers: list[str]) -> None:
    with pytest.raises(BrokerConfigError):
        render_acl(stations, readers)


def test_username_validation() -> None:
    assert validate_username("gateway-1.prod_a") == "gateway-1.prod_a"
    with pytest.raises(BrokerConfigError):
        validate_username("gateway:1")


# --- mosquitto.conf --------------------------------------------------------------------------


def test_conf_global_auth_listener_and_persistence() -> None:
    lines = _lines(render_mosquitto_conf(_config()))
    assert "per_listener_settings false" in lines
    assert "allow_anonymous false" in lines
    assert "password_file /srv/broker/passwd" in lines
    assert "acl_file /srv/broker/acl" in lines
    assert "persistence true" in lines
    assert "persistence_location /srv/broker/data/" in lines
    assert "autosave_interval 1800" in lines
    assert "autosave_on_changes false" in lines
    # The gateway's persistent session must not overflow during a replay or an outage
    # (Mosquitto's defaults: 1000 queued, 20 in flight).
    assert "max_queued_messages 1000000" in lines
    assert f"max_queued_bytes {1024**3}" in lines
    assert "max_inflight_messages 256" in lines
    assert "log_dest stderr" in lines
    assert lines[-1] == "listener 18830 127.0.0.1"
    assert lines.index("allow_anonymous false") < lines.index("listener 18830 127.0.0.1")
    assert not any(line.startswith(("user ", "certfile", "keyfile")) for line in lines)


def test_conf_per_listener_settings_puts_auth_under_the_listener() -> None:
    lines = _lines(render_mosquitto_conf(_config(per_listener_settings=True)))
    listener = lines.index("listener 18830 127.0.0.1")
    assert "per_listener_settings true" in lines[:listener]
    assert lines[listener + 1 :] == [
        "allow_anonymous false",
        "password_file /srv/broker/passwd",
        "acl_file /srv/broker/acl",
    ]


def test_conf_tls_options_follow_the_listener() -> None:
    tls = TlsFiles(
        certfile=PurePosixPath("/etc/shuxin/tls/server.crt"),
        keyfile=PurePosixPath("/etc/shuxin/tls/server.key"),
        cafile=PurePosixPath("/etc/shuxin/tls/ca.crt"),
        require_certificate=True,
        tls_version="tlsv1.2",
    )
    lines = _lines(render_mosquitto_conf(_config(tls=tls, port=8883, host="0.0.0.0")))
    listener = lines.index("listener 8883 0.0.0.0")
    assert lines[listener + 1 :] == [
        "certfile /etc/shuxin/tls/server.crt",
        "keyfile /etc/shuxin/tls/server.key",
        "cafile /etc/shuxin/tls/ca.crt",
        "require_certificate true",
        "tls_version tlsv1.2",
    ]


def test_conf_tls_client_certificates_need_a_ca() -> None:
    tls = TlsFiles(
        certfile=Path("/tls/server.crt"), keyfile=Path("/tls/server.key"), require_certificate=True
    )
    with pytest.raises(BrokerConfigError, match="cafile"):
        render_mosquitto_conf(_config(tls=tls))


def test_conf_options() -> None:
    lines = _lines(
        render_mosquitto_conf(
            _config(
                log_file=Path("/var/log/shuxin/mosquitto.log"),
                log_types=("error", "warning"),
                autosave_interval=1,
                autosave_on_changes=True,
                run_as_user="mosquitto",
            )
        )
    )
    assert "log_dest file /var/log/shuxin/mosquitto.log" in lines
    assert [line for line in lines if line.startswith("log_type ")] == [
        "log_type error",
        "log_type warning",
    ]
    assert "autosave_interval 1" in lines
    assert "autosave_on_changes true" in lines
    assert "user mosquitto" in lines


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"port": 65536},
        {"host": "127.0.0.1 extra"},
        {"host": ""},
        {"password_file": Path("relative/passwd")},
        {"acl_file": Path("/srv/acl\ninclude_dir /tmp")},
        {"data_dir": Path("/srv/data ")},
        {"log_file": Path("/srv/log\x00")},
        {"log_types": ()},
        {"log_types": ("everything",)},
        {"autosave_interval": -1},
        {"run_as_user": "root user"},
    ],
)
def test_conf_rejects_unsafe_values(overrides: dict[str, object]) -> None:
    with pytest.raises(BrokerConfigError):
        render_mosquitto_conf(_config(**overrides))


def test_conf_refuses_negative_queue_limits() -> None:
    with pytest.raises(BrokerConfigError, match="max_queued_messages must be >= 0"):
        render_mosquitto_conf(_config(max_queued_messages=-1))
