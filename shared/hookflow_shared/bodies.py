"""Request bodies as integrators send them, each parsed into the same `$context.body`:

- JSON (`application/json`, `application/*+json`), in its charset;
- forms (`application/x-www-form-urlencoded`, as Alipay notifies), with the query string's
  bracket syntax (`a[0][b]=1`);
- XML (`application/xml`, `text/xml`, `application/*+xml`, as WeChat Pay notifies): elements
  become keys under the root's name, CDATA is read as text, repeated elements become lists,
  attributes `@name`, text beside attributes or children `#text`; parsed by defusedxml, so
  entity expansion, external entities and DTDs are refused;
- `text/plain`: the text itself.

The gateway and the config API's sample parser use the same functions.
"""

import re
from typing import Any
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


def parse_body(raw: bytes, content_type: str, charset: str | None = None) -> Any:
    """Parse a request body; an empty body is `{}`. Raises UnsupportedMediaType (415) for a
    type not accepted and BadRequest (400) saying where a body does not parse."""
    if not raw.strip():
        return {}
    kind = kind_of(content_type)
    if kind is None:
        accepted = ", ".join(ACCEPTED)
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'!r} is not accepted; send one of: {accepted}"
        )
    if kind == "json":
        try:
            if charset is None or charset.lower() in ("utf-8", "utf8"):
                return orjson.loads(raw)
            return orjson.loads(_decode(raw, charset))
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"body is not valid JSON: {error}") from error
    if kind == "form":
        charset = charset or "utf-8"
        return parse_query(_decode(raw, charset), encoding=charset)
    if kind == "text":
        return _decode(raw, charset)
    return parse_xml(raw, charset)


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
    return {_local(root.tag): _element(root)}


def _local(tag: str) -> str:
    """`{namespace}name` -> `name`."""
    return tag.rsplit("}", 1)[-1]


def _element(element: Element) -> Any:
    children = list(element)
    text = (element.text or "").strip()
    if not children and not element.attrib:
        return text if text else None
    value: dict[str, Any] = {f"@{_local(name)}": item for name, item in element.attrib.items()}
    repeated: set[str] = set()
    for child in children:
        name = _local(child.tag)
        item = _element(child)
        if name not in value:
            value[name] = item
        elif name in repeated:
            value[name].append(item)
        else:
            value[name] = [value[name], item]
            repeated.add(name)
    if text:
        value["#text"] = text
    return value


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


def variable_paths(value: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Every path at every level with its sample value and type, as the seed's "parse" button
    lists them: `{"a": 1, "b": {"c": 2}}` gives a, b, b.c; `{"q": [{"a": "1"}]}` gives q, q[0],
    q[0].a."""
    paths: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.append({"key": path, "value": item, "type": _type(item)})
            paths.extend(variable_paths(item, path))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            path = f"{prefix}[{index}]"
            paths.append({"key": path, "value": item, "type": _type(item)})
            paths.extend(variable_paths(item, path))
    return paths
