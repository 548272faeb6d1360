"""Certificates for tests: the sandbox's (sandbox/certs.py)."""

from sandbox.certs import pem_certificate, pem_key, rsa_key, self_signed

__all__ = ["pem_certificate", "pem_key", "rsa_key", "self_signed"]
