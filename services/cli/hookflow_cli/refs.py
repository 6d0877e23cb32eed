"""REF: a workflow named by its id or by its `name` (the unique slug of its document)."""

from typing import Any

from hookflow_cli.client import Client
from hookflow_cli.errors import CliError, ExitCode
from hookflow_shared.ids import is_id


def find_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """The workflow whose document has this `name`, or None."""
    for workflow in client.pages("/api/workflows", {}):
        if workflow.get("name") == name:
            return dict(workflow)
    return None


def resolve(client: Client, ref: str) -> dict[str, Any]:
    """The workflow that REF names, as the config API answers it."""
    if is_id(ref):
        return dict(client.call("GET", f"/api/workflows/{ref}"))
    found = find_by_name(client, ref)
    if found is None:
        raise CliError(
            f"no workflow is named {ref!r} (a REF is a workflow's id or its name; "
            "`hookflow workflows list` shows both)",
            ExitCode.NOT_FOUND,
        )
    return found
