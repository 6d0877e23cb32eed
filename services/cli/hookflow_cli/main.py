"""The `hookflow` command: the commands that run Hookflow (services.py) and the admin commands
that talk to a running config API (apply, workflows, executions, parse). A CliError becomes one
line on stderr and its exit status, never a traceback."""

import sys
from importlib.metadata import version
from typing import Annotated

import typer

from hookflow_cli import apply, executions, output, parse, services, workflows
from hookflow_cli.errors import CliError
from hookflow_cli.options import ADMIN_HELP

DISTRIBUTION = "hookflow"

app = typer.Typer(
    name="hookflow",
    help="Webhook-triggered workflows. Configured by HOOKFLOW_* environment variables "
    "(each command's --help lists those it reads).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback must never show the admin token
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(given: bool) -> None:
    if given:
        print(f"hookflow {version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Webhook-triggered workflows."""


services.add_to(app)
app.command(epilog=ADMIN_HELP)(apply.apply)
app.command(epilog=ADMIN_HELP)(parse.parse)
app.add_typer(workflows.app)
app.add_typer(executions.app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="hookflow")
    except CliError as error:
        output.error(error.message)
        sys.exit(error.code)


if __name__ == "__main__":
    main()
