"""``python -m mailintake``: the same as the ``mailintake`` command."""

from mailintake.cli.main import run

run()
