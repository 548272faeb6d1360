"""``python -m sandbox.demo [--home DIR] [--port 8080]``: see ``sandbox.demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.demo.run import DemoError, run
from sandbox.dovecot import DovecotMissing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.demo",
        description="mailintake against the sandbox identity provider, Graph emulator and "
        "Dovecot, with seeded mail and the web admin; stop with Ctrl-C.",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="the demo's MAILINTAKE_HOME, kept afterwards (default: a temporary folder)",
    )
    parser.add_argument("--port", type=int, default=8080, help="the web admin's port")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    args = parser.parse_args(argv)
    try:
        run(args.home, args.port, args.log_level)
    except (DemoError, DovecotMissing) as exc:
        print(f"mailintake demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while starting: what had started is stopped already
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
