"""`hookflow executions list | show | replay`."""

from json import dumps
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hookflow_cli import output
from hookflow_cli.client import ApiError, Client
from hookflow_cli.errors import CliError, ExitCode
from hookflow_cli.options import ADMIN_HELP, ApiUrl, Json, Token
from hookflow_cli.refs import resolve
from hookflow_shared.ids import is_id

app = typer.Typer(name="executions", help="List, show and replay executions.", no_args_is_help=True)

WorkflowRef = Annotated[
    str | None,
    typer.Option(
        "--workflow", "-w", help="Only this workflow's (its id or name).", show_default=False
    ),
]
Status = Annotated[
    str | None,
    typer.Option("--status", "-s", help="Only those that succeeded or failed.", show_default=False),
]
STATUSES = ("succeeded", "failed")


def _filters(client: Client, workflow: str | None, status: str | None) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"must be {' or '.join(STATUSES)}", param_hint="--status")
    # An id is taken as it is: a deleted workflow's executions are still listed.
    if workflow is None or is_id(workflow):
        return {"workflow": workflow, "status": status}
    return {"workflow": resolve(client, workflow)["id"], "status": status}


@app.command("list", epilog=ADMIN_HELP)
def list_executions(
    workflow: WorkflowRef = None,
    status: Status = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 20,
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Executions, newest first."""
    with Client(api_url, token) as client:
        items = client.pages("/api/executions", _filters(client, workflow, status), limit)
        names = {} if json or workflow else _names(client)
    if json:
        output.json_out(items)
        return
    output.table(
        ("id", "workflow", "version", "status", "received", "replay of", "error"),
        (
            [
                e["id"],
                None if workflow else names.get(e["workflowId"], e["workflowId"]),
                e["version"],
                e["status"],
                e["receivedAt"],
                e.get("replayOf"),
                e.get("error"),
            ]
            for e in items
        ),
        optional=("workflow", "replay of", "error"),
    )


def _names(client: Client) -> dict[str, str]:
    """Workflow id -> name, for the workflows that have one (shorter than ids in a table)."""
    return {w["id"]: w["name"] for w in client.pages("/api/workflows", {}) if w.get("name")}


@app.command(epilog=ADMIN_HELP)
def show(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="The execution's id.")],
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """One execution: its status, its trigger context, each node's result, the response."""
    with Client(api_url, token) as client:
        record = client.call("GET", f"/api/executions/{execution_id}")
    if json:
        output.json_out(record)
        return
    response = record.get("response") or {}
    output.fields(
        [
            ("id", record["id"]),
            ("workflow", record["workflowId"]),
            ("version", record["version"]),
            ("status", record["status"]),
            ("received", record["receivedAt"]),
            ("finished", record["finishedAt"]),
            ("request id", record.get("requestId")),
            ("replay of", record.get("replayOf")),
            ("error", record.get("error")),
            ("context", record.get("context")),
            (
                "response",
                f"{response['statusCode']} {output.cell(response.get('body'))}"
                if response
                else None,
            ),
        ]
    )
    output.table(
        ("node", "type", "status", "result", "error"),
        (
            [
                n["key"],
                n["type"],
                n["status"],
                dumps(n.get("result"), ensure_ascii=False),
                n.get("error"),
            ]
            for n in record.get("nodes", [])
        ),
        title="nodes",
    )


@app.command(epilog=ADMIN_HELP)
def replay(
    ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="ID", help="The executions to run again.", show_default=False),
    ] = None,
    workflow: WorkflowRef = None,
    status: Status = None,
    original: Annotated[
        bool, typer.Option("--original", help="On the version each ran (default: the current).")
    ] = False,
    api_url: ApiUrl = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Run executions again with their trigger context: the IDs given, or all that --workflow
    and --status select (e.g. --workflow payments --status failed), with a progress bar."""
    if ids and (workflow or status):
        raise typer.BadParameter("give execution ids or --workflow/--status, not both")
    if not ids and not (workflow or status):
        raise typer.BadParameter("give execution ids, or --workflow and/or --status to select")
    body = {"version": "original"} if original else {}
    with Client(api_url, token) as client:
        if not ids:
            selected = client.pages("/api/executions", _filters(client, workflow, status))
            ids = [e["id"] for e in selected]
        results = _replay_all(client, ids, body, progress=not json and len(ids) > 0)
    failed = [r for r in results if "error" in r]
    if json:
        output.json_out(results)
    else:
        output.table(
            ("execution", "replayed as", "error"),
            ([r["execution"], r.get("id"), r.get("error")] for r in results),
            optional=("error",),
        )
        output.say(
            f"{len(results) - len(failed)} of {len(results)} replayed, {len(failed)} failed."
        )
    if failed:
        raise CliError(
            f"{len(failed)} of {len(results)} replays failed (see above)", ExitCode.ERROR
        )


def _replay_all(
    client: Client, ids: list[str], body: dict[str, str], *, progress: bool
) -> list[dict[str, Any]]:
    """Each replay's answer (`execution`, and the new `id` or an `error`); a failure of one
    does not stop the others, but an unreachable API or a refused token stops all."""
    results: list[dict[str, Any]] = []
    bar = Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.stderr,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("replay", total=len(ids))
        for execution_id in ids:
            try:
                answer = client.call("POST", f"/api/executions/{execution_id}:replay", json=body)
                results.append({"execution": execution_id, "id": answer["id"]})
            except ApiError as error:
                if error.code in (ExitCode.AUTH, ExitCode.UNREACHABLE):
                    raise
                results.append({"execution": execution_id, "error": error.message})
            bar.advance(task)
    return results
