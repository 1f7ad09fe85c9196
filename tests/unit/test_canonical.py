"""The canonical JSON rules, strict parsing, strict base64 and field checks (protocol/SPEC.md, section 2)."""

from __future__ import annotations

import hashlib
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    b64decode,
    b64encode,
    canonical_json,
    expect_type,
    parse_json,
    require_fields,
    sha256,
    sha256_hex,
)
from protocol.errors import MalformedError


def nested(depth: int, leaf: Any = 0) -> Any:
    """``leaf`` enclosed by ``depth`` arrays."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- canonical_json: what it produces --------------------------------------------------------

PRODUCED = [
    (
        "sorted_keys",
        {"b": 1, "a": 2, "B": 3, "_": 4, "10": 5, "9": 6, "": 7},
        '{"":7,"10":5,"9":6,"B":3,"_":4,"a":2,"b":1}',
    ),
    ("prefix_sorts_first", {"ab": 1, "a": 2, "abc": 3}, '{"a":2,"ab":1,"abc":3}'),
    ("nested_sorted", {"z": {"y": 1, "x": [2, {"w": 3, "v": 4}]}}, '{"z":{"x":[2,{"v":4,"w":3}],"y":1}}'),
    ("array_order_kept", [3, 1, 2], "[3,1,2]"),
    ("literals", [True, False, None], "[true,false,null]"),
    ("integers", [0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER], "[0,-1,9007199254740991,-9007199254740991]"),
    ("empty", {"a": [], "o": {}, "s": ""}, '{"a":[],"o":{},"s":""}'),
    ("quote_backslash", {"s": 'a"b\\c'}, '{"s":"a\\"b\\\\c"}'),
    ("short_escapes", {"s": "\b\f\n\r\t"}, '{"s":"\\b\\f\\n\\r\\t"}'),
    ("controls_lowercase_hex", {"s": "\x00\x01\x0b\x1f"}, '{"s":"\\u0000\\u0001\\u000b\\u001f"}'),
    ("slash_not_escaped", {"s": "a/b"}, '{"s":"a/b"}'),
    ("del_not_escaped", {"s": "\x7f"}, '{"s":"\x7f"}'),
    ("line_separators_not_escaped", {"s": "\u2028\u2029"}, '{"s":"\u2028\u2029"}'),
    ("cyrillic_raw_utf8", {"n": "Ольга Петренко"}, '{"n":"Ольга Петренко"}'),
    ("arabic_raw_utf8", {"n": "مريم العلي"}, '{"n":"مريم العلي"}'),
    ("chinese_raw_utf8", {"n": "王小明"}, '{"n":"王小明"}'),
    ("astral_raw_utf8", {"n": "🙂"}, '{"n":"🙂"}'),
    ("no_unicode_normalisation", {"n": "Jose\u0301"}, '{"n":"Jose\u0301"}'),
    ("tuple_is_array", (1, (2,)), "[1,[2]]"),
    (
        "read_only_mapping",
        types.MappingProxyType({"b": 1, "a": types.MappingProxyType({"d": 2, "c": 3})}),
        '{"a":{"c":3,"d":2},"b":1}',
    ),
    ("top_level_string", "x", '"x"'),
    ("depth_limit_accepted", nested(MAX_DEPTH), "[" * MAX_DEPTH + "0" + "]" * MAX_DEPTH),
    ("empty_array_at_depth_limit", nested(MAX_DEPTH, []), "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)),
]


@pytest.mark.parametrize(
    ("value", "expected"), [(v, e) for _, v, e in PRODUCED], ids=[n for n, _, _ in PRODUCED]
)
def test_canonical_bytes(value: Any, expected: str) -> None:
    assert canonical_json(value) == expected.encode("utf-8")


def test_non_ascii_is_utf8_not_escaped() -> None:
    assert canonical_json({"n": "é"}) == b'{"n":"\xc3\xa9"}'


# --- canonical_json: what it refuses ---------------------------------------------------------

NOT_CANONICAL = [
    ("float", {"a": 1.0}),
    ("float_integral_value", 2.0),
    ("nan", float("nan")),
    ("infinity", float("inf")),
    ("integer_too_large", MAX_SAFE_INTEGER + 1),
    ("integer_too_small", -MAX_SAFE_INTEGER - 1),
    ("non_ascii_key", {"é": 1}),
    ("integer_key", {1: "a"}),
    ("none_key", {None: "a"}),
    ("lone_surrogate", {"s": "\ud800"}),
    ("lone_surrogate_in_list", ["ok", "\udfff"]),
    ("bytes", {"b": b"raw"}),
    ("set", {1, 2}),
    ("object", object()),
    ("depth_limit_exceeded", nested(MAX_DEPTH + 1)),
    ("deep_in_object", {"a": nested(MAX_DEPTH)}),
]


@pytest.mark.parametrize("value", [v for _, v in NOT_CANONICAL], ids=[n for n, _ in NOT_CANONICAL])
def test_canonical_refuses(value: Any) -> None:
    with pytest.raises(MalformedError) as e:
        canonical_json(value)
    assert e.value.code == "malformed"


# --- parse_json ------------------------------------------------------------------------------

PARSED = [
    ("whitespace_ignored", b' { "b" : 1 ,\n "a" : [ 1 , 2 ] } ', {"a": [1, 2], "b": 1}),
    ("escapes_decoded", b'{"e":"\\u00e9\\/\\ud83d\\ude42"}', {"e": "é/🙂"}),
    ("negative_zero_is_zero", b"-0", 0),
    ("max_integer", b"9007199254740991", MAX_SAFE_INTEGER),
    ("min_integer", b"-9007199254740991", -MAX_SAFE_INTEGER),
    ("depth_limit_accepted", ("[" * MAX_DEPTH + "0" + "]" * MAX_DEPTH).encode(), nested(MAX_DEPTH)),
]


@pytest.mark.parametrize(("data", "expected"), [(d, e) for _, d, e in PARSED], ids=[n for n, _, _ in PARSED])
def test_parse_accepts(data: bytes, expected: Any) -> None:
    assert parse_json(data) == expected


NOT_PARSED = [
    ("empty", b""),
    ("whitespace_only", b"  "),
    ("truncated", b'{"a":'),
    ("trailing_garbage", b'{"a":1}x'),
    ("two_documents", b"{}{}"),
    ("single_quotes", b"{'a':1}"),
    ("trailing_comma", b'{"a":1,}'),
    ("comment", b'{"a":1 /* x */}'),
    ("duplicate_key", b'{"a":1,"a":2}'),
    ("duplicate_key_nested", b'{"o":{"k":1,"k":1}}'),
    ("duplicate_key_after_escape", b'{"a":1,"\\u0061":2}'),
    ("float", b'{"a":1.0}'),
    ("float_exponent", b'{"a":1e3}'),
    ("float_negative_exponent", b'{"a":1E-2}'),
    ("nan", b'{"a":NaN}'),
    ("infinity", b'{"a":Infinity}'),
    ("minus_infinity", b'{"a":-Infinity}'),
    ("integer_too_large", b"9007199254740992"),
    ("integer_too_small", b"-9007199254740992"),
    ("integer_with_5000_digits", b"1" * 5000),
    ("non_ascii_key", '{"é":1}'.encode()),
    ("lone_high_surrogate", b'"\\ud800"'),
    ("lone_low_surrogate", b'"\\udc00"'),
    ("reversed_surrogate_pair", b'"\\ude42\\ud83d"'),
    ("raw_control_character", b'"a\nb"'),
    ("not_utf8", b'{"a":"\xff"}'),
    ("overlong_utf8", b'{"a":"\xc0\xaf"}'),
    ("utf8_encoded_surrogate", b'{"a":"\xed\xa0\x80"}'),
    ("utf16", '{"a":1}'.encode("utf-16")),
    ("utf8_bom", b'\xef\xbb\xbf{"a":1}'),
    ("depth_limit_exceeded", ("[" * (MAX_DEPTH + 1) + "0" + "]" * (MAX_DEPTH + 1)).encode()),
    ("deep_objects", ('{"a":' * (MAX_DEPTH + 1) + "0" + "}" * (MAX_DEPTH + 1)).encode()),
    ("nesting_beyond_python_recursion", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize("data", [d for _, d in NOT_PARSED], ids=[n for n, _ in NOT_PARSED])
def test_parse_refuses(data: bytes) -> None:
    with pytest.raises(MalformedError) as e:
        parse_json(data, what="thing")
    assert e.value.code == "malformed"


def test_parse_error_does_not_echo_input() -> None:
    with pytest.raises(MalformedError) as e:
        parse_json(b'{"prs_FirstName":"Olga Petrenko",}', what="record")
    assert "Olga" not in str(e.value)
    assert str(e.value).startswith("record")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_parse_arbitrary_bytes_raises_only_malformed(data: bytes) -> None:
    try:
        value = parse_json(data)
    except MalformedError as e:
        assert e.code == "malformed"
    else:
        canonical_json(value)  # whatever parses has a canonical form


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from('{}[]",:0123456789-.eE \\u+tfnrualsNIa\x00\ud800é'), max_size=60))
def test_parse_json_like_text_raises_only_malformed(text: str) -> None:
    try:
        value = parse_json(text.encode("utf-8", "surrogatepass"))
    except MalformedError as e:
        assert e.code == "malformed"
    else:
        canonical_json(value)  # whatever parses has a canonical form


# --- property: canonical form is a fixed point ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),  # any Unicode scalar value; hypothesis leaves out surrogates
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(max_codepoint=127), max_size=8), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_parse_round_trip(value: Any) -> None:
    once = canonical_json(value)
    assert parse_json(once) == value
    assert canonical_json(parse_json(once)) == once


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), st.integers(0, 9), min_size=2))
def test_canonical_keys_are_in_code_unit_order(obj: dict[str, int]) -> None:
    parsed = parse_json(canonical_json(obj))
    assert list(parsed) == sorted(obj, key=lambda k: k.encode("utf-16-be"))


# --- base64 ----------------------------------------------------------------------------------

B64_GOOD = [
    ("empty", "", b""),
    ("one_byte", "QQ==", b"A"),
    ("two_bytes", "QUI=", b"AB"),
    ("three", "QUJD", b"ABC"),
]


@pytest.mark.parametrize(("text", "raw"), [(t, r) for _, t, r in B64_GOOD], ids=[n for n, _, _ in B64_GOOD])
def test_b64_round_trip(text: str, raw: bytes) -> None:
    assert b64encode(raw) == text
    assert b64decode(text, what="x") == raw


B64_BAD = [
    ("not_a_string", b"QQ==", None),
    ("integer", 7, None),
    ("missing_padding", "QQ", None),
    ("unused_bits_set", "QR==", None),
    ("unused_bits_set_one_pad", "QUJ=", None),
    ("extra_padding", "QQ===", None),
    ("padding_inside", "QQ==QQ==", None),
    ("urlsafe_alphabet", "-_-_", None),
    ("whitespace", "QU JD", None),
    ("newline", "QUJD\n", None),
    ("non_ascii", "QUJDé", None),
    ("wrong_length", "QUJD", 4),
]


@pytest.mark.parametrize(("text", "length"), [(t, n) for _, t, n in B64_BAD], ids=[n for n, _, _ in B64_BAD])
def test_b64_refuses(text: Any, length: int | None) -> None:
    with pytest.raises(MalformedError) as e:
        b64decode(text, what="field", length=length)
    assert e.value.code == "malformed"
    assert str(e.value).startswith("field")


@given(st.binary(max_size=100))
def test_b64_round_trip_any_bytes(raw: bytes) -> None:
    assert b64decode(b64encode(raw), what="x", length=len(raw)) == raw


# --- hashing and field checks ----------------------------------------------------------------


def test_sha256_known_answer() -> None:
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2, "abc"
    assert sha256_hex(b"abc") == expected
    assert sha256(b"abc") == bytes.fromhex(expected) == hashlib.sha256(b"abc").digest()


def test_require_fields_accepts_exact_and_optional() -> None:
    obj = {"a": 1, "b": 2}
    assert require_fields(obj, what="x", required={"a"}, optional=frozenset({"b"})) is obj


FIELDS_BAD = [
    ("not_object", [1], "expected a JSON object"),
    ("missing", {"b": 1}, "missing field(s) a"),
    ("unknown", {"a": 1, "z": 2}, "unknown field(s) z"),
]


@pytest.mark.parametrize(
    ("obj", "says"), [(o, s) for _, o, s in FIELDS_BAD], ids=[n for n, _, _ in FIELDS_BAD]
)
def test_require_fields_refuses(obj: Any, says: str) -> None:
    with pytest.raises(MalformedError, match=says.replace("(", r"\(").replace(")", r"\)")):
        require_fields(obj, what="x", required={"a"}, optional=frozenset({"b"}))


TYPES_BAD: list[tuple[str, Any, Any]] = [
    ("bool_for_int", True, int),
    ("float_for_int", 1.0, int),
    ("str_for_int", "1", int),
    ("bool_for_int_or_str", False, (int, str)),
    ("int_for_str", 1, str),
    ("int_for_bool", 1, bool),
]


@pytest.mark.parametrize(
    ("value", "kind"), [(v, k) for _, v, k in TYPES_BAD], ids=[n for n, _, _ in TYPES_BAD]
)
def test_expect_type_refuses(value: Any, kind: Any) -> None:
    with pytest.raises(MalformedError, match=r"^f: expected"):
        expect_type(value, kind, what="f")


def test_expect_type_accepts() -> None:
    assert expect_type(3, int, what="f") == 3
    assert expect_type(True, bool, what="f") is True
    assert expect_type(True, (bool, int), what="f") is True
    assert expect_type("s", (int, str), what="f") == "s"
