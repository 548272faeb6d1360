"""``make demo`` (``python -m sandbox.demo [--home DIR] [--port 8080]``): mailintake against
the sandbox in one process — the identity provider, the Graph emulator and Dovecot with seeded
mail, and ``mailintake serve`` on a demo home with a ready-to-apply demo.yaml.

Modules: ``run`` (starting and stopping everything), ``tenant`` (users, apps, mailboxes and
the configuration), ``mail`` (the seeded messages), ``banner`` (what it prints)."""
