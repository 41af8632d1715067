"""``python -m cairn_console``: the same as ``cairn console``."""

from __future__ import annotations

import argparse
import sys

from .cli import add_flags, cmd_console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_console", description="Serve the Cairn Console.")
    add_flags(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_console(args)
    except (ValueError, OSError) as exc:  # bad flags or an address in use: one line, no traceback
        print(f"cairn console: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
