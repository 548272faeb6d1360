"""Certificate credentials: the ``private_key_jwt`` client assertion Microsoft documents
(oauth-facts §1.4, current format): header ``alg`` PS256, ``typ`` JWT, ``x5t#S256`` =
base64url SHA-256 thumbprint of the DER certificate; claims ``aud`` = token endpoint,
``iss`` = ``sub`` = client ID, ``jti`` a fresh UUID, ``nbf`` = ``iat`` = now, ``exp`` a few
minutes later (MSAL's default lifetime is 600 s). PS256 is RSASSA-PSS with SHA-256, MGF1
SHA-256 and a salt as long as the digest (RFC 7518 §3.5).

Entra has been reported to refuse that documented form with AADSTS700027 where the older one
works (https://github.com/MicrosoftDocs/entra-docs/pull/1301), and MSAL keeps RS256 + SHA-1
``x5t`` as its fallback (msal/application.py, oauth-facts §1.4 [M1]; and
https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/issues/6125): both
forms are made here (``PS256_FORM``, ``RS256_FORM``); the token request tries the other one
once after AADSTS700027 (``mailintake.oauth.grants``).

The JWT is signed by joserfc, the JOSE library of Authlib's authors that Authlib's own
``authlib.jose`` (deprecated) gives way to."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from joserfc import jwt
from joserfc.jwk import RSAKey

from mailintake.errors import ConfigError

CERT_FIELD = "oauth.client_certificate"
KEY_FIELD = "oauth.client_certificate_key"
PASSWORD_FIELD = "oauth.client_certificate_password"
FIELD = CERT_FIELD
PS256_FORM = "PS256+x5t#S256"  # current documentation
RS256_FORM = "RS256+x5t"  # older documentation, MSAL's fallback
ASSERTION_FORMS = (PS256_FORM, RS256_FORM)
_PKCS12_SUFFIXES = (".pfx", ".p12")


@dataclass(frozen=True)
class ClientCertificate:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint_sha256_b64url(self) -> str:
        """``x5t#S256``: base64url (no padding) of the SHA-256 of the DER certificate."""
        return _b64url(self.certificate.fingerprint(hashes.SHA256()))

    @property
    def thumbprint_sha1_b64url(self) -> str:
        """``x5t``: base64url (no padding) of the SHA-1 of the DER certificate."""
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - a name

    @property
    def thumbprint_sha1_hex(self) -> str:
        """The thumbprint the Entra portal lists for an uploaded certificate."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - a name

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _problem(message: str) -> ConfigError:
    return ConfigError([message])


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _problem(f"{what}: no such file: {path}") from None
    except IsADirectoryError:
        raise _problem(f"{what}: {path} is a folder, not a file") from None
    except OSError as exc:
        raise _problem(f"{what}: cannot read {path}: {exc.strerror}") from None


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def _rsa(key: object, path: Path, what: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _problem(f"{what}: the private key in {path} is not an RSA key (PS256 needs RSA)")
    return key


def _load_pem_key(data: bytes, password: bytes | None, path: Path, what: str) -> rsa.RSAPrivateKey:
    if b"PRIVATE KEY-----" not in data:
        hint = f": set {KEY_FIELD} to the key file" if what == CERT_FIELD else ""
        raise _problem(f"{what}: {path} holds no PEM private key{hint}")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is not None:  # a password was given for a key that has none
            return _load_pem_key(data, None, path, what)
        raise _problem(
            f"{what}: the private key in {path} is encrypted: set {PASSWORD_FIELD}"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise _problem(
            f"{what}: the private key in {path} cannot be read "
            f"(damaged, or the wrong {PASSWORD_FIELD})"
        ) from None
    return _rsa(key, path, what)


def _load_pkcs12(
    data: bytes, password: bytes | None, path: Path
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError):
        if path.suffix.lower() in _PKCS12_SUFFIXES:
            raise _problem(
                f"{CERT_FIELD}: {path} is not a PKCS#12 file or the password is wrong "
                f"({PASSWORD_FIELD})"
            ) from None
        raise _problem(
            f"{CERT_FIELD}: {path} is neither a PEM certificate nor a PKCS#12 (.pfx) file"
        ) from None
    if key is None:
        raise _problem(f"{CERT_FIELD}: the PKCS#12 file {path} holds no private key")
    if cert is None:
        raise _problem(f"{CERT_FIELD}: the PKCS#12 file {path} holds no certificate")
    return _rsa(key, path, CERT_FIELD), cert


def _check_validity(cert: x509.Certificate, path: Path, now: datetime) -> None:
    if cert.not_valid_after_utc < now:
        raise _problem(
            f"{CERT_FIELD}: the certificate in {path} expired on "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: create a new certificate, "
            "upload it to the application registration and configure it here"
        )
    if cert.not_valid_before_utc > now:
        raise _problem(
            f"{CERT_FIELD}: the certificate in {path} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def load_certificate(
    cert_path: Path, key_path: Path | None = None, password: str | None = None
) -> ClientCertificate:
    """Read the client certificate and its private key: a PEM certificate with a PEM key
    (``key_path``, or in the same file), or a PKCS#12 (.pfx/.p12) file; ``password`` unlocks
    an encrypted key or PKCS#12 file. Checks the key belongs to the certificate and that the
    certificate is valid now; every problem is a ConfigError naming the setting and file."""
    secret = password.encode() if password else None
    data = _read(cert_path, CERT_FIELD)
    if not _is_pem(data):
        key, cert = _load_pkcs12(data, secret, cert_path)
    else:
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise _problem(f"{CERT_FIELD}: {cert_path} holds no PEM certificate")
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise _problem(
                f"{CERT_FIELD}: the PEM certificate in {cert_path} cannot be read"
            ) from None
        if key_path is not None:
            key = _load_pem_key(_read(key_path, KEY_FIELD), secret, key_path, KEY_FIELD)
        else:
            key = _load_pem_key(data, secret, cert_path, CERT_FIELD)
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != (
        key.public_key().public_numbers()
    ):
        where = f"in {key_path}" if key_path is not None else f"in {cert_path}"
        raise _problem(
            f"{KEY_FIELD if key_path is not None else CERT_FIELD}: the private key {where} "
            f"does not belong to the certificate in {cert_path}"
        )
    _check_validity(cert, cert_path, datetime.now(UTC))
    return ClientCertificate(cert, key)


def certificate_not_after(cert_path: Path, password: str | None = None) -> datetime:
    """When the certificate in ``cert_path`` (PEM, or PKCS#12 unlocked by ``password``)
    ends: its notValidAfter, read even when it has passed (health warns ahead of it)."""
    data = _read(cert_path, CERT_FIELD)
    if _is_pem(data):
        try:
            return x509.load_pem_x509_certificate(data).not_valid_after_utc
        except ValueError:
            raise _problem(
                f"{CERT_FIELD}: the PEM certificate in {cert_path} cannot be read"
            ) from None
    _, cert = _load_pkcs12(data, password.encode() if password else None, cert_path)
    return cert.not_valid_after_utc


def client_assertion(
    cert: ClientCertificate,
    client_id: str,
    audience: str,
    *,
    now: float | None = None,
    lifetime: int = 600,
    form: str = PS256_FORM,
) -> str:
    """A signed JWT proving the client holds the certificate's key; ``audience`` is the
    token endpoint URL. Make a new one for every token request (``jti`` must not repeat).
    ``form``: ``PS256_FORM`` (documented) or ``RS256_FORM`` (the older form)."""
    issued = int(now if now is not None else time.time())
    if form == RS256_FORM:
        header = {"alg": "RS256", "typ": "JWT", "x5t": cert.thumbprint_sha1_b64url}
    elif form == PS256_FORM:
        header = {"alg": "PS256", "typ": "JWT", "x5t#S256": cert.thumbprint_sha256_b64url}
    else:
        raise ValueError(f"unknown client assertion form {form!r}")
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": issued,
        "iat": issued,
        "exp": issued + lifetime,
    }
    algorithm = header["alg"]
    return jwt.encode(header, claims, RSAKey.import_key(cert.key), algorithms=[algorithm])
