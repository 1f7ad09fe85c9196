"""Canonical bytes, strict JSON parsing, base64 and hashing used across the protocol.

Canonical JSON is RFC 8785 (JCS) restricted so that every implementation agrees without a
number formatter: values are objects, arrays, strings, booleans, null and integers in the
range ±(2**53 - 1); no floating-point numbers (decimals travel as strings); object keys are
ASCII. Keys are sorted, no insignificant whitespace, UTF-8, strings escaped as JSON requires
(``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other controls as ``\\u00xx``), nothing else escaped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from protocol.errors import MalformedError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


def canonical_json(value: Any) -> bytes:
    """Return the canonical bytes of ``value``; raise MalformedError if it is not canonicalisable."""
    _check_canonical(value, 0)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain_mapping
    ).encode("utf-8")


def _plain_mapping(value: Any) -> dict[str, Any]:
    # json.dumps serialises only dict; other (already checked) mappings, e.g. a read-only
    # MappingProxyType in a frozen dataclass, are copied rather than failing with TypeError.
    if isinstance(value, Mapping):
        return dict(value)
    raise MalformedError(f"value of type {type(value).__name__} has no canonical JSON form")


def _check_canonical(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            _check_text(value)
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise MalformedError("integer outside ±(2**53 - 1)")
        return
    if isinstance(value, float):
        raise MalformedError("floating-point number where canonical JSON allows only integers")
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise MalformedError("object key is not an ASCII string")
            _check_canonical(item, depth + 1)
        return
    raise MalformedError(f"value of type {type(value).__name__} has no canonical JSON form")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("string is not valid Unicode (lone surrogate)") from e


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"JSON constant {name} is not allowed")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise MalformedError("JSON object has a duplicate key")
        result[key] = item
    return result


def parse_json(data: bytes, *, what: str = "document") -> Any:
    """Parse UTF-8 JSON strictly: no duplicate keys, no NaN/Infinity, no floats.

    Raises MalformedError without echoing the input.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError(f"{what} is not UTF-8") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
            parse_float=lambda _s: _reject_constant("float"),
        )
    except MalformedError:
        raise
    except (ValueError, RecursionError) as e:
        raise MalformedError(f"{what} is not well-formed JSON") from e
    _check_canonical(value, 0)
    return value


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Any, *, what: str, length: int | None = None) -> bytes:
    """Decode strict standard base64; check the decoded length when given."""
    if not isinstance(text, str):
        raise MalformedError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise MalformedError(f"{what}: not valid base64") from e
    if b64encode(raw) != text:
        raise MalformedError(f"{what}: base64 is not in canonical form")
    if length is not None and len(raw) != length:
        raise MalformedError(f"{what}: expected {length} bytes, got {len(raw)}")
    return raw


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (FIPS 180-4)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def require_fields(
    obj: Any, *, what: str, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Check that ``obj`` is an object with exactly the required (and allowed optional) keys."""
    if not isinstance(obj, dict):
        raise MalformedError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    keys = set(obj)
    missing = required - keys
    if missing:
        raise MalformedError(f"{what}: missing field(s) {', '.join(sorted(missing))}")
    unknown = keys - required - optional
    if unknown:
        raise MalformedError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")
    return obj


def expect_type(value: Any, kind: type | tuple[type, ...], *, what: str) -> Any:
    """Return ``value`` if it is of ``kind`` (booleans are never integers here)."""
    if (
        isinstance(value, bool)
        and kind is not bool
        and (kind is int or (isinstance(kind, tuple) and bool not in kind))
    ):
        raise MalformedError(f"{what}: expected {_kind_name(kind)}, got bool")
    if not isinstance(value, kind):
        raise MalformedError(f"{what}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__
