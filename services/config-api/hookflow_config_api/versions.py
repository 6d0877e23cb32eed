"""A workflow's history: its versions, newest first, each saying what changed from the one
before, so an admin sees who-changed-what without fetching two documents and comparing them."""

from datetime import datetime
from typing import Any

from hookflow_shared.errors import NotFound
from hookflow_shared.models import StoredWorkflow, Wire
from hookflow_shared.storage import Storage

SECRET_PATHS = {
    "trigger.basicAuth.passwordHash": "trigger.basicAuth.password",
    "trigger.signature.encryptedSecret": "trigger.signature.secret",
}
"""The stored forms of secrets are named by what the admin writes: a change of password shows
as `trigger.basicAuth.password` (paths only: a value is never in a summary)."""


class VersionSummary(Wire):
    """One version in a workflow's history."""

    version: int
    updated_at: datetime
    """When this version was stored."""
    title: str
    name: str | None = None
    enabled: bool
    changes: list[str] | None
    """The paths of the document that differ from the previous version (`trigger.key` after
    a rotate-key, `nodes[0].config` after a node's change); None for version 1."""


class VersionPage(Wire):
    items: list[VersionSummary]
    next_cursor: str | None
    """The cursor of the next (older) page; None on the last."""


async def version_page(
    storage: Storage, workflow_id: str, *, limit: int, before: int | None
) -> VersionPage:
    """A page of the history (404 for a workflow never stored; a deleted one's is kept)."""
    versions = await storage.list_workflow_versions(workflow_id, limit=limit + 1, before=before)
    if not versions and await storage.get_workflow_version(workflow_id, 1) is None:
        raise NotFound(f"workflow {workflow_id} not found")
    more = len(versions) > limit
    page = versions[:limit]
    previous: StoredWorkflow | None = versions[limit] if more else None
    if previous is None and page and page[-1].version > 1:
        previous = await storage.get_workflow_version(workflow_id, page[-1].version - 1)
    items = []
    for index, workflow in enumerate(page):
        older = page[index + 1] if index + 1 < len(page) else previous
        items.append(_summary(workflow, older))
    return VersionPage(items=items, next_cursor=str(page[-1].version) if more else None)


def _summary(workflow: StoredWorkflow, older: StoredWorkflow | None) -> VersionSummary:
    document = workflow.document
    changes = None
    if workflow.version > 1:
        before = older.document.model_dump(mode="json") if older is not None else {}
        changes = [
            SECRET_PATHS.get(path, path)
            for path in changed_paths(before, document.model_dump(mode="json"))
        ]
    return VersionSummary(
        version=workflow.version,
        updated_at=workflow.updated_at,
        title=document.title,
        name=document.name,
        enabled=document.enabled,
        changes=changes,
    )


def changed_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ: objects key by key, lists of the same length item by
    item; anything else that differs is named whole."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        paths = []
        for key in sorted(old.keys() | new.keys()):
            inner = f"{path}.{key}" if path else key
            paths.extend(changed_paths(old.get(key), new.get(key), inner))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            paths.extend(changed_paths(before, after, f"{path}[{index}]"))
        return paths
    return [path or "(document)"]
