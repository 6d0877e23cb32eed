"""Query strings and form bodies with the bracket syntax integrators send.

`a[0][b]=1&a[0][c]=2&tags[]=x&tags[]=y` -> {"a": [{"b": "1", "c": "2"}], "tags": ["x", "y"]};
a repeated plain key (`a=1&a=2`) gives a list. Percent-encoding and `+` are decoded.
"""

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_MAX_INDEX = 1000
"""Above this an index is kept as an object key, so `a[999999999]=1` cannot allocate a list."""


def _split(name: str) -> list[str]:
    match = _KEY.match(name)
    if match is None:
        return [name]
    return [match.group(1), *_BRACKETS.findall(match.group(2))]


def _assign(container: dict[str, Any], parts: list[str], value: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if part == "":
            part = str(sum(1 for key in container if key.isdigit()))
        if last:
            existing = container.get(part)
            if existing is None:
                container[part] = value
            elif isinstance(existing, list):
                existing.append(value)
            elif isinstance(existing, str):
                container[part] = [existing, value]
            return
        child = container.get(part)
        if child is None:
            child = container[part] = {}
        elif isinstance(child, str):  # `a=1&a[]=2`: the plain value becomes the first item
            child = container[part] = {"0": child}
        elif isinstance(child, list):  # `a=1&a=2&a[]=3`
            child = container[part] = {str(i): item for i, item in enumerate(child)}
        container = child


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        if keys and all(key.isdigit() and int(key) <= _MAX_INDEX for key in keys):
            return [_normalize(value[key]) for key in sorted(keys, key=int)]
        return {key: _normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    return value


def parse_query(query: str, encoding: str = "utf-8") -> dict[str, Any]:
    """Parse a query string (without the `?`) into nested objects and lists; percent-encoded
    bytes are read in `encoding` (Alipay may send GBK)."""
    root: dict[str, Any] = {}
    for name, value in parse_qsl(
        query, keep_blank_values=True, encoding=encoding, errors="replace"
    ):
        _assign(root, _split(name), value)
    return {key: _normalize(value) for key, value in root.items()}
