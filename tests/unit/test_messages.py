"""Message types and their payload checks (protocol/SPEC.md, section 5.5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from protocol import messages
from protocol.errors import MalformedError
from protocol.messages import MESSAGE_TYPES, MessageType, check_payload, message_type, register

NONCE = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def registry() -> Iterator[dict[str, MessageType]]:
    """The registry, restored after the test (register() changes module state)."""
    saved = dict(MESSAGE_TYPES)
    yield MESSAGE_TYPES
    MESSAGE_TYPES.clear()
    MESSAGE_TYPES.update(saved)


def test_built_in_types() -> None:
    built_in = ("ping", "pong", "receipt")  # later capabilities register more types
    assert {name: (MESSAGE_TYPES[name].kind, MESSAGE_TYPES[name].reply_types) for name in built_in} == {
        "ping": ("request", ("pong",)),
        "pong": ("reply", ()),
        "receipt": ("reply", ()),
    }


@pytest.mark.parametrize(
    ("type_name", "payload"),
    [("ping", {"nonce": NONCE}), ("pong", {"nonce": NONCE}), ("receipt", {})],
)
def test_valid_payloads(type_name: str, payload: dict[str, Any]) -> None:
    checked = check_payload(type_name, payload)
    assert checked == payload
    assert checked is not payload  # a copy: later changes to the input do not reach it


BAD_PAYLOADS = [
    ("ping", None, "not_object"),
    ("ping", [NONCE], "array"),
    ("ping", {}, "missing_nonce"),
    ("ping", {"nonce": NONCE, "extra": 1}, "unknown_field"),
    ("ping", {"nonce": NONCE.upper()}, "uppercase_hex"),
    ("ping", {"nonce": NONCE[:-1]}, "short"),
    ("ping", {"nonce": NONCE + "0"}, "long"),
    ("ping", {"nonce": NONCE + "\n"}, "trailing_newline"),
    ("ping", {"nonce": "g" * 32}, "not_hex"),
    ("ping", {"nonce": 123}, "integer"),
    ("ping", {"nonce": None}, "null"),
    ("pong", {}, "pong_missing_nonce"),
    ("pong", {"nonce": "x"}, "pong_bad_nonce"),
    ("receipt", {"note": "ok"}, "receipt_unknown_field"),
    ("receipt", [], "receipt_array"),
]


@pytest.mark.parametrize(
    ("type_name", "payload"), [(t, p) for t, p, _ in BAD_PAYLOADS], ids=[n for _, _, n in BAD_PAYLOADS]
)
def test_invalid_payloads(type_name: str, payload: Any) -> None:
    with pytest.raises(MalformedError) as e:
        check_payload(type_name, payload)
    assert e.value.code == "invalid_payload"
    assert str(e.value).startswith(f"payload of {type_name}")


@pytest.mark.parametrize("name", ["unknown", "Ping", "", "ping ", "no.such.type"])
def test_unknown_type(name: str) -> None:
    with pytest.raises(MalformedError) as e:
        check_payload(name, {"nonce": NONCE})
    assert e.value.code == "unknown_message_type"
    with pytest.raises(MalformedError) as e2:
        message_type(name)
    assert e2.value.code == "unknown_message_type"


def test_unknown_type_message_does_not_echo_name() -> None:
    with pytest.raises(MalformedError) as e:
        message_type("secret-looking-name")
    assert "secret-looking-name" not in str(e.value)


def test_register_adds_a_type(registry: dict[str, MessageType]) -> None:
    def check(payload: Any, what: str) -> dict[str, Any]:
        messages.require_fields(payload, what=what, required={"n"})
        return dict(payload)

    register(MessageType("count.request", "request", check, reply_types=("receipt",)))
    assert message_type("count.request").reply_types == ("receipt",)
    assert check_payload("count.request", {"n": 1}) == {"n": 1}
    with pytest.raises(MalformedError) as e:
        check_payload("count.request", {"m": 1})
    assert e.value.code == "invalid_payload"


def test_register_refuses_a_second_definition(registry: dict[str, MessageType]) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(MessageType("ping", "request", lambda p, w: dict(p)))
    assert registry["ping"].reply_types == ("pong",)
