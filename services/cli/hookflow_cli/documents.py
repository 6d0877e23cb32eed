"""Reading workflow files for `hookflow apply`: YAML or JSON, one document or a list of them.
Every problem is told with the file and where in it (a line for a syntax error, a field path
for a document of the wrong shape)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Document:
    """One workflow document of a file; `where` is its place in the file ("" when it is the
    file's whole content, "[2]" when it is the third of a list)."""

    path: Path
    where: str
    body: dict[str, Any]

    def at(self, field: str = "") -> str:
        """`file`, `file[2]`, `file: trigger.request` as a message's prefix."""
        place = f"{self.path}{self.where}"
        return f"{place}: {field}" if field else place


class FileProblems(Exception):
    """What is wrong with the files, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_all(paths: list[Path]) -> list[Document]:
    """Every document of every file; FileProblems with all that is wrong, before any is sent."""
    documents: list[Document] = []
    problems: list[str] = []
    for path in paths:
        try:
            documents += read(path)
        except FileProblems as error:
            problems += error.problems
    if problems:
        raise FileProblems(problems)
    return documents


def read(path: Path) -> list[Document]:
    content = _load(path)
    if isinstance(content, list):
        items = [(f"[{index}]", item) for index, item in enumerate(content)]
    else:
        items = [("", content)]
    problems = [
        f"{path}{where}: a workflow document must be a mapping (title, trigger, nodes...), "
        f"not {_kind(item)}"
        for where, item in items
        if not isinstance(item, dict)
    ]
    if not items:
        problems.append(f"{path}: the list holds no workflow document")
    if problems:
        raise FileProblems(problems)
    return [Document(path, where, item) for where, item in items]


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FileProblems([f"{path}: cannot be read ({error})"]) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise FileProblems(
                [f"{path}: line {error.lineno} column {error.colno}: not valid JSON ({error.msg})"]
            ) from None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise FileProblems([f"{path}: {where}not valid YAML ({problem})"]) from None
    if not documents or documents == [None]:
        raise FileProblems([f"{path}: the file is empty"])
    return documents[0] if len(documents) == 1 else documents


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), "a list"
    )
