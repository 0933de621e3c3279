"""`python -m cockpit.cli` runs the `cockpit` command."""

from cockpit.cli import run_main

run_main()
