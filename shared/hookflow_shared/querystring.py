"""Query strings and form bodies with the bracket syntax integrators send.

`a[0][b]=1&a[0][c]=2&tags[]=x&tags[]=y` -> {"a": [{"b": "1", "c": "2"}], "tags": ["x", "y"]};
a repeated plain key (`a=1&a=2`) gives a list. Percent-encoding and `+` are decoded.

Whatever the input, parsing takes time linear in its length and never recurses: `a[]=x`
repeated finds its next index in constant time, and the nesting is built and normalized with
explicit stacks, so a hostile depth cannot exhaust Python's stack (with `max_depth`, it is
refused as BadRequest).
"""

import re
from typing import Any
from urllib.parse import parse_qsl

from hookflow_shared.errors import BadRequest

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_MAX_INDEX = 1000
"""Above this an index is kept as an object key, so `a[999999999]=1` cannot allocate a list."""


class _Level(dict[str, Any]):
    """One level of the tree being built, counting its numeric keys, so `a[]=x` finds its next
    index in constant time (counting them on every append made repetitions quadratic)."""

    __slots__ = ("numbered",)

    def __init__(self, values: list[str] | None = None) -> None:
        """Empty, or holding `values` at indexes 0, 1, ... (a plain value turned into a list)."""
        super().__init__()
        self.numbered = 0
        for index, value in enumerate(values or ()):
            self.add(str(index), value)

    def add(self, key: str, value: Any) -> None:
        """Set a key that is not there yet."""
        self[key] = value
        if _is_index(key):
            self.numbered += 1


def _is_index(key: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes `²`, which `int` refuses."""
    return key.isascii() and key.isdigit()


def _split(name: str) -> list[str]:
    if "[" not in name:
        return [name]
    match = _KEY.match(name)
    if match is None:
        return [name]
    return [match.group(1), *_BRACKETS.findall(match.group(2))]


def _assign(container: _Level, parts: list[str], value: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if part == "":
            part = str(container.numbered)
        existing = container.get(part)
        if last:
            if existing is None:
                container.add(part, value)
            elif isinstance(existing, list):
                existing.append(value)
            elif isinstance(existing, str):
                container[part] = [existing, value]
            return
        if existing is None:
            child = _Level()
            container.add(part, child)
        elif isinstance(existing, str):  # `a=1&a[]=2`: the plain value becomes the first item
            child = container[part] = _Level([existing])
        elif isinstance(existing, list):  # `a=1&a=2&a[]=3`
            child = container[part] = _Level(existing)
        else:
            child = existing
        container = child


def _as_list(level: _Level) -> list[Any] | None:
    """The values in index order when every key is an index up to _MAX_INDEX, else None."""
    if not level or level.numbered != len(level):
        return None
    if not all(len(key) <= 4 and int(key) <= _MAX_INDEX for key in level):
        return None
    return [level[key] for key in sorted(level, key=int)]


def _normalize(root: _Level, max_depth: int | None, what: str) -> dict[str, Any]:
    """Plain dicts and lists (levels numbered 0..n become lists), top-down with a stack. The
    root stays an object, whatever its keys."""
    result: dict[str, Any] = {}
    pending: list[tuple[list[tuple[Any, Any]], dict[str, Any] | list[Any], int]] = [
        (list(root.items()), result, 1)
    ]
    while pending:
        items, target, depth = pending.pop()
        for key, item in items:
            if isinstance(item, str):
                value: Any = item
            else:
                if max_depth is not None and depth + 1 > max_depth:
                    raise BadRequest(f"{what} nests deeper than {max_depth} levels")
                if isinstance(item, list):  # repeated values: strings only
                    value = list(item)
                else:
                    ordered = _as_list(item)
                    if ordered is None:
                        value = {}
                        pending.append((list(item.items()), value, depth + 1))
                    else:
                        value = []
                        pending.append((list(enumerate(ordered)), value, depth + 1))
            if isinstance(target, list):
                target.append(value)
            else:
                target[key] = value
    return result


def parse_query(
    query: str,
    encoding: str = "utf-8",
    *,
    max_depth: int | None = None,
    what: str = "query string",
) -> dict[str, Any]:
    """Parse a query string (without the `?`) into nested objects and lists; percent-encoded
    bytes are read in `encoding` (Alipay may send GBK). With `max_depth`, a result nesting
    objects and lists deeper than that (`{"a": 1}` is one level) is refused: BadRequest saying
    that `what` nests too deep."""
    if not query:
        return {}
    root = _Level()
    for name, value in parse_qsl(
        query, keep_blank_values=True, encoding=encoding, errors="replace"
    ):
        parts = _split(name)
        if max_depth is not None and len(parts) > max_depth:
            raise BadRequest(f"{what} nests deeper than {max_depth} levels")
        _assign(root, parts, value)
    return _normalize(root, max_depth, what)
