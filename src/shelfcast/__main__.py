"""`python -m shelfcast` runs the CLI."""

from shelfcast.launch import main

main()
