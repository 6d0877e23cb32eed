"""Checks a workflow document against the node types before it is stored.

Each fault comes back with the path of the field at fault, e.g.
{"path": "nodes[0].branches.true[1].config.statusCode", "message": "..."}.
"""

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from hookflow_shared.models import Node, WorkflowDocument, error_details
from hookflow_shared.workflow.language import Language
from hookflow_shared.workflow.templates import parse_path, template_references

VARIABLE_ROOTS = frozenset({"$context", "$jobsMapByNodeKey", "$system"})


def validate_workflow(document: WorkflowDocument, language: Language) -> list[dict[str, str]]:
    faults: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    _check_nodes(document, language, document.nodes, "nodes", set(), seen, faults)
    return faults


def _check_nodes(
    document: WorkflowDocument,
    language: Language,
    nodes: list[Node],
    path: str,
    before: set[str],
    seen: dict[str, str],
    faults: list[dict[str, str]],
) -> set[str]:
    """Checks a list of nodes; `before` holds the keys of nodes that may have run before it.
    Returns the keys of every node in the list (branches included)."""
    ran = set(before)
    for index, node in enumerate(nodes):
        here = f"{path}[{index}]"
        if node.key in seen:
            faults.append(
                _fault(f"{here}.key", f"duplicate node key {node.key!r} (also at {seen[node.key]})")
            )
        else:
            seen[node.key] = here
        node_type = language.get(node.type)
        if node_type is None:
            known = ", ".join(language.names())
            faults.append(
                _fault(f"{here}.type", f"unknown node type {node.type!r} (known: {known})")
            )
        else:
            if node_type.sync_only and not document.sync:
                faults.append(
                    _fault(f"{here}.type", f"a {node.type} node is only valid in a sync workflow")
                )
            try:
                node_type.config.model_validate(node.config)
            except ValidationError as error:
                faults.extend(error_details(error, f"{here}.config"))
            for name in node.branches or {}:
                if name not in node_type.branches:
                    allowed = ", ".join(node_type.branches) or "none"
                    faults.append(
                        _fault(
                            f"{here}.branches.{name}",
                            f"a {node.type} node has no branch {name!r} (allowed: {allowed})",
                        )
                    )
        for where, reference in _references(node.config, f"{here}.config"):
            faults.extend(_check_reference(where, reference, node.key, ran))
        for name, branch in (node.branches or {}).items():
            ran |= _check_nodes(
                document,
                language,
                branch,
                f"{here}.branches.{name}",
                ran | {node.key},
                seen,
                faults,
            )
        ran.add(node.key)
    return ran


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        for reference in template_references(value):
            yield path, reference
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}[{index}]")


def _check_reference(
    path: str, reference: str, own_key: str, ran: set[str]
) -> list[dict[str, str]]:
    parts = parse_path(reference)
    root = str(parts[0])
    if root not in VARIABLE_ROOTS:
        return [
            _fault(
                path, f"unknown variable {root} (use one of {', '.join(sorted(VARIABLE_ROOTS))})"
            )
        ]
    if root == "$jobsMapByNodeKey":
        if len(parts) < 2:
            return [_fault(path, "$jobsMapByNodeKey needs a node key: {{$jobsMapByNodeKey.<key>}}")]
        key = str(parts[1])
        if key == own_key:
            return [_fault(path, f"node {key!r} cannot read its own result")]
        if key not in ran:
            return [_fault(path, f"node {key!r} cannot have run before this node")]
    return []


def _fault(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}
