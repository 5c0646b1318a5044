"""`python -m shelfcast` runs the CLI."""

from shelfcast.cli import main

main()
