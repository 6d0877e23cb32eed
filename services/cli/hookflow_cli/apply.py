"""`hookflow apply FILE...`: create or update workflows from files. A document with a `name`
updates the workflow of that name (created when there is none); one without is created. The
config API decides whether a document changed anything: when the version did not move, the
workflow is reported unchanged."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from hookflow_cli import output
from hookflow_cli.client import ApiError, Client
from hookflow_cli.documents import Document, FileProblems, read_all
from hookflow_cli.errors import CliError, ExitCode
from hookflow_cli.options import ApiUrl, Json, Token
from hookflow_cli.refs import find_by_name, is_name

type Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class Applied:
    document: Document
    action: Action
    workflow: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.document.at(),
            "action": self.action,
            "id": self.workflow["id"],
            "name": self.workflow.get("name"),
            "title": self.workflow.get("title"),
            "version": self.workflow["version"],
            "webhookUrl": self.workflow.get("webhookUrl"),
        }


def apply(
    files: Annotated[
        list[Path], typer.Argument(help="YAML or JSON files, each a workflow or a list of them.")
    ],
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create or update workflows from YAML or JSON files (a `name` finds the one to update)."""
    try:
        documents = read_all(files)
    except FileProblems as error:
        raise CliError(_invalid(error.problems), ExitCode.INVALID) from None
    applied: list[Applied] = []
    problems: list[str] = []
    with Client(api_url, token) as client:
        for document in documents:
            try:
                applied.append(apply_one(client, document))
            except ApiError as error:
                if error.code != ExitCode.INVALID and error.status != 409:
                    raise  # not about this document (token, reachability...)
                problems += _rejected(document, error)
    if json:
        output.json_out([a.summary() for a in applied])
    elif applied:
        output.table(
            ("file", "action", "id", "name", "version"),
            (
                [
                    a.document.at(),
                    a.action,
                    a.workflow["id"],
                    a.workflow.get("name"),
                    a.workflow["version"],
                ]
                for a in applied
            ),
        )
    if problems:
        raise CliError(_invalid(problems, len(applied)), ExitCode.INVALID)


def apply_one(client: Client, document: Document) -> Applied:
    name = document.body.get("name")
    # A malformed name is left to the config API, which says so with its field path.
    current = find_by_name(client, name) if isinstance(name, str) and is_name(name) else None
    if current is None:
        created = client.call("POST", "/api/workflows", json=document.body)
        return Applied(document, "created", created)
    updated = client.call("PUT", f"/api/workflows/{current['id']}", json=document.body)
    moved = updated["version"] != current["version"]
    return Applied(document, "updated" if moved else "unchanged", updated)


def _rejected(document: Document, error: ApiError) -> list[str]:
    """The config API's validation answer, one line per wrong field."""
    details = error.body.get("details") if isinstance(error.body, dict) else None
    if isinstance(details, list) and details:
        return [
            document.at(f"{item.get('path', '(document)')}: {item.get('message', '')}")
            for item in details
            if isinstance(item, dict)
        ]
    return [document.at(error.message)]


def _invalid(problems: list[str], applied: int = 0) -> str:
    done = f" ({applied} applied, shown above)" if applied else " (nothing was applied)"
    lines = "\n".join(f"  {problem}" for problem in problems)
    return f"invalid workflow files{done}; fix these and apply again:\n{lines}"
