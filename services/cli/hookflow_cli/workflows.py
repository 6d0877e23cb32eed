"""`hookflow workflows list | show | enable | disable | delete`."""

from typing import Annotated, Any

import typer

from hookflow_cli import output
from hookflow_cli.client import Client
from hookflow_cli.options import ADMIN_HELP, ApiUrl, Json, Token
from hookflow_cli.refs import resolve

app = typer.Typer(
    name="workflows",
    help="List, show, enable, disable and delete workflows (REF: an id or a name).",
    no_args_is_help=True,
)

Ref = Annotated[str, typer.Argument(help="The workflow's id or name.", show_default=False)]


def _row(workflow: dict[str, Any]) -> list[Any]:
    return [
        workflow["id"],
        workflow.get("name"),
        workflow.get("title"),
        workflow.get("enabled"),
        workflow.get("sync"),
        workflow.get("version"),
        workflow.get("updatedAt"),
    ]


COLUMNS = ("id", "name", "title", "enabled", "sync", "version", "updated")


@app.command("list", epilog=ADMIN_HELP)
def list_workflows(api_url: ApiUrl = None, token: Token = None, json: Json = False) -> None:
    """Every workflow."""
    with Client(api_url, token) as client:
        workflows = client.pages("/api/workflows", {})
    if json:
        output.json_out(workflows)
    else:
        output.table(COLUMNS, map(_row, workflows))


@app.command(epilog=ADMIN_HELP)
def show(ref: Ref, api_url: ApiUrl = None, token: Token = None, json: Json = False) -> None:
    """One workflow: its settings, its webhook URL and its nodes."""
    with Client(api_url, token) as client:
        workflow = resolve(client, ref)
    if json:
        output.json_out(workflow)
        return
    trigger = workflow.get("trigger", {})
    output.fields(
        [
            ("id", workflow["id"]),
            ("name", workflow.get("name")),
            ("title", workflow.get("title")),
            ("enabled", workflow.get("enabled")),
            ("sync", workflow.get("sync")),
            ("version", workflow.get("version")),
            ("created", workflow.get("createdAt")),
            ("updated", workflow.get("updatedAt")),
            ("webhook URL", workflow.get("webhookUrl")),
            ("basic auth", "basicAuth" in trigger),
            ("signature", "signature" in trigger),
        ]
    )
    nodes = workflow.get("nodes", [])
    output.table(
        ("key", "type", "config"),
        ([n.get("key"), n.get("type"), n.get("config")] for n in nodes),
        title=f"{len(nodes)} top-level node(s)",
    )


def _set_enabled(
    ref: str, enabled: bool, api_url: str | None, token: str | None, json: bool
) -> None:
    with Client(api_url, token) as client:
        workflow = resolve(client, ref)
        changed = client.call(
            "PATCH", f"/api/workflows/{workflow['id']}", json={"enabled": enabled}
        )
    if json:
        output.json_out(changed)
    else:
        state = "enabled" if enabled else "disabled (its webhook answers 404)"
        output.say(f"{_label(changed)} {state}; version {changed['version']}.")


@app.command(epilog=ADMIN_HELP)
def enable(ref: Ref, api_url: ApiUrl = None, token: Token = None, json: Json = False) -> None:
    """Enable a workflow: its webhook runs it again."""
    _set_enabled(ref, True, api_url, token, json)


@app.command(epilog=ADMIN_HELP)
def disable(ref: Ref, api_url: ApiUrl = None, token: Token = None, json: Json = False) -> None:
    """Disable a workflow: its webhook answers 404 until it is enabled."""
    _set_enabled(ref, False, api_url, token, json)


@app.command(epilog=ADMIN_HELP)
def delete(
    ref: Ref,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Delete a workflow (its executions are kept); asks first unless --yes."""
    with Client(api_url, token) as client:
        workflow = resolve(client, ref)
        if not yes:
            typer.confirm(f"Delete {_label(workflow)}?", abort=True, err=True)
        client.call("DELETE", f"/api/workflows/{workflow['id']}")
    if json:
        output.json_out({"id": workflow["id"], "deleted": True})
    else:
        output.say(f"{_label(workflow)} deleted.")


def _label(workflow: dict[str, Any]) -> str:
    name = workflow.get("name")
    return f"workflow {workflow['id']}" + (f" ({name})" if name else "")
