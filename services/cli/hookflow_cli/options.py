"""The options every admin command takes (where the config API is, its token, JSON output),
and the environment help they share."""

from typing import Annotated

import typer

from hookflow_cli.client import AdminSettings
from hookflow_cli.envhelp import environment_help

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url", help="The config API (overrides HOOKFLOW_API_URL).", show_default=False
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", help="The admin token (overrides HOOKFLOW_ADMIN_TOKEN).", show_default=False
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Plain JSON on stdout, for scripts.")]

ADMIN_HELP = environment_help(AdminSettings)
"""The epilog of every admin command: the variables it reads, from AdminSettings."""
