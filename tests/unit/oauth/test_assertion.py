"""Certificate credentials: reading the certificate and key in every form an administrator
gets them in, the problems named with the setting and the file, and the PS256 assertion in
Microsoft's current format (oauth-facts §1.4), checked with the certificate's public key."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mailintake.errors import ConfigError
from mailintake.oauth.assertion import (
    RS256_FORM,
    ClientCertificate,
    client_assertion,
    load_certificate,
)
from tests.support.certs import pem_certificate, pem_key, rsa_key, self_signed

CLIENT_ID = "00000000-1111-2222-3333-444444444444"
TOKEN_URL = "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def pair(tmp_path: Path, key: rsa.RSAPrivateKey) -> tuple[Path, Path]:
    cert, key_file = tmp_path / "app.crt", tmp_path / "app.key"
    cert.write_bytes(pem_certificate(self_signed(key)))
    key_file.write_bytes(pem_key(key))
    return cert, key_file


def problem(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    assert len(excinfo.value.problems) == 1
    return excinfo.value.problems[0]


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    head, body, signature = token.split(".")
    return (
        json.loads(b64url_decode(head)),
        json.loads(b64url_decode(body)),
        f"{head}.{body}".encode(),
        b64url_decode(signature),
    )


def test_pem_pair_and_thumbprints(pair: tuple[Path, Path]) -> None:
    cert = load_certificate(*pair)
    der = cert.certificate.public_bytes(serialization.Encoding.DER)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert cert.thumbprint_sha256_b64url == expected
    assert "=" not in cert.thumbprint_sha256_b64url
    assert len(cert.thumbprint_sha256_b64url) == 43
    assert cert.thumbprint_sha1_hex == hashlib.sha1(der).hexdigest().upper()  # noqa: S324
    assert cert.not_after == cert.certificate.not_valid_after_utc
    assert cert.not_after > dt.datetime.now(dt.UTC)
    assert "key=" not in repr(cert)


def test_one_pem_file_holding_certificate_and_key(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    combined = tmp_path / "both.pem"
    combined.write_bytes(pair[1].read_bytes() + pair[0].read_bytes())
    both = load_certificate(combined, None)
    assert both.thumbprint_sha256_b64url == load_certificate(*pair).thumbprint_sha256_b64url


def test_encrypted_pem_key(tmp_path: Path, key: rsa.RSAPrivateKey, pair: tuple[Path, Path]) -> None:
    locked = tmp_path / "locked.key"
    locked.write_bytes(pem_key(key, b"key-Pass-9"))
    assert load_certificate(pair[0], locked, "key-Pass-9").key.key_size == key.key_size
    with pytest.raises(ConfigError) as missing:
        load_certificate(pair[0], locked)
    assert problem(missing) == (
        f"oauth.client_certificate_key: the private key in {locked} is encrypted: "
        "set oauth.client_certificate_password"
    )
    with pytest.raises(ConfigError) as wrong:
        load_certificate(pair[0], locked, "wrong")
    assert problem(wrong) == (
        f"oauth.client_certificate_key: the private key in {locked} cannot be read "
        "(damaged, or the wrong oauth.client_certificate_password)"
    )
    # A password given for a key that has none is not a problem.
    load_certificate(*pair, password="unused")


def test_pkcs12_with_password(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    cert = self_signed(key)
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", key, cert, None, serialization.BestAvailableEncryption(b"pfx-Pass-1")
        )
    )
    loaded = load_certificate(pfx, None, "pfx-Pass-1")
    assert loaded.certificate == cert
    for password in (None, "wrong"):
        with pytest.raises(ConfigError) as refused:
            load_certificate(pfx, None, password)
        assert problem(refused) == (
            f"oauth.client_certificate: {pfx} is not a PKCS#12 file or the password is wrong "
            "(oauth.client_certificate_password)"
        )
    only_cert = tmp_path / "cert-only.p12"
    only_cert.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app", None, cert, None, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigError, match="holds no private key"):
        load_certificate(only_cert, None)


def test_key_that_does_not_belong_to_the_certificate(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(pem_key(rsa_key()))
    with pytest.raises(ConfigError) as mismatch:
        load_certificate(pair[0], other)
    assert problem(mismatch) == (
        f"oauth.client_certificate_key: the private key in {other} does not belong to the "
        f"certificate in {pair[0]}"
    )


def test_expired_and_not_yet_valid_certificates(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = self_signed(
        key,
        not_before=dt.datetime(2023, 3, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC),
    )
    path, key_file = tmp_path / "old.pem", tmp_path / "old.key"
    path.write_bytes(pem_certificate(expired))
    key_file.write_bytes(pem_key(key))
    with pytest.raises(ConfigError) as old:
        load_certificate(path, key_file)
    message = problem(old)
    assert message.startswith(
        f"oauth.client_certificate: the certificate in {path} expired on 2024-03-01 12:30 UTC"
    )
    future = self_signed(key, not_before=now + dt.timedelta(days=2))
    path.write_bytes(pem_certificate(future))
    with pytest.raises(ConfigError, match="is not valid before"):
        load_certificate(path, key_file)


def test_missing_garbage_and_wrong_files(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    absent = tmp_path / "absent.pem"
    with pytest.raises(ConfigError) as missing:
        load_certificate(absent, pair[1])
    assert problem(missing) == f"oauth.client_certificate: no such file: {absent}"
    with pytest.raises(ConfigError) as missing_key:
        load_certificate(pair[0], absent)
    assert problem(missing_key) == f"oauth.client_certificate_key: no such file: {absent}"

    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 this is not a certificate \xff" * 20)
    with pytest.raises(ConfigError) as not_pem:
        load_certificate(garbage, pair[1])
    assert problem(not_pem) == (
        f"oauth.client_certificate: {garbage} is neither a PEM certificate nor a PKCS#12 "
        "(.pfx) file"
    )
    garbage_pfx = tmp_path / "garbage.pfx"
    garbage_pfx.write_bytes(b"junk")
    with pytest.raises(ConfigError, match="is not a PKCS#12 file or the password is wrong"):
        load_certificate(garbage_pfx, None)

    with pytest.raises(ConfigError) as key_as_cert:
        load_certificate(pair[1], None)
    assert problem(key_as_cert) == f"oauth.client_certificate: {pair[1]} holds no PEM certificate"
    with pytest.raises(ConfigError) as no_key:
        load_certificate(pair[0], None)
    assert problem(no_key) == (
        f"oauth.client_certificate: {pair[0]} holds no PEM private key: set "
        "oauth.client_certificate_key to the key file"
    )
    with pytest.raises(ConfigError) as cert_as_key:
        load_certificate(pair[0], pair[0])
    assert problem(cert_as_key) == (
        f"oauth.client_certificate_key: {pair[0]} holds no PEM private key"
    )
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"the PEM certificate in .* cannot be read"):
        load_certificate(damaged, pair[1])


def test_a_key_that_is_not_rsa(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert, key_file = tmp_path / "ec.crt", tmp_path / "ec.key"
    cert.write_bytes(pem_certificate(self_signed(rsa_key())))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="is not an RSA key"):
        load_certificate(cert, key_file)


def test_client_assertion_is_ps256_with_x5t_s256(pair: tuple[Path, Path]) -> None:
    cert: ClientCertificate = load_certificate(*pair)
    token = client_assertion(cert, CLIENT_ID, TOKEN_URL, now=1_800_000_000.7)
    header, claims, signed, signature = decode(token)
    assert header == {"alg": "PS256", "typ": "JWT", "x5t#S256": cert.thumbprint_sha256_b64url}
    assert claims["aud"] == TOKEN_URL
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert uuid.UUID(claims["jti"]).version == 4
    assert claims["nbf"] == claims["iat"] == 1_800_000_000
    assert claims["exp"] == 1_800_000_600
    assert set(claims) == {"aud", "iss", "sub", "jti", "nbf", "iat", "exp"}
    public = cert.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    # RFC 7518 §3.5: PSS, SHA-256, MGF1 with SHA-256, salt as long as the hash.
    public.verify(
        signature,
        signed,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    with pytest.raises(InvalidSignature):
        public.verify(
            signature,
            signed + b"x",
            padding.PSS(padding.MGF1(hashes.SHA256()), 32),
            hashes.SHA256(),
        )
    with pytest.raises(InvalidSignature):  # not RS256
        public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())


def test_the_older_form_is_rs256_with_a_sha1_x5t(pair: tuple[Path, Path]) -> None:
    cert = load_certificate(*pair)
    header, claims, signed, signature = decode(
        client_assertion(cert, CLIENT_ID, TOKEN_URL, form=RS256_FORM)
    )
    sha1 = cert.certificate.fingerprint(hashes.SHA1())  # noqa: S303 - the thumbprint's name
    assert header == {
        "alg": "RS256",
        "typ": "JWT",
        "x5t": base64.urlsafe_b64encode(sha1).rstrip(b"=").decode(),
    }
    assert claims["aud"] == TOKEN_URL
    public = cert.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ValueError, match="unknown client assertion form"):
        client_assertion(cert, CLIENT_ID, TOKEN_URL, form="HS256")


def test_every_assertion_is_new(pair: tuple[Path, Path]) -> None:
    cert = load_certificate(*pair)
    first = decode(client_assertion(cert, CLIENT_ID, TOKEN_URL, lifetime=300))[1]
    second = decode(client_assertion(cert, CLIENT_ID, TOKEN_URL, lifetime=300))[1]
    assert first["jti"] != second["jti"]
    assert first["exp"] - first["nbf"] == 300
    assert abs(first["iat"] - dt.datetime.now(dt.UTC).timestamp()) < 60
