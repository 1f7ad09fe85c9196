"""Exchange-log entries: the thirteen fields, their canonical bytes and their leaf hash.

An entry's canonical bytes are ``canonical_json`` of its fields; its leaf hash is
``SHA-256(0x00 || canonical bytes)`` (RFC 6962 section 2.1), and each entry names the leaf hash
of the one before it in ``prev`` (``ZERO_HASH`` for the first), so the log is both a hash chain
and the leaves of a Merkle tree. See protocol/SPEC.md, "Exchange log".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.canonical import canonical_json, parse_json, require_fields
from protocol.envelope import HASH_RE, MESSAGE_ID_RE, NODE_ID_RE, TYPE_RE
from protocol.errors import MalformedError
from protocol.translog.merkle import leaf_hash

ZERO_HASH = "0" * 64
MAX_UINT = 2**53 - 1
NAME_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
DETAIL_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
DIRECTION_RE = re.compile(r"in|out")
MAX_DETAIL_BYTES = 1024
MAX_DETAIL_TEXT = 256
ENTRY_FIELDS = frozenset(
    {"index", "time", "kind", "direction", "peer", "message_id", "message_type", "envelope_hash", "size"}
    | {"outcome", "code", "detail", "prev"}
)
_ENTRY_FIELD_SET = set(ENTRY_FIELDS)
# The members in the order of a stored row (node/services/exchange_log.py selects its columns so).
ROW_FIELDS: tuple[str, ...] = (
    *("index", "time", "kind", "direction", "peer", "message_id", "message_type", "envelope_hash"),
    *("size", "outcome", "code", "detail", "prev"),
)
# field: (pattern, may be empty, what is expected)
_TEXT_FIELDS: dict[str, tuple[re.Pattern[str], bool, str]] = {
    "kind": (NAME_RE, False, "a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)"),
    "direction": (DIRECTION_RE, True, '"in", "out" or ""'),
    "peer": (NODE_ID_RE, True, 'a node id or ""'),
    "message_id": (MESSAGE_ID_RE, True, '32 lowercase hex digits or ""'),
    "message_type": (TYPE_RE, True, 'a message type name or ""'),
    "envelope_hash": (HASH_RE, True, '64 lowercase hex digits or ""'),
    "outcome": (NAME_RE, False, "a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)"),
    "code": (NAME_RE, True, 'an error code name or ""'),
    "prev": (HASH_RE, False, "64 lowercase hex digits"),
}


def _after_detail_pattern() -> re.Pattern[str]:
    """Canonical bytes from the comma after ``detail`` to the end, each value by its own rule.

    No member's pattern matches a quote, so a value can match only as itself: the quoted keys
    around it mark where it starts and ends. Integers are checked apart (type and range), so
    here they are digits. ``(?:X|)`` is ``X?``, which Python's re runs slower.
    """
    parts = []
    for name in sorted(ENTRY_FIELDS - {"code", "detail"}):
        if name in _TEXT_FIELDS:
            pattern, may_be_empty, _ = _TEXT_FIELDS[name]
            value = pattern.pattern.removeprefix("^").removesuffix(r"\Z")
            parts.append(re.escape(f'"{name}":"') + f"(?:{value}{'|' if may_be_empty else ''})" + '"')
        else:
            parts.append(re.escape(f'"{name}":') + "[0-9]+")
    return re.compile(",(?:" + ",".join(parts) + ")}")


_AFTER_DETAIL = _after_detail_pattern()
_CODE_RE = _TEXT_FIELDS["code"][0]
_BEFORE_DETAIL = len('{"code":"","detail":')


def _malformed(message: str) -> MalformedError:
    return MalformedError(message, code="malformed_log_entry")


def _check_detail(value: Any) -> tuple[dict[str, Any], bytes]:
    """A copy of a valid ``detail`` and its canonical JSON bytes."""
    if not isinstance(value, Mapping):
        raise _malformed(f"entry.detail: expected a JSON object, got {type(value).__name__}")
    if not value:
        return {}, b"{}"
    detail: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not DETAIL_KEY_RE.fullmatch(key):
            raise _malformed("entry.detail: keys must be names (a-z first, then a-z, 0-9, '_'; at most 64)")
        if isinstance(item, str) and len(item) > MAX_DETAIL_TEXT:
            raise _malformed(f"entry.detail.{key}: text longer than {MAX_DETAIL_TEXT} characters")
        if item is not None and not isinstance(item, bool | int | str):
            raise _malformed(
                f"entry.detail.{key}: expected a string, integer, boolean or null (detail is flat)"
            )
        detail[key] = item
    try:
        data = canonical_json(detail)
    except MalformedError as e:
        raise _malformed(f"entry.detail: {e.message}") from e
    if len(data) > MAX_DETAIL_BYTES:
        raise _malformed(f"entry.detail: {len(data)} bytes of canonical JSON (at most {MAX_DETAIL_BYTES})")
    return detail, data


@dataclass(frozen=True)
class LogEntry:
    """One exchange-log entry: hashes and metadata of one event, never a payload. Always valid."""

    index: int
    time: int
    kind: str
    outcome: str
    prev: str
    direction: str = ""
    peer: str = ""
    message_id: str = ""
    message_type: str = ""
    envelope_hash: str = ""
    size: int = 0
    code: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    detail_json: bytes = field(init=False, repr=False, compare=False)  # canonical JSON of detail

    def __post_init__(self) -> None:
        # Written for speed (verification rebuilds every entry); type() is exact, so no bool.
        for value, name in ((self.index, "index"), (self.time, "time"), (self.size, "size")):
            if type(value) is not int or not 0 <= value <= MAX_UINT:
                raise _malformed(f"entry.{name}: expected an integer from 0 to {MAX_UINT}")
        for name, (pattern, may_be_empty, expected) in _TEXT_FIELDS.items():
            value = getattr(self, name)
            if type(value) is not str or not ((may_be_empty and value == "") or pattern.fullmatch(value)):
                raise _malformed(f"entry.{name}: expected {expected}")
        detail, detail_json = _check_detail(self.detail)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "detail_json", detail_json)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "kind": self.kind,
            "direction": self.direction,
            "peer": self.peer,
            "message_id": self.message_id,
            "message_type": self.message_type,
            "envelope_hash": self.envelope_hash,
            "size": self.size,
            "outcome": self.outcome,
            "code": self.code,
            "detail": dict(self.detail),
            "prev": self.prev,
        }

    def canonical_bytes(self) -> bytes:
        """The bytes that are hashed: ``canonical_json(self.to_dict())``.

        Written out directly, ~10x faster (verification re-hashes every entry): every text field
        has been checked to be ASCII without quotes, backslashes or controls, so its JSON form is
        itself in quotes, and ``detail_json`` comes from canonical_json. Keys are in sorted order.
        A property test checks this against canonical_json.
        """
        return b"".join(
            (
                f'{{"code":"{self.code}","detail":'.encode(),
                self.detail_json,
                f',"direction":"{self.direction}","envelope_hash":"{self.envelope_hash}",'
                f'"index":{self.index},"kind":"{self.kind}","message_id":"{self.message_id}",'
                f'"message_type":"{self.message_type}","outcome":"{self.outcome}","peer":"{self.peer}",'
                f'"prev":"{self.prev}","size":{self.size},"time":{self.time}}}'.encode(),
            )
        )

    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the canonical bytes."""
        return leaf_hash(self.canonical_bytes())

    @classmethod
    def from_dict(cls, obj: Any) -> LogEntry:
        """Build from a JSON object with exactly the entry fields; raise MalformedError otherwise."""
        require_fields(obj, what="log entry", required=_ENTRY_FIELD_SET)
        return cls(**obj)

    @classmethod
    def from_canonical(cls, data: bytes) -> LogEntry:
        """Parse an entry's canonical bytes; raise MalformedError unless they are exactly canonical."""
        entry = cls.from_dict(parse_json(data, what="log entry"))
        if entry.canonical_bytes() != data:
            raise _malformed("log entry: bytes are not in canonical form")
        return entry


def row_canonical_bytes(row: Sequence[Any]) -> bytes | None:
    """Canonical bytes of a stored entry, or None unless it is a valid entry in canonical form.

    ``row`` holds the thirteen members in ROW_FIELDS order, ``detail`` as its canonical JSON
    text; items after them (a stored leaf hash) are ignored. Returns exactly
    ``LogEntry(...).canonical_bytes()``, and None exactly when building that LogEntry would
    raise or ``detail`` is not its canonical text (build it to learn why): a property test checks
    both. Verification calls this for every stored entry, so it builds no object: one string,
    one pattern for every member after ``detail``, and ``detail`` itself only when not ``{}``.
    """
    index, time, kind, direction, peer, message_id, message_type, envelope_hash, size, outcome, code, detail, prev = row[:13]  # fmt: skip
    if not (
        type(index) is int
        and type(time) is int
        and type(size) is int
        and 0 <= index <= MAX_UINT
        and 0 <= time <= MAX_UINT
        and 0 <= size <= MAX_UINT
    ):
        return None
    try:  # str.join refuses any member that is not a str
        # fmt: off
        text = "".join((
            '{"code":"', code, '","detail":', detail, ',"direction":"', direction,
            '","envelope_hash":"', envelope_hash, '","index":', str(index), ',"kind":"', kind,
            '","message_id":"', message_id, '","message_type":"', message_type,
            '","outcome":"', outcome, '","peer":"', peer, '","prev":"', prev,
            '","size":', str(size), ',"time":', str(time), "}",
        ))
        # fmt: on
    except TypeError:
        return None
    if (
        (code and not _CODE_RE.fullmatch(code))
        or not _AFTER_DETAIL.fullmatch(text, _BEFORE_DETAIL + len(code) + len(detail))
        or (detail != "{}" and (len(detail) > MAX_DETAIL_BYTES or not _is_canonical_detail(detail)))
    ):
        return None
    return text.encode()


@functools.lru_cache(maxsize=1024)
def _is_canonical_detail(text: str) -> bool:
    """Whether ``text`` is the canonical JSON of a valid ``detail`` (cached: details repeat, and
    none is longer than MAX_DETAIL_BYTES characters)."""
    try:
        return _check_detail(json.loads(text))[1] == text.encode()
    except (ValueError, RecursionError, MalformedError):  # UnicodeEncodeError is a ValueError
        return False
