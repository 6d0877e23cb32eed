"""`python -m hookflow_cli`: the `hookflow` command."""

from hookflow_cli.main import main

main()
