"""Why a connection to an IMAP or POP3 server failed, in terms of the mailbox's settings
(host, port, security), for the common set-up mistakes: a host name that does not resolve,
a port nothing listens on, TLS expected on a plain port or the reverse, a certificate not
trusted here."""

from __future__ import annotations

import socket
import ssl
from typing import Protocol

from mailintake.errors import NetworkError
from mailintake.net import tls

# The usual ports: with TLS from the start (security ssl), and plain or upgraded (starttls).
_PORTS = {"imap": (993, 143), "pop3": (995, 110)}
_NOT_TLS = ("WRONG_VERSION_NUMBER", "wrong version number", "UNKNOWN_PROTOCOL", "record layer")


class Endpoint(Protocol):
    """Where a mail source connects (ImapSettings, Pop3Settings)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def timeout(self) -> float: ...


def cannot_connect(what: str, exc: BaseException, protocol: str, to: Endpoint) -> NetworkError:
    """The error a source raises when it cannot connect to ``to``."""
    why = explain(
        exc, protocol=protocol, host=to.host, port=to.port, security=to.security, timeout=to.timeout
    )
    return NetworkError(f"{what}: cannot connect: {why}")


def explain(
    exc: BaseException, *, protocol: str, host: str, port: int, security: str, timeout: float
) -> str:
    """What went wrong and which setting to check."""
    with_tls, plain = _PORTS.get(protocol, (0, 0))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return tls.describe(exc)
    if isinstance(exc, socket.gaierror):
        return f"the host name {host} could not be resolved ({exc.strerror or exc}): check host"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused: nothing listens on port {port} of {host}: check host and port"
    if isinstance(exc, ssl.SSLError) and any(marker in str(exc) for marker in _NOT_TLS):
        return (
            f"the server did not answer with TLS on port {port} ({exc.reason or exc}): this port "
            f"expects a plain connection first (security starttls or none, usually port "
            f"{plain}), or it is not a {protocol.upper()} server: check port and security"
        )
    if isinstance(exc, TimeoutError):
        if security != "ssl":
            return (
                f"no answer within {timeout:g} s: a port that expects TLS at once (security ssl, "
                f"usually port {with_tls}) says nothing to a plain connection; or a firewall "
                "drops the connection: check port, security and the firewall"
            )
        return (
            f"no answer within {timeout:g} s: check host and port, and that a firewall lets the "
            "connection through"
        )
    return str(exc)
