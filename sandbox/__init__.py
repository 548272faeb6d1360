"""Stand-ins for services that cannot be reached from here (Microsoft Entra ID, Graph), faithful
to their documentation; used by the tests and startable alone for demos. Not shipped."""
