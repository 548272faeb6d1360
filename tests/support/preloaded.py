"""Loaded last by the launcher's fork server (``tests.support.launcher.PRELOAD``): what every
launched process would otherwise make again for itself, made once in the server, whose
processes inherit it. The TLS contexts: net.tls keeps one per process and setting, and
loading the system's authorities into one takes about 60 ms of CPU, a quarter of what a
launched ``poll`` of a small mailbox spends (py-spy over the crash tests)."""

from __future__ import annotations

from mailintake.net import tls

tls.default_context()
tls.http_context()
