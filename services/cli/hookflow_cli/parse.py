"""`hookflow parse URL | --body FILE`: the config API's parse helper, every path of a sample
with its value and type, ready for a trigger's request config."""

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from hookflow_cli import output
from hookflow_cli.client import Client
from hookflow_cli.errors import CliError, ExitCode
from hookflow_cli.options import ApiUrl, Json, Token


def parse(
    url: Annotated[
        str | None,
        typer.Argument(help="A full URL or a bare query string (a=1&b[0]=2).", show_default=False),
    ] = None,
    body: Annotated[
        Path | None,
        typer.Option("--body", help="A JSON file holding a sample body.", show_default=False),
    ] = None,
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """The paths of a sample query string or JSON body, as a table."""
    if (url is None) == (body is None):
        raise typer.BadParameter("give a URL or --body FILE (one of them)")
    payload: dict[str, Any] = {"url": url} if url is not None else {"body": _sample(body)}
    with Client(api_url, token) as client:
        answer = client.call("POST", "/api/webhook:parse", json=payload)
    if json:
        output.json_out(answer)
        return
    part = "query" if "query" in answer else "body"
    output.table(
        ("path", "type", "value"),
        ([p["key"], p["type"], _value(p)] for p in answer[part]),
        title=f"{part} paths"
        + (" (truncated: not all of them)" if answer.get("truncated") else ""),
    )


def _value(path: dict[str, Any]) -> str:
    """A sample value as JSON (a string as itself), or why it is not there."""
    if "value" not in path:
        return "(too long to show)"
    value = path["value"]
    return value if isinstance(value, str) else jsonlib.dumps(value, ensure_ascii=False)


def _sample(path: Path | None) -> Any:
    assert path is not None
    try:
        return jsonlib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CliError(f"{path}: cannot be read ({error.strerror})", ExitCode.INVALID) from None
    except (UnicodeDecodeError, jsonlib.JSONDecodeError) as error:
        raise CliError(f"{path}: not a JSON sample ({error})", ExitCode.INVALID) from None
