"""What the tests start or make for themselves: an authenticating HTTP proxy (proxy.py),
self-signed certificates (certs.py), Dovecot with its identity provider (dovecot.py), a
corpus of malformed messages (malformed.py), an import pass that kills itself for the crash
tests (crash_poll.py), pieces of configuration documents (documents.py), and a scripted
server handing its bytes over in chunks of chosen sizes (wire.py)."""
