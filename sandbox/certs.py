"""Self-signed certificates made when needed (nothing committed): for client-certificate
credentials and for the local TLS servers of the tests and the demo."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def self_signed(
    key: rsa.RSAPrivateKey,
    common_name: str = "mailintake test",
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ip_address: str | None = None,
    dns_names: tuple[str, ...] = (),
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for ``key`` signed by itself; valid from an hour ago for a year unless
    told otherwise; with ``ip_address`` and ``dns_names`` as its subject alternative names for
    TLS servers; ``ca`` lets clients trust it as its own authority."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    if ip_address is not None:
        names.insert(0, x509.IPAddress(ipaddress.ip_address(ip_address)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(key, hashes.SHA256())


def pem_certificate(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key: rsa.RSAPrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
