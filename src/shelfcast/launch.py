"""The `shelfcast` command's entry point: threads first (before Polars or OpenMP load), then the CLI."""

from __future__ import annotations

import sys

from shelfcast.errors import ConfigError
from shelfcast.threads import configure


def main() -> None:
    """Set this process's threads (see `shelfcast.threads`), then run the CLI."""
    try:
        configure()
    except ConfigError as exc:
        # Rich is not imported yet (it would pull the CLI in): the CLI's one-line error, in plain text.
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
    from shelfcast.cli import main as cli_main

    cli_main()
