"""The audit bundle: one node's exchange log in one file, checked with no node, key or network.

Format ``palermo-audit-bundle/1`` (protocol/SPEC.md, "Audit bundle", section 7.11). A bundle is a gzip file
(RFC 1952, exactly one member) of UTF-8 JSON Lines: one JSON object per line, each line ending
in LF, parsed with the strict rules of canonical JSON (no duplicate keys, no floating-point
numbers, integers within ±(2^53 − 1)). Lines come in this order:

1. **Header** (line 1, at most 2 MiB): an object with exactly the members ``format``
   (``"palermo-audit-bundle"``), ``version`` (``1``), ``node_id``, ``country``, ``origin``
   (``palermo/<node_id>/exchange-log``), ``exported_at`` (unix seconds), ``log_public_key`` and
   ``signing_public_key`` (base64 of 32 bytes), ``directory`` (the signed directory document in
   force at the node, as a JSON object, or ``null`` when none is installed), ``budget_policy``
   (``period``: ``month``, ``quarter`` or ``year``; ``peer_rho``, ``global_rho``, ``query_rho``,
   ``delta``: decimal strings; ``peer_caps``: an object from node id to decimal string),
   ``entries`` and ``checkpoints`` (how many lines of each follow) and ``header_signature``:
   base64 of the Ed25519 signature by the node's **log key** over ``canonical_json`` of the
   header object without ``header_signature``.
2. **Checkpoints**, one line per stored checkpoint in increasing size:
   ``{"type": "checkpoint", "note": <the signed note text>}``. They come before the entries so
   that a verifier checks each root the moment the entries reach its size: one pass, memory
   O(log n + number of checkpoints).
3. **Entries**, one line per log entry in index order: the canonical JSON of an object holding
   the entry's thirteen members, ``leaf_hash`` (the leaf hash the node stored, 64 hex) and
   ``"type": "entry"``. An entry line MUST be in canonical form (keys sorted, no whitespace).
4. **End**: ``{"type": "end", "entries": n, "checkpoints": m}``, so that a cut file shows.

Lines after the header are at most 256 KiB. Decimal strings of rho are ``0`` or digits without
leading zeros, optionally followed by ``.`` and 1 to 9 digits (exact in units of 1e-9);
``delta`` is ``0.`` and 1 to 30 digits. An exporter writes every entry as stored, valid or not.

Everything here is pure: bytes and iterables in, bytes, lines and records out.
:func:`encode_bundle` and :func:`compress` write; :func:`read_lines`, :func:`parse_header`,
:func:`parse_line` and :class:`BundleLayout` read; :func:`read_bundle` reads strictly, raising
:class:`BundleError` at the first fault. protocol/translog/audit.py verifies.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import b64decode, b64encode, canonical_json, expect_type, parse_json, require_fields
from protocol.directory_entries import COUNTRY_RE
from protocol.envelope import check_node_id
from protocol.errors import MalformedError, VerificationError
from protocol.translog.entry import ENTRY_FIELDS
from protocol.translog.merkle import MAX_TREE_SIZE
from protocol.translog.note import log_origin, parse_checkpoint_body, parse_note

FORMAT = "palermo-audit-bundle"
VERSION = 1
MAX_HEADER_LINE_BYTES = 2 * 1024 * 1024
MAX_LINE_BYTES = 256 * 1024
CHUNK_BYTES = 1024 * 1024
PERIOD_KINDS = ("month", "quarter", "year")
NANO = 1_000_000_000
DECIMAL_RE = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,9})?")
DELTA_RE = re.compile(r"0\.[0-9]{1,30}")
HEADER_FIELDS = {"format", "version", "node_id", "country", "origin", "exported_at", "entries", "checkpoints"}
HEADER_FIELDS |= {"log_public_key", "signing_public_key", "directory", "budget_policy", "header_signature"}
POLICY_FIELDS = ("period", "peer_rho", "global_rho", "query_rho", "peer_caps", "delta")
_INTS = ("index", "size", "time")


def _entry_line_pattern() -> re.Pattern[str]:
    """A canonical entry line, read without a JSON parser (several times faster; any other line
    takes the strict path). Inside a JSON string a quote is escaped, so `},"direction":` ends
    ``detail``; text values are then checked by LogEntry, ``detail`` by LogVerifier."""
    parts = []
    for name in sorted(ENTRY_FIELDS | {"leaf_hash"}):
        if name == "detail":
            value = r"(?P<detail>\{.*?\})"
        elif name in _INTS:
            value = rf"(?P<{name}>0|-?[1-9][0-9]{{0,17}})"
        else:
            value = rf'"(?P<{name}>[^"\\]*)"'
        parts.append(f'"{name}":{value}')
    return re.compile(r"\{" + ",".join(parts) + r',"type":"entry"\}')


_ENTRY_LINE = _entry_line_pattern()


class BundleError(MalformedError):
    """The bundle is not a readable ``palermo-audit-bundle/1`` file (the message says where)."""

    code = "malformed_bundle"


def rho_nano(text: str, *, what: str) -> int:
    """A decimal string as an exact integer of 1e-9. Raises BundleError."""
    match = DECIMAL_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BundleError(f"{what}: expected a decimal string with at most 9 decimals")
    fraction = (match.group(2) or ".")[1:]
    return int(match.group(1)) * NANO + int(fraction.ljust(9, "0") or "0")


@dataclass(frozen=True)
class BudgetCaps:
    """The privacy-budget caps a node states in its bundle header, as decimal strings of rho."""

    period: str
    peer_rho: str
    global_rho: str
    query_rho: str
    peer_caps: Mapping[str, str] = field(default_factory=dict)
    delta: str = "0.0000001"

    def __post_init__(self) -> None:
        if self.period not in PERIOD_KINDS:
            raise BundleError("header.budget_policy.period: expected month, quarter or year")
        for name in ("peer_rho", "global_rho", "query_rho"):
            rho_nano(getattr(self, name), what=f"header.budget_policy.{name}")
        if not isinstance(self.delta, str) or not DELTA_RE.fullmatch(self.delta):
            raise BundleError("header.budget_policy.delta: expected a decimal string below 1")
        if not isinstance(self.peer_caps, Mapping):
            raise BundleError("header.budget_policy.peer_caps: expected an object")
        for peer, cap in self.peer_caps.items():
            check_node_id(peer, what="header.budget_policy.peer_caps key")
            rho_nano(cap, what=f"header.budget_policy.peer_caps.{peer}")
        object.__setattr__(self, "peer_caps", dict(sorted(self.peer_caps.items())))

    def cap_nano(self, peer: str) -> int:
        """The cap of ``peer`` per period: its own cap if listed, else the default per-peer cap."""
        return rho_nano(self.peer_caps.get(peer, self.peer_rho), what="cap")

    @property
    def global_nano(self) -> int:
        return rho_nano(self.global_rho, what="global_rho")

    @property
    def query_nano(self) -> int:
        return rho_nano(self.query_rho, what="query_rho")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in POLICY_FIELDS} | {"peer_caps": dict(self.peer_caps)}

    @classmethod
    def from_dict(cls, obj: Any) -> BudgetCaps:
        require_fields(obj, what="header.budget_policy", required=set(POLICY_FIELDS))
        return cls(**obj)


@dataclass(frozen=True)
class BundleHeader:
    """Line 1 of a bundle: who exported it, with which keys, directory and caps. Always well-formed;
    the signature is checked only by :meth:`verify_signature`."""

    node_id: str
    country: str
    exported_at: int
    log_public_key: bytes
    signing_public_key: bytes
    directory: Mapping[str, Any] | None
    budget_policy: BudgetCaps
    entries: int
    checkpoints: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        check_node_id(self.node_id, what="header.node_id")
        if not isinstance(self.country, str) or not COUNTRY_RE.fullmatch(self.country):
            raise BundleError("header.country: expected an ISO 3166-1 alpha-3 code")
        for name in ("exported_at", "entries", "checkpoints"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
                raise BundleError(f"header.{name}: expected an integer of at least 0")
        for name in ("log_public_key", "signing_public_key"):
            if not isinstance(getattr(self, name), bytes) or len(getattr(self, name)) != 32:
                raise BundleError(f"header.{name}: expected 32 bytes")
        if self.directory is not None and not isinstance(self.directory, Mapping):
            raise BundleError("header.directory: expected a JSON object or null")
        if not isinstance(self.budget_policy, BudgetCaps):
            raise BundleError("header.budget_policy: expected budget caps")

    @property
    def origin(self) -> str:
        return log_origin(self.node_id)

    def signed_dict(self) -> dict[str, Any]:
        """The header as it is signed: every member but ``header_signature``."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "node_id": self.node_id,
            "country": self.country,
            "origin": self.origin,
            "exported_at": self.exported_at,
            "log_public_key": b64encode(self.log_public_key),
            "signing_public_key": b64encode(self.signing_public_key),
            "directory": None if self.directory is None else dict(self.directory),
            "budget_policy": self.budget_policy.to_dict(),
            "entries": self.entries,
            "checkpoints": self.checkpoints,
        }

    def signing_bytes(self) -> bytes:
        return canonical_json(self.signed_dict())

    def to_dict(self) -> dict[str, Any]:
        return {**self.signed_dict(), "header_signature": b64encode(self.signature)}

    def signed_with(self, log_key: nacl.signing.SigningKey) -> BundleHeader:
        """This header signed with the node's log key."""
        return replace(self, signature=log_key.sign(self.signing_bytes()).signature)

    def verify_signature(self) -> None:
        """Check ``header_signature`` with the header's own log key.

        Raises VerificationError (``bad_header_signature``). Only half the check: the key must
        also be the one the directory lists for this node (protocol/translog/audit.py does both).
        """
        try:
            nacl.signing.VerifyKey(self.log_public_key).verify(self.signing_bytes(), self.signature)
        except (nacl.exceptions.BadSignatureError, ValueError) as e:
            raise VerificationError(
                "header: the signature does not verify with the header's log key", code="bad_header_signature"
            ) from e

    @classmethod
    def from_dict(cls, obj: Any) -> BundleHeader:
        """Build from the header object; raises BundleError for anything but exactly the members above."""
        try:
            require_fields(obj, what="header", required=HEADER_FIELDS)
            if obj["format"] != FORMAT or expect_type(obj["version"], int, what="header.version") != VERSION:
                raise BundleError(f"header: expected format '{FORMAT}' version {VERSION}")
            header = cls(
                node_id=obj["node_id"],
                country=obj["country"],
                exported_at=obj["exported_at"],
                log_public_key=b64decode(obj["log_public_key"], what="header.log_public_key", length=32),
                signing_public_key=b64decode(
                    obj["signing_public_key"], what="header.signing_public_key", length=32
                ),
                directory=obj["directory"],
                budget_policy=BudgetCaps.from_dict(obj["budget_policy"]),
                entries=obj["entries"],
                checkpoints=obj["checkpoints"],
                signature=b64decode(obj["header_signature"], what="header.header_signature", length=64),
            )
        except BundleError:
            raise
        except MalformedError as e:
            raise BundleError(e.message) from e
        if obj["origin"] != header.origin:
            raise BundleError(f"header.origin: expected '{header.origin}' for node '{header.node_id}'")
        return header


def parse_header(line: bytes) -> BundleHeader:
    """Parse line 1. Raises BundleError."""
    if len(line) > MAX_HEADER_LINE_BYTES:
        raise BundleError(f"line 1: the header is longer than {MAX_HEADER_LINE_BYTES} bytes")
    try:
        obj = parse_json(line, what="line 1")
    except MalformedError as e:
        raise BundleError(f"{e.message} (expected the bundle header)") from e
    return BundleHeader.from_dict(obj)


@dataclass(frozen=True)
class EntryLine:
    """An entry line: the entry's members (``detail`` as canonical JSON text when the line was
    canonical) and its stored leaf hash. Not verified: LogVerifier checks the members."""

    line: int
    fields: dict[str, Any]
    leaf_hash: str
    canonical: bool = True

    @property
    def index(self) -> int | None:
        index = self.fields.get("index")
        return index if type(index) is int else None


@dataclass(frozen=True)
class CheckpointLine:
    """A checkpoint line: the note, and the size its (not yet verified) text states, if readable
    (else ``unreadable`` says why)."""

    line: int
    note: bytes
    size: int | None
    unreadable: str = ""


@dataclass(frozen=True)
class EndLine:
    line: int
    entries: int
    checkpoints: int


Record = EntryLine | CheckpointLine | EndLine


def parse_line(line: bytes, *, number: int) -> Record:
    """Parse line ``number`` (2 or more) of a bundle. Raises BundleError naming the line."""
    if len(line) > MAX_LINE_BYTES:
        raise BundleError(f"line {number}: longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"line {number}: not UTF-8") from e
    match = _ENTRY_LINE.fullmatch(text)
    if match is not None:
        fields: dict[str, Any] = match.groupdict()
        for name in _INTS:
            fields[name] = int(fields[name])
        return EntryLine(number, fields, fields.pop("leaf_hash"))
    try:
        return _parse_object(parse_json(line, what=f"line {number}"), line, number)
    except BundleError:
        raise
    except MalformedError as e:
        raise BundleError(e.message) from e


def _parse_object(obj: Any, line: bytes, number: int) -> Record:
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind == "entry":
        return _entry_object(obj, line, number)
    if kind == "checkpoint":
        require_fields(obj, what=f"line {number} (checkpoint)", required={"type", "note"})
        note = expect_type(obj["note"], str, what=f"line {number}: checkpoint note").encode("utf-8")
        size, reason = _stated_size(note)
        return CheckpointLine(number, note, size, reason)
    if kind == "end":
        require_fields(obj, what=f"line {number} (end)", required={"type", "entries", "checkpoints"})
        entries, checkpoints = (
            expect_type(obj[name], int, what=f"line {number}: end.{name}")
            for name in ("entries", "checkpoints")
        )
        return EndLine(number, entries, checkpoints)
    raise BundleError(f"line {number}: expected an object with type entry, checkpoint or end")


def _entry_object(obj: dict[str, Any], line: bytes, number: int) -> EntryLine:
    """An entry line that is not in canonical form: parsed strictly, kept, and flagged."""
    fields = {k: v for k, v in obj.items() if k not in ("type", "leaf_hash")}
    leaf = obj.get("leaf_hash")
    canonical = canonical_json(obj) == line
    return EntryLine(number, fields, leaf if isinstance(leaf, str) else "", canonical=canonical)


def _stated_size(note: bytes) -> tuple[int | None, str]:
    """The size a checkpoint note's text states, before any signature is checked (to name it), or
    None and why the note cannot be read."""
    try:
        text, _signatures = parse_note(note)
        return parse_checkpoint_body(text).size, ""
    except MalformedError as e:
        return None, e.message


class BundleLayout:
    """The order of lines: header, checkpoints, entries, end; counts as the header and end state.

    ``place`` returns what is wrong with a record's place (None when all is well) and
    ``finish`` what is wrong at the end, as messages naming lines."""

    def __init__(self, header: BundleHeader) -> None:
        self.header = header
        self.entries = 0
        self.checkpoints = 0
        self.last_line = 1
        self.end: EndLine | None = None

    def place(self, record: Record) -> str | None:
        self.last_line = record.line
        if self.end is not None:
            return f"line {record.line}: data after the end line (line {self.end.line})"
        if isinstance(record, EndLine):
            self.end = record
        elif isinstance(record, CheckpointLine):
            self.checkpoints += 1
            if self.entries:
                return f"line {record.line}: checkpoint after the entries (checkpoints come first)"
        else:
            self.entries += 1
        return None

    def finish(self) -> list[str]:
        if self.end is None:
            return [f"bundle truncated: no end line after line {self.last_line}"]
        found = (self.entries, self.checkpoints)
        problems = []
        for what, stated in (("end line", (self.end.entries, self.end.checkpoints)),
                             ("header", (self.header.entries, self.header.checkpoints))):  # fmt: skip
            if stated != found:
                problems.append(
                    f"{what}: states {stated[0]} entries and {stated[1]} checkpoints, "
                    f"the bundle holds {found[0]} and {found[1]}"
                )
        return problems


def read_bundle(lines: Iterable[bytes]) -> Iterator[BundleHeader | Record]:
    """The header, then every record, checked strictly: raises BundleError at the first fault of
    form or order (signatures and hashes are for protocol/translog/audit.py)."""
    iterator = iter(lines)
    header = parse_header(next(iterator, b""))
    yield header
    layout = BundleLayout(header)
    for number, line in enumerate(iterator, start=2):
        record = parse_line(line, number=number)
        problem = layout.place(record)
        if problem is None and isinstance(record, EntryLine) and not record.canonical:
            problem = f"line {number}: entry line is not in canonical form"
        if problem is not None:
            raise BundleError(problem)
        yield record
    for problem in layout.finish():
        raise BundleError(problem)


# --- writing --------------------------------------------------------------------------------------


def entry_line(fields: Mapping[str, Any], leaf_hash: str) -> bytes:
    """One entry line (with its LF) from an entry's members as stored and its stored leaf hash.

    Written as stored, even if the members are not a valid entry: the verifier must see them."""
    obj = {**fields, "leaf_hash": leaf_hash, "type": "entry"}
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def encode_bundle(
    header: BundleHeader, checkpoints: Iterable[str], entries: Iterable[tuple[Mapping[str, Any], str]]
) -> Iterator[bytes]:
    """The lines of a bundle (each with its LF): header, checkpoint notes, (members, leaf hash) of
    each entry, end line. Raises BundleError at the end when the counts differ from the header's."""
    if not header.signature:
        raise BundleError("header: not signed")
    yield canonical_json(header.to_dict()) + b"\n"
    found = [0, 0]
    for note in checkpoints:
        found[1] += 1
        yield canonical_json({"type": "checkpoint", "note": note}) + b"\n"
    for fields, leaf_hash in entries:
        found[0] += 1
        yield entry_line(fields, leaf_hash)
    if found != [header.entries, header.checkpoints]:
        raise BundleError(
            f"header states {header.entries} entries and {header.checkpoints} checkpoints, "
            f"{found[0]} and {found[1]} were given"
        )
    yield canonical_json({"type": "end", "entries": found[0], "checkpoints": found[1]}) + b"\n"


def compress(lines: Iterable[bytes], *, level: int = 6) -> Iterator[bytes]:
    """Gzip (one member, no file name, mtime 0) of the concatenated ``lines``, in chunks."""
    deflater = zlib.compressobj(level, zlib.DEFLATED, 31)
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            out = deflater.compress(b"".join(batch))
            batch, size = [], 0
            if out:
                yield out
    yield deflater.compress(b"".join(batch)) + deflater.flush()


def read_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip bundle given in chunks and yield its lines without their LF.

    Memory stays bounded: line 1 may hold MAX_HEADER_LINE_BYTES, the others MAX_LINE_BYTES.
    Raises BundleError for corrupt or truncated compressed data, a second gzip member or
    trailing bytes, a line too long, or a last line without its LF (a cut file).
    """
    inflater = zlib.decompressobj(31)
    pending = b""
    number = 0
    for data in chunks:
        while True:
            if inflater.eof:
                if data or inflater.unused_data:
                    raise BundleError("bytes after the end of the compressed bundle")
                break
            try:
                out = inflater.decompress(data, CHUNK_BYTES)
            except zlib.error as e:
                raise BundleError(f"compressed data is corrupt after line {number}") from e
            data = inflater.unconsumed_tail
            lines = (pending + out).split(b"\n")
            pending = lines.pop()
            for line in lines:
                number += 1
                _check_length(line, number)
                yield line
            _check_length(pending, number + 1)
            if not data and len(out) < CHUNK_BYTES:
                break
    if inflater.unused_data:
        raise BundleError("bytes after the end of the compressed bundle")
    if not inflater.eof:
        raise BundleError(f"compressed data ends early after line {number} (the file was cut)")
    if pending:
        raise BundleError(f"line {number + 1} has no end of line (the file was cut)")


def _check_length(line: bytes, number: int) -> None:
    limit = MAX_HEADER_LINE_BYTES if number == 1 else MAX_LINE_BYTES
    if len(line) > limit:
        raise BundleError(f"line {number}: longer than {limit} bytes")
