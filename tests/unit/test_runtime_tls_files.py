"""shuxin.runtime.tls_files: the MQTT clients' TLS context verifies, closes the socket of a
failed handshake, and TLS failures get their own error-counter kinds."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from servers.tls_certs import make_broker_tls

from shuxin.runtime.tls_files import mqtt_client_context, tls_failure_kind, tls_file_problems


def test_the_client_context_always_verifies(tmp_path: Path) -> None:
    pki = make_broker_tls(tmp_path)
    for context in (
        mqtt_client_context(None),
        mqtt_client_context(pki.ca_file, pki.client.cert_file, pki.client.key_file),
    ):
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname
    only_ours = mqtt_client_context(pki.ca_file)
    assert [c["subject"] for c in only_ours.get_ca_certs()] == [
        ((("commonName", "shuxin test CA"),),)
    ]


def test_a_failed_handshake_closes_its_socket(tmp_path: Path) -> None:
    """The server side presents a certificate from a CA the client does not trust."""
    ours = make_broker_tls(tmp_path / "ours")
    theirs = make_broker_tls(tmp_path / "theirs")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(theirs.server.cert_file, theirs.server.key_file)
    client_raw, server_raw = socket.socketpair()

    def serve() -> None:
        # Expected to fail: the client rejects the certificate and aborts the handshake.
        with server_raw, contextlib.suppress(ssl.SSLError):
            server_context.wrap_socket(server_raw, server_side=True).close()

    thread = threading.Thread(target=serve)
    thread.start()
    context = mqtt_client_context(ours.ca_file)
    client = context.wrap_socket(
        client_raw, server_hostname="127.0.0.1", do_handshake_on_connect=False
    )
    client.settimeout(10)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        client.do_handshake()
    thread.join(10)
    assert client.fileno() == -1, "the socket must be closed by the failed handshake"
    assert tls_failure_kind(str(info.value)) == "TlsVerifyError"


def test_tls_failure_kinds() -> None:
    assert tls_failure_kind("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)") == (
        "TlsError"
    )
    assert tls_failure_kind("[Errno 111] Connection refused") is None
    assert tls_failure_kind("Operation timed out") is None


def test_file_problems_name_the_setting(tmp_path: Path) -> None:
    pki = make_broker_tls(tmp_path)
    names = ("a", "b", "c")
    assert (
        tls_file_problems(pki.ca_file, pki.client.cert_file, pki.client.key_file, names=names) == []
    )
    assert tls_file_problems(None, None, None, names=names) == []
    problems = tls_file_problems(tmp_path / "nope", pki.client.cert_file, pki.ca_file, names=names)
    assert problems[0].startswith(f"a {tmp_path / 'nope'}: No such file")
    assert problems[1].startswith("b/c: cannot load the client certificate with its key")
    assert len(problems) == 2
