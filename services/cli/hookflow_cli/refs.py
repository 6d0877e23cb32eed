"""REF: a workflow named by its id or by its `name` (the unique slug of its document)."""

import re
from typing import Any, get_args

from hookflow_cli.client import Client
from hookflow_cli.errors import CliError, ExitCode
from hookflow_shared.ids import is_id
from hookflow_shared.models import WorkflowName

NAME = re.compile(get_args(WorkflowName)[1].pattern)


def is_name(text: str) -> bool:
    """Whether `text` has the shape of a workflow's name (what the config API can look up)."""
    return NAME.fullmatch(text) is not None


def find_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """The workflow whose document has this `name`, or None."""
    found = client.call("GET", "/api/workflows", params={"name": name, "limit": 1})["items"]
    return dict(found[0]) if found else None


def resolve(client: Client, ref: str) -> dict[str, Any]:
    """The workflow that REF names, as the config API answers it."""
    if is_id(ref):
        return dict(client.call("GET", f"/api/workflows/{ref}"))
    found = find_by_name(client, ref) if is_name(ref) else None
    if found is None:
        raise CliError(
            f"no workflow is named {ref!r} (a REF is a workflow's id or its name; "
            "`hookflow workflows list` shows both)",
            ExitCode.NOT_FOUND,
        )
    return found
