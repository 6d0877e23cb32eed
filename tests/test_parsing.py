"""Query strings and variable paths, as integrators send and admins write them."""

import pytest

from hookflow_shared.querystring import parse_query
from hookflow_shared.workflow.templates import get_path, parse_path, render


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        (
            "a[0][b]=1&a[0][c]=2&tags[]=x&tags[]=y",
            {"a": [{"b": "1", "c": "2"}], "tags": ["x", "y"]},
        ),
        ("order=A1", {"order": "A1"}),
        ("r=1&r=2&r=3", {"r": ["1", "2", "3"]}),
        ("p=a+b%20c&e=&k%5Bx%5D=1", {"p": "a b c", "e": "", "k": {"x": "1"}}),
        ("x[y][z]=1&x[y][w]=2", {"x": {"y": {"z": "1", "w": "2"}}}),
        ("a[1]=second&a[0]=first", {"a": ["first", "second"]}),
        ("a[99999]=1", {"a": {"99999": "1"}}),
        ("0=a&1=b", {"0": "a", "1": "b"}),
        ("a=1&a[]=2", {"a": ["1", "2"]}),
        ("", {}),
        ("weird[=1&ok=2", {"weird[": "1", "ok": "2"}),
    ],
)
def test_query_strings(query: str, parsed: dict[str, object]) -> None:
    assert parse_query(query) == parsed


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("order.id", ("order", "id")),
        ("items[0].sku", ("items", 0, "sku")),
        ("a[0].b", ("a", 0, "b")),
        ("$jobsMapByNodeKey.node-1.status", ("$jobsMapByNodeKey", "node-1", "status")),
        ("a[b].c", ("a", "b", "c")),
    ],
)
def test_paths(path: str, parts: tuple[object, ...]) -> None:
    assert parse_path(path) == parts


def test_missing_paths_give_none() -> None:
    value = {"a": [{"b": 1}], "s": "text"}
    assert get_path(value, parse_path("a[0].b")) == 1
    assert get_path(value, parse_path("a[5].b")) is None
    assert get_path(value, parse_path("s.x")) is None
    assert get_path(value, parse_path("nothing.at.all")) is None
    assert get_path(None, parse_path("a")) is None


def test_templates_keep_types_when_whole_and_read_as_text_inside_strings() -> None:
    scope = {"$context": {"body": {"n": 12.5, "order": {"id": "A1"}, "ok": True, "items": [1, 2]}}}
    assert render("{{$context.body.n}}", scope) == 12.5
    assert render("{{ $context.body.order }}", scope) == {"id": "A1"}
    assert (
        render("order {{$context.body.order.id}} of {{$context.body.n}}", scope)
        == "order A1 of 12.5"
    )
    assert render("{{$context.body.ok}}/{{$context.body.items}}", scope) == "true/[1,2]"
    assert render("[{{$context.body.missing}}]", scope) == "[]"
    assert render("{{$context.body.missing}}", scope) is None
    assert render({"a": ["{{$context.body.n}}", {"b": "{{$context.body.order.id}}"}]}, scope) == {
        "a": [12.5, {"b": "A1"}]
    }
    assert render("{{ not a template }}", scope) == "{{ not a template }}"
