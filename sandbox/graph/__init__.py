"""A Microsoft Graph mail emulator for tests and demos (``python -m sandbox.graph``): listing
and paging, delta query per folder (sandbox/graph/delta.py), ``$value``, mark read / move /
delete, immutable ids, 429 with Retry-After and the four-concurrent-requests limit, bearer
tokens checked against the sandbox identity provider, change-notification subscriptions with
their webhooks (sandbox/graph/subscriptions.py); and, on request, the faults the real service
produces (``GraphEmulator.faults``, sandbox/graph/faults.py)."""

from sandbox.graph.server import GraphEmulator

__all__ = ["GraphEmulator"]
