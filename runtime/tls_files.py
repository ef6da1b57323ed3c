"""Start-up checks of the PEM files an MQTT client uses for TLS (edge publisher, gateway ingest).

:func:`tls_file_problems` loads the files the way the MQTT client will (``ssl``: the CA bundle
into a verify store, the client certificate with its key) and returns one message per problem,
each naming the setting, so a bad path, an unreadable file, a file that is not PEM or a key that
does not belong to its certificate stops the process at start-up instead of turning into an
endless reconnect loop. :func:`mqtt_client_context` builds the verifying client context both
MQTT clients use, :func:`tls_failure_kind` names TLS failures in their error counters. Files
only; nothing connects here.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def _no_password() -> bytes:
    # Never let OpenSSL prompt on the terminal for an encrypted key (a service would hang):
    # an empty password makes such a key fail to load with a clear error instead.
    return b""


def tls_file_problems(
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    *,
    names: tuple[str, str, str],
) -> list[str]:
    """Check the CA bundle and the client certificate/key; one message per problem.

    Parameters
    ----------
    ca_file, cert_file, key_file : Path or None
        PEM files; ``None`` means not configured (the system trust store; no client
        certificate). ``cert_file`` and ``key_file`` are checked together when both are given.
    names : (str, str, str)
        How the three settings are called in messages, e.g. ``("broker.ca_file", …)``.
    """
    ca_name, cert_name, key_name = names
    problems: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except ssl.SSLError:  # before OSError: SSLError is one
            problems.append(f"{ca_name} {ca_file}: not a PEM certificate bundle")
        except OSError as exc:
            problems.append(f"{ca_name} {ca_file}: {exc.strerror or exc}")
    pairs = [(cert_name, cert_file), (key_name, key_file)]
    unreadable = False
    for name, path in pairs:
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            problems.append(f"{name} {path}: {exc.strerror or exc}")
            unreadable = True
    if cert_file is not None and key_file is not None and not unreadable:
        try:
            context.load_cert_chain(str(cert_file), str(key_file), password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            problems.append(
                f"{cert_name}/{key_name}: cannot load the client certificate with its key "
                f"(not PEM, key does not match, or key is encrypted): {exc}"
            )
    return problems


def tls_failure_kind(message: str) -> str | None:
    """``TlsVerifyError``, ``TlsError`` or None for the message of a connection failure.

    aiomqtt turns every connect-time ``OSError`` (``ssl`` errors included) into a bare
    ``MqttError`` that keeps only the message, so TLS failures are told apart by it:
    ``TlsVerifyError`` when the broker's certificate chain or host name did not verify,
    ``TlsError`` for any other TLS failure, None when the message is not about TLS.
    """
    if "CERTIFICATE_VERIFY_FAILED" in message or "certificate verify failed" in message:
        return "TlsVerifyError"
    if message.startswith("[SSL") or "[SSL:" in message:
        return "TlsError"
    return None


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho-mqtt 2.2 (``Client._ssl_wrap_socket``) leaves the socket open when ``do_handshake``
    raises (e.g. the broker's certificate does not verify), so every refused attempt would
    hold a file descriptor until the garbage collector finds it.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def mqtt_client_context(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A client TLS context for an MQTT connection: the broker's certificate chain and host
    name are verified against ``ca_file`` (PEM) or, without it, the system trust store;
    ``cert_file``/``key_file`` add a client certificate. Raises ``OSError``/``ssl.SSLError``
    for unusable files (:func:`tls_file_problems` reports them first, at start-up)."""
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file), password=_no_password)
    context.sslsocket_class = _ClosingSSLSocket
    return context
