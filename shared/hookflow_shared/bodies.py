"""Request bodies as integrators send them, each parsed into the same `$context.body`:

- JSON (`application/json`, `application/*+json`), in its charset;
- forms (`application/x-www-form-urlencoded`, as Alipay notifies), with the query string's
  bracket syntax (`a[0][b]=1`);
- XML (`application/xml`, `text/xml`, `application/*+xml`, as WeChat Pay notifies): elements
  become keys under the root's name, CDATA is read as text, repeated elements become lists,
  attributes `@name`, text beside attributes or children `#text`; parsed by defusedxml, so
  entity expansion, external entities and DTDs are refused;
- `text/plain`: the text itself.

The gateway and the config API's sample parser use the same functions. Whatever a body holds,
parsing it takes time linear in its length and never recurses (a hostile depth cannot exhaust
the stack); a body nesting deeper than MAX_DEPTH is a 400, and large bodies are parsed off the
event loop (`parse_body_off_loop`).
"""

import asyncio
import re
from collections.abc import Iterator
from typing import Any, NamedTuple
from xml.etree.ElementTree import Element, ParseError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as xml_fromstring

from hookflow_shared.errors import BadRequest, UnsupportedMediaType
from hookflow_shared.querystring import parse_query

ACCEPTED = (
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "text/xml",
    "text/plain",
)

MAX_DEPTH = 64
"""How deep a body or a query string may nest objects and arrays (`{"a": 1}` is one level,
`{"a": [1]}` two); deeper is a 400. The parsed body travels to the executor as JSON inside
RunBatch, which pydantic cannot read back past about 200 levels, and is stored in execution
records, which MongoDB refuses past 100: 64 leaves room for both."""

OFF_LOOP_BYTES = 64 * 1024
"""Bodies larger than this are parsed in a worker thread, so one large body does not hold up
the event loop (and every other caller); smaller ones, the usual webhook, are parsed inline
(JSON of this size takes a few milliseconds at most)."""
OFF_LOOP_BYTES_FORM_XML = 8 * 1024
"""The same for forms and XML, which are turned into values in Python, some five times slower
per byte than JSON: 64 KiB of a hostile form would hold the loop for tens of milliseconds."""


def kind_of(content_type: str) -> str | None:
    """ "json", "form", "xml", "text", or None when the type is not accepted."""
    content_type = content_type.lower()
    if content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        return "json"
    if content_type == "application/x-www-form-urlencoded":
        return "form"
    if content_type in ("application/xml", "text/xml") or (
        content_type.startswith("application/") and content_type.endswith("+xml")
    ):
        return "xml"
    if content_type == "text/plain":
        return "text"
    return None


def _decode(raw: bytes, charset: str | None) -> str:
    charset = (charset or "utf-8").lower()
    try:
        return raw.decode(charset)
    except LookupError as error:
        raise UnsupportedMediaType(f"unknown charset {charset!r}") from error
    except UnicodeDecodeError as error:
        raise BadRequest(f"body is not valid {charset} at byte {error.start}") from error


def too_deep(what: str) -> BadRequest:
    return BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels")


def nests_deeper(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests dicts and lists more than `limit` levels deep; walked one level at
    a time (no recursion, whatever the depth; each container is looked at once)."""
    level: list[Any] = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
        if not level:
            return False
    return bool(level)


def check_depth(value: Any, what: str = "body") -> Any:
    """`value`, when it nests at most MAX_DEPTH levels; else BadRequest saying so."""
    if nests_deeper(value):
        raise too_deep(what)
    return value


def parse_query_string(query: str) -> dict[str, Any]:
    """A request's query string, nesting at most MAX_DEPTH levels (else BadRequest)."""
    return parse_query(query, max_depth=MAX_DEPTH)


async def parse_body_off_loop(raw: bytes, content_type: str, charset: str | None = None) -> Any:
    """`parse_body`, in a worker thread when the body is large (OFF_LOOP_BYTES,
    OFF_LOOP_BYTES_FORM_XML): parsing a large body takes milliseconds to a second, during
    which the event loop would answer no one."""
    size = len(raw)
    if size > OFF_LOOP_BYTES or (
        size > OFF_LOOP_BYTES_FORM_XML and kind_of(content_type) in ("form", "xml")
    ):
        return await asyncio.to_thread(parse_body, raw, content_type, charset)
    return parse_body(raw, content_type, charset)


def parse_body(raw: bytes, content_type: str, charset: str | None = None) -> Any:
    """Parse a request body; an empty body is `{}`. Raises UnsupportedMediaType (415) for a
    type not accepted and BadRequest (400) saying where a body does not parse, or that it
    nests deeper than MAX_DEPTH. Takes time linear in the body's length, whatever it holds."""
    if not raw.strip():
        return {}
    kind = kind_of(content_type)
    if kind is None:
        accepted = ", ".join(ACCEPTED)
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'!r} is not accepted; send one of: {accepted}"
        )
    if kind == "json":
        return _parse_json(raw, charset)
    if kind == "form":
        charset = charset or "utf-8"
        return parse_query(
            _decode(raw, charset), encoding=charset, max_depth=MAX_DEPTH, what="body"
        )
    if kind == "text":
        return _decode(raw, charset)
    return parse_xml(raw, charset)


def _parse_json(raw: bytes, charset: str | None) -> Any:
    text = raw if charset is None or charset.lower() in ("utf-8", "utf8") else _decode(raw, charset)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):  # orjson's own limit, 1024
            raise too_deep("body") from error
        raise BadRequest(f"body is not valid JSON: {error}") from error
    # Each level needs its own bracket: with few brackets (the usual webhook) no walk is needed.
    brackets = (
        text.count(b"{") + text.count(b"[")
        if isinstance(text, bytes)
        else (text.count("{") + text.count("["))
    )
    if brackets > MAX_DEPTH:
        check_depth(value)
    return value


_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def parse_xml(raw: bytes, charset: str | None = None) -> dict[str, Any]:
    """XML in any encoding Python knows (expat alone reads few: GBK, as some Chinese payment
    systems send, is decoded here first), with DTDs and entities refused."""
    declared = _DECLARED_ENCODING.match(raw)
    encoding = (charset or (declared.group(1).decode() if declared else "utf-8")).lower()
    if encoding not in ("utf-8", "utf8"):
        text = _decode(raw, encoding)
        if declared:
            text = text.replace(declared.group(1).decode(), "utf-8", 1)
        raw = text.encode()
    try:
        root = xml_fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise BadRequest(
            f"XML refused: {type(error).__name__} (DTDs and entities are not allowed)"
        ) from error
    except ParseError as error:
        line, column = error.position
        raise BadRequest(f"body is not well-formed XML: line {line}, column {column}") from error
    except (ValueError, LookupError) as error:
        raise BadRequest(f"body is not readable XML: {error}") from error
    return _xml_value(root)


def _local(tag: str) -> str:
    """`{namespace}name` -> `name`."""
    return tag.rsplit("}", 1)[-1]


def _shell(element: Element) -> Any:
    """An element's value before its children are read: its text (None when empty) if it has
    neither children nor attributes, else a dict holding its attributes."""
    if len(element) or element.attrib:
        return {f"@{_local(name)}": item for name, item in element.attrib.items()}
    return (element.text or "").strip() or None


def _xml_value(root: Element) -> dict[str, Any]:
    """`{root name: value}`, built top-down with a stack (no recursion, whatever the depth);
    nesting deeper than MAX_DEPTH is a BadRequest."""
    value = _shell(root)
    pending: list[tuple[Element, dict[str, Any], int]] = []
    if isinstance(value, dict):
        pending.append((root, value, 2))
    while pending:
        element, target, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise too_deep("body")
        repeated: set[str] = set()
        containers: list[tuple[Element, dict[str, Any], str]] = []
        for child in element:
            name = _local(child.tag)
            item = _shell(child)
            if name not in target:
                target[name] = item
            elif name in repeated:
                target[name].append(item)
            else:
                target[name] = [target[name], item]
                repeated.add(name)
            if isinstance(item, dict):
                containers.append((child, item, name))
        text = (element.text or "").strip()
        if text:
            target["#text"] = text
        if repeated and depth + 1 > MAX_DEPTH:
            raise too_deep("body")
        for child, item, name in containers:
            pending.append((child, item, depth + (2 if name in repeated else 1)))
    return {_local(root.tag): value}


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


MAX_PATHS = 1000
"""The parse helper lists at most this many paths."""
MAX_VALUE_BYTES = 16 * 1024
"""A sample value whose JSON is larger is left out of the parse helper's answer."""
MAX_ANSWER_BYTES = 1024 * 1024
"""About the most the parse helper answers: paths and values together."""


class VariablePaths(NamedTuple):
    paths: list[dict[str, Any]]
    truncated: bool
    """Whether paths were left out (over MAX_PATHS or MAX_ANSWER_BYTES) or values were (over
    MAX_VALUE_BYTES; those entries say `"truncated": true` and have no `value`)."""


def _children(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (f"{prefix}.{key}" if prefix else str(key)), item
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield f"{prefix}[{index}]", item


def variable_paths(value: Any) -> VariablePaths:
    """Every path at every level with its sample value and type, as the parse helper (`POST
    /api/webhook:parse`) lists them: `{"a": 1, "b": {"c": 2}}` gives a, b, b.c; `{"q": [{"a":
    "1"}]}` gives q, q[0], q[0].a. Each container holds all its descendants, so a full answer would
    grow with size times depth: it is bounded (MAX_PATHS, MAX_VALUE_BYTES, MAX_ANSWER_BYTES) and
    says when it is not complete. Walked with a stack of iterators, so it never recurses and stops
    as soon as a bound is reached."""
    paths: list[dict[str, Any]] = []
    truncated = False
    budget = MAX_ANSWER_BYTES
    pending = [_children(value, "")]
    while pending:
        step = next(pending[-1], None)
        if step is None:
            pending.pop()
            continue
        path, item = step
        if len(paths) == MAX_PATHS or len(path) > budget:
            truncated = True
            break
        budget -= len(path) + 32  # with the entry's other bytes
        size = len(orjson.dumps(item))
        if size <= MAX_VALUE_BYTES and size <= budget:
            paths.append({"key": path, "value": item, "type": _type(item)})
            budget -= size
        else:
            paths.append({"key": path, "type": _type(item), "truncated": True})
            truncated = True
        if isinstance(item, dict | list):
            pending.append(_children(item, path))
    return VariablePaths(paths, truncated)
