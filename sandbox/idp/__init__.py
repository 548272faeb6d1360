"""A Microsoft Entra ID v2.0 stand-in for tests and demos (``python -m sandbox.idp``)."""

from sandbox.idp.model import App, User
from sandbox.idp.server import IdentityProvider

__all__ = ["App", "IdentityProvider", "User"]
