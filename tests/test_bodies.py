"""Bodies and query strings as providers send them: property-based checks of the parsers, and
samples shaped like real Alipay, WeChat Pay, GitHub and Stripe deliveries."""

import time
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookflow_shared.bodies import parse_body, variable_paths
from hookflow_shared.errors import BadRequest, UnsupportedMediaType
from hookflow_shared.querystring import parse_query
from hookflow_shared.workflow.templates import get_path, parse_path
from tests.samples import ALIPAY_NOTIFY, BILLION_LAUGHS, EXTERNAL_ENTITY, WECHAT_NOTIFY

# Keys as integrators use them: no brackets, not all digits (those would read as indexes).
keys = st.text(
    alphabet=st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda k: not k.isdigit())
leaves = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(keys, children, min_size=1, max_size=4),
    ),
    max_leaves=20,
)


def encode(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The bracket syntax PHP, Rails and qs write: a[0][b]=1."""
    if isinstance(value, dict):
        return [
            pair
            for key, item in value.items()
            for pair in encode(item, f"{prefix}[{key}]" if prefix else key)
        ]
    if isinstance(value, list):
        return [
            pair for index, item in enumerate(value) for pair in encode(item, f"{prefix}[{index}]")
        ]
    return [(prefix, value)]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, trees, max_size=5))
def test_bracket_query_strings_round_trip(tree: dict[str, Any]) -> None:
    query = urlencode(encode(tree), quote_via=quote)
    assert parse_query(query) == tree


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, trees, max_size=5))
def test_forms_parse_like_query_strings(tree: dict[str, Any]) -> None:
    body = urlencode(encode(tree)).encode()  # quote_plus: spaces as +
    assert parse_body(body, "application/x-www-form-urlencoded") == tree


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_query_string_parses_without_error(query: str) -> None:
    assert isinstance(parse_query(query), dict)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys.filter(lambda k: "." not in k), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_every_listed_path_reads_back_its_sample_value(value: Any) -> None:
    body = parse_body(orjson.dumps(value), "application/json") if value is not None else None
    listed = variable_paths(body)
    assert not listed.truncated
    for entry in listed.paths:
        assert get_path(body, parse_path(entry["key"])) == entry["value"]


def test_parse_lists_every_level_as_the_seed_says() -> None:
    assert [p["key"] for p in variable_paths({"a": 1, "b": {"c": 2}}).paths] == ["a", "b", "b.c"]
    assert [p["key"] for p in variable_paths(parse_query("query[0][a]=1")).paths] == [
        "query",
        "query[0]",
        "query[0].a",
    ]
    assert variable_paths({"n": 1.5, "ok": True, "s": "x", "z": None, "l": []}).paths == [
        {"key": "n", "value": 1.5, "type": "number"},
        {"key": "ok", "value": True, "type": "boolean"},
        {"key": "s", "value": "x", "type": "string"},
        {"key": "z", "value": None, "type": "null"},
        {"key": "l", "value": [], "type": "array"},
    ]


def test_an_alipay_notification() -> None:
    body = parse_body(ALIPAY_NOTIFY.encode(), "application/x-www-form-urlencoded", "utf-8")
    assert body["trade_status"] == "TRADE_SUCCESS"
    assert body["subject"] == "测试订单"
    assert body["gmt_payment"] == "2026-11-28 10:03:22"
    assert body["seller_email"] == "shop@example.com"
    assert body["sign"].endswith("==")
    assert orjson.loads(body["fund_bill_list"])[0]["fundChannel"] == "ALIPAYACCOUNT"
    gbk = ALIPAY_NOTIFY.replace(
        "%E6%B5%8B%E8%AF%95%E8%AE%A2%E5%8D%95", quote("测试订单", encoding="gbk")
    )
    assert (
        parse_body(gbk.encode(), "application/x-www-form-urlencoded", "gbk")["subject"]
        == "测试订单"
    )


def test_a_wechat_pay_notification() -> None:
    body = parse_body(WECHAT_NOTIFY, "text/xml")
    assert body["xml"]["return_code"] == "SUCCESS"
    assert body["xml"]["total_fee"] == "1"
    assert body["xml"]["transaction_id"] == "1004400740201409030005092168"


def test_xml_structure() -> None:
    xml = (
        b'<order xmlns="urn:x" id="7"><item sku="a">1</item><item sku="b">2</item>'
        b"<note/><p>t<b>x</b></p></order>"
    )
    assert parse_body(xml, "application/xml") == {
        "order": {
            "@id": "7",
            "item": [{"@sku": "a", "#text": "1"}, {"@sku": "b", "#text": "2"}],
            "note": None,
            "p": {"b": "x", "#text": "t"},
        }
    }


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"]
)
def test_hostile_xml_is_refused_fast(document: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(BadRequest, match="XML refused"):
        parse_body(document, "application/xml")
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("raw", "content_type", "charset", "expected"),
    [
        (b'{"a": 1}', "application/json", None, {"a": 1}),
        (b'{"a": 1}', "application/vnd.github+json", "utf-8", {"a": 1}),
        ('{"a": "é"}'.encode("latin-1"), "application/json", "iso-8859-1", {"a": "é"}),
        (b"hello", "text/plain", None, "hello"),
        (b"", "application/octet-stream", None, {}),
        (b"<a>1</a>", "application/soap+xml", None, {"a": "1"}),
    ],
)
def test_accepted_types(raw: bytes, content_type: str, charset: str | None, expected: Any) -> None:
    assert parse_body(raw, content_type, charset) == expected


def test_xml_in_other_encodings() -> None:
    declared = '<?xml version="1.0" encoding="GBK"?><xml><subject>测试订单</subject></xml>'
    assert parse_body(declared.encode("gbk"), "text/xml") == {"xml": {"subject": "测试订单"}}
    undeclared = "<xml><subject>测试订单</subject></xml>".encode("gb18030")
    assert parse_body(undeclared, "text/xml", "gb18030") == {"xml": {"subject": "测试订单"}}
    assert parse_body("<a>é</a>".encode("utf-16"), "application/xml") == {"a": "é"}
    with pytest.raises(UnsupportedMediaType, match="unknown charset 'klingon'"):
        parse_body(b'<?xml version="1.0" encoding="klingon"?><a/>', "application/xml")


def test_rejections_say_what_to_do() -> None:
    with pytest.raises(
        UnsupportedMediaType, match="application/json, application/x-www-form-urlencoded"
    ):
        parse_body(b"a,b", "text/csv")
    with pytest.raises(BadRequest, match="line 1 column 7"):
        parse_body(b'{"a": }', "application/json")
    with pytest.raises(BadRequest, match="line 1, column"):
        parse_body(b"<a><b></a>", "application/xml")
    with pytest.raises(BadRequest, match="not valid utf-8"):
        parse_body(b"\xff\xfe", "text/plain", "utf-8")
    with pytest.raises(UnsupportedMediaType, match="unknown charset"):
        parse_body(b"x", "text/plain", "klingon")
