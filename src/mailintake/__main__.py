"""``python -m mailintake``: the same as the ``mailintake`` command."""

from mailintake.cli.main import run

if __name__ == "__main__":  # not when a worker process imports it
    run()
