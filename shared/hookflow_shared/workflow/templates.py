"""Variable paths (`order.items[0].sku`) and NocoBase-style templates (`{{$context.body.x}}`)."""

import re
from functools import lru_cache
from typing import Any

import orjson

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^\]]*)\]")
TEMPLATE = re.compile(r"\{\{\s*(\$[A-Za-z_][A-Za-z0-9_]*(?:[.\[][^{}\s]*)?)\s*\}\}")

type PathPart = str | int


@lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[PathPart, ...]:
    """`a.b[0].c` -> ("a", "b", 0, "c"). A bracketed word (`a[b]`) is a key like `a.b`."""
    parts: list[PathPart] = []
    for name, index, bracket_key in _SEGMENT.findall(path):
        if name:
            parts.append(name)
        elif index:
            parts.append(int(index))
        else:
            parts.append(bracket_key)
    return tuple(parts)


def get_path(value: Any, parts: tuple[PathPart, ...]) -> Any:
    """Walk a path through dicts and lists; a missing step gives None, never an error."""
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part if isinstance(part, str) else str(part))
        elif isinstance(value, list) and isinstance(part, int):
            value = value[part] if -len(value) <= part < len(value) else None
        elif isinstance(value, list) and isinstance(part, str) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def template_references(text: str) -> list[str]:
    """The variable paths (with their `$root`) used by the templates in one string."""
    return TEMPLATE.findall(text)


@lru_cache(maxsize=4096)
def _compile(text: str) -> tuple[tuple[str, tuple[PathPart, ...]] | str, ...] | None:
    """A string as literal pieces and (root, path) references; None when it has no template."""
    if "{{" not in text:
        return None
    pieces: list[tuple[str, tuple[PathPart, ...]] | str] = []
    position = 0
    for match in TEMPLATE.finditer(text):
        if match.start() > position:
            pieces.append(text[position : match.start()])
        parts = parse_path(match.group(1))
        pieces.append((str(parts[0]), parts[1:]))
        position = match.end()
    if not pieces:
        return None
    if position < len(text):
        pieces.append(text[position:])
    return tuple(pieces)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def render(value: Any, scope: dict[str, Any]) -> Any:
    """Fill every template inside a value (strings, and dicts and lists all the way down).

    A string that is exactly one template keeps the variable's JSON type; a template inside
    longer text is replaced by the value's text (JSON for objects, nothing for null).
    """
    if isinstance(value, str):
        pieces = _compile(value)
        if pieces is None:
            return value
        if len(pieces) == 1 and isinstance(pieces[0], tuple):
            root, parts = pieces[0]
            return get_path(scope.get(root), parts)
        out = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                out.append(_as_text(get_path(scope.get(piece[0]), piece[1])))
        return "".join(out)
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value
