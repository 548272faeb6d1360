"""What the tests start or make for themselves: an authenticating HTTP proxy (proxy.py),
self-signed certificates (certs.py)."""
