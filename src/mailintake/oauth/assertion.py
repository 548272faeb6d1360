"""Certificate credentials: the ``private_key_jwt`` client assertion Microsoft documents
(oauth-facts §1.4): header ``alg`` PS256, ``typ`` JWT, ``x5t#S256`` = base64url SHA-256
thumbprint of the DER certificate; claims ``aud`` = token endpoint, ``iss`` = ``sub`` = client
ID, ``jti``, ``nbf`` = ``iat`` = now, ``exp`` a few minutes later."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mailintake.errors import ConfigError

FIELD = "oauth.client_certificate"


@dataclass(frozen=True)
class ClientCertificate:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint_sha256_b64url(self) -> str:
        return _b64url(self.certificate.fingerprint(hashes.SHA256()))

    @property
    def thumbprint_sha1_hex(self) -> str:
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a name

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{what}: no such file: {path}"]) from None
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.strerror}"]) from None


def _load_key(data: bytes, password: bytes | None, path: Path, what: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        raise ConfigError(
            [
                f"{what}: the private key in {path} is encrypted: set "
                "oauth.client_certificate_password"
            ]
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY" not in data:
            raise ConfigError([f"{what}: {path} holds no PEM private key"]) from None
        raise ConfigError(
            [f"{what}: the private key in {path} cannot be read (wrong password?)"]
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError([f"{what}: the key in {path} is not an RSA key (PS256 needs RSA)"])
    return key


def load_certificate(
    cert_path: Path, key_path: Path | None = None, password: str | None = None
) -> ClientCertificate:
    """Read a PEM certificate and key (one file or two) or a PKCS#12 file; check they belong
    together and that the certificate is valid now."""
    secret = password.encode() if password else None
    data = _read(cert_path, FIELD)
    if cert_path.suffix.lower() in (".pfx", ".p12"):
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
        except ValueError:
            raise ConfigError(
                [
                    f"{FIELD}: {cert_path} is not a PKCS#12 file or the password is wrong "
                    "(oauth.client_certificate_password)"
                ]
            ) from None
        if cert is None or not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError([f"{FIELD}: {cert_path} holds no RSA key and certificate"])
    else:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ConfigError([f"{FIELD}: {cert_path} holds no PEM certificate"]) from None
        if key_path is not None:
            key = _load_key(
                _read(key_path, "oauth.client_certificate_key"),
                secret,
                key_path,
                "oauth.client_certificate_key",
            )
        else:
            key = _load_key(data, secret, cert_path, FIELD)
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != (
        key.public_key().public_numbers()
    ):
        raise ConfigError(
            [f"{FIELD}: the private key does not belong to the certificate {cert_path}"]
        )
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise ConfigError(
            [
                f"{FIELD}: the certificate {cert_path} expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d}: create a new one and upload "
                "it to the application"
            ]
        )
    if cert.not_valid_before_utc > now:
        raise ConfigError(
            [
                f"{FIELD}: the certificate {cert_path} is valid only from "
                f"{cert.not_valid_before_utc:%Y-%m-%d}"
            ]
        )
    return ClientCertificate(cert, key)


def client_assertion(
    cert: ClientCertificate,
    client_id: str,
    audience: str,
    *,
    now: float | None = None,
    lifetime: int = 600,
) -> str:
    """A signed JWT proving the client holds the certificate's key."""
    issued = int(now if now is not None else time.time())
    header = {"alg": "PS256", "typ": "JWT", "x5t#S256": cert.thumbprint_sha256_b64url}
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": issued,
        "iat": issued,
        "exp": issued + lifetime,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = cert.key.sign(
        signing_input.encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size),
        hashes.SHA256(),
    )
    return f"{signing_input}.{_b64url(signature)}"
