"""The exchange log: entries, RFC 6962 Merkle hashing, chain checks and C2SP checkpoints.

See protocol/SPEC.md, "Exchange log". An entry's canonical bytes are ``canonical_json`` of its
thirteen fields; its leaf hash is ``SHA-256(0x00 || canonical bytes)`` (RFC 6962 section 2.1),
and each entry names the leaf hash of the one before it in ``prev``, so the log is both a hash
chain and the leaves of a Merkle tree. Checkpoints are C2SP signed notes
(https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint) over ``origin``, ``size`` and
the Merkle root, with no extension lines.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import b64decode, b64encode, canonical_json, parse_json, require_fields
from protocol.envelope import HASH_RE, MESSAGE_ID_RE, NODE_ID_RE, TYPE_RE, check_node_id
from protocol.errors import MalformedError, VerificationError

ZERO_HASH = "0" * 64
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_UINT = 2**53 - 1
MAX_TREE_SIZE = 2**63 - 1
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


def _malformed(message: str) -> MalformedError:
    return MalformedError(message, code="malformed_log_entry")


def _check_size(value: Any, *, what: str, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise MalformedError(f"{what}: expected an integer from 0 to {MAX_TREE_SIZE}", code=code)
    return value


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


# --- RFC 6962 Merkle tree hashing ---------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _check_hashes(hashes: Iterable[bytes], *, what: str) -> None:
    if any(not isinstance(h, bytes) or len(h) != 32 for h in hashes):
        raise MalformedError(f"{what}: every hash must be 32 bytes")


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash (MTH) over already-hashed leaves; SHA-256("") for none.

    Built level by level, carrying an unpaired last node up unchanged, which gives the same
    left-balanced tree as the recursive definition (split at the largest power of two < n).
    Raises MalformedError if a leaf hash is not 32 bytes.
    """
    _check_hashes(leaf_hashes, what="merkle_root")
    if not leaf_hashes:
        return EMPTY_ROOT
    sha256, prefix = hashlib.sha256, NODE_PREFIX
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [sha256(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _push(stack: list[bytes], size: int, leaf: bytes) -> None:
    """Add leaf number ``size`` to a compact range, merging the equal-sized subtrees it completes."""
    node = leaf
    while size & 1:
        node = hashlib.sha256(NODE_PREFIX + stack.pop() + node).digest()
        size >>= 1
    stack.append(node)


@dataclass(frozen=True)
class CompactRange:
    """The roots of the perfect subtrees that cover leaves [0, size), largest first.

    One hash per set bit of ``size``: enough to append a leaf in amortised O(1) hashes and to
    compute the root in O(log size), without the leaves.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_size(self.size, what="compact range size", code="malformed")
        _check_hashes(self.hashes, what="compact range")
        if len(self.hashes) != self.size.bit_count():
            raise MalformedError(f"compact range: size {self.size} needs {self.size.bit_count()} hashes")

    def append(self, leaf: bytes) -> CompactRange:
        return self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> CompactRange:
        """The range after appending ``leaves`` (32-byte leaf hashes)."""
        stack, size = list(self.hashes), self.size
        for leaf in leaves:
            if len(leaf) != 32:
                raise MalformedError("compact range: every hash must be 32 bytes")
            _push(stack, size, leaf)
            size += 1
        return CompactRange(size, tuple(stack))

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves [0, size)."""
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = node_hash(left, node)
        return node

    def to_hex(self) -> str:
        return "".join(h.hex() for h in self.hashes)

    @classmethod
    def from_hex(cls, size: int, text: str) -> CompactRange:
        """Rebuild from ``to_hex``; raise MalformedError if the text does not fit ``size``."""
        if not isinstance(text, str) or len(text) % 64 or not re.fullmatch(r"[0-9a-f]*", text):
            raise MalformedError("compact range: expected lowercase hex, 64 digits per hash")
        return cls(size, tuple(bytes.fromhex(text[i : i + 64]) for i in range(0, len(text), 64)))


# --- C2SP signed notes and checkpoints ------------------------------------------------------------

SIGNATURE_DASH = "\u2014 "
ED25519_SIGNATURE_TYPE = 0x01
MAX_NOTE_BYTES = 64 * 1024
MAX_NOTE_SIGNATURES = 64
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")


def check_key_name(name: Any) -> str:
    """A note key name: non-empty, no Unicode space, no '+' (signed-note). Raises MalformedError."""
    if not isinstance(name, str) or not name or "+" in name or any(c.isspace() for c in name):
        raise MalformedError("note key name must be non-empty, without spaces or '+'", code="malformed_note")
    if _CONTROL_RE.search(name):
        raise MalformedError("note key name contains a control character", code="malformed_note")
    return name


def note_key_id(name: str, public_key: bytes, *, signature_type: int = ED25519_SIGNATURE_TYPE) -> bytes:
    """C2SP key id: SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    check_key_name(name)
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, 4-byte key id, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


def sign_note(text: bytes, *, name: str, signing_key: nacl.signing.SigningKey) -> bytes:
    """Sign ``text`` (UTF-8 lines, ending in a newline) as a C2SP note with one Ed25519 signature.

    Raises MalformedError if the text or the key name is not allowed in a note.
    """
    _check_note_text(text)
    key_id = note_key_id(name, bytes(signing_key.verify_key))
    signature = signing_key.sign(text).signature
    return text + b"\n" + f"{SIGNATURE_DASH}{name} {b64encode(key_id + signature)}\n".encode()


def _check_note_text(text: bytes) -> str:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError("note is not UTF-8", code="malformed_note") from e
    if not decoded.endswith("\n"):
        raise MalformedError("note text does not end with a newline", code="malformed_note")
    if _CONTROL_RE.search(decoded):
        raise MalformedError("note contains a control character other than newline", code="malformed_note")
    return decoded


def parse_note(note: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines (nothing is verified here).

    Raises MalformedError (code ``malformed_note``) for anything that is not a signed note.
    """
    if len(note) > MAX_NOTE_BYTES:
        raise MalformedError(f"note is longer than {MAX_NOTE_BYTES} bytes", code="malformed_note")
    _check_note_text(note)
    split = note.rfind(b"\n\n")
    if split < 0:
        raise MalformedError("note has no blank line before its signatures", code="malformed_note")
    text, block = note[: split + 1], note[split + 2 :].decode("utf-8")
    lines = block.split("\n")[:-1]
    if not lines:
        raise MalformedError("note has no signature lines", code="malformed_note")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise MalformedError(f"note has more than {MAX_NOTE_SIGNATURES} signatures", code="malformed_note")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    parts = line[len(SIGNATURE_DASH) :].split(" ")
    if not line.startswith(SIGNATURE_DASH) or len(parts) != 2:
        raise MalformedError("note signature line is not '— <name> <base64>'", code="malformed_note")
    name = check_key_name(parts[0])
    try:
        raw = b64decode(parts[1], what="note signature")
    except MalformedError as e:
        raise MalformedError(e.message, code="malformed_note") from e
    if len(raw) < 5:
        raise MalformedError("note signature is shorter than a key id and a signature", code="malformed_note")
    return NoteSignature(name=name, key_id=raw[:4], signature=raw[4:])


def verify_note(note: bytes, *, name: str, public_key: nacl.signing.VerifyKey) -> bytes:
    """Verify a note's Ed25519 signature by (``name``, ``public_key``) and return its text.

    Signatures by other keys (another name or key id) are ignored, as signed-note requires.
    Raises MalformedError (``malformed_note``) or VerificationError: ``bad_signature`` when a
    signature by this key does not verify, ``unsigned_note`` when there is none.
    """
    text, signatures = parse_note(note)
    key_id = note_key_id(name, bytes(public_key))
    verified = False
    for sig in signatures:
        if sig.name != name or sig.key_id != key_id:
            continue
        try:
            if len(sig.signature) != 64:
                raise nacl.exceptions.BadSignatureError("wrong length")
            public_key.verify(text, sig.signature)
        except nacl.exceptions.BadSignatureError as e:
            raise VerificationError(f"the signature by {name} does not verify", code="bad_signature") from e
        verified = True
    if not verified:
        raise VerificationError(
            f"note carries no signature by {name} (key id {key_id.hex()})", code="unsigned_note"
        )
    return text


def log_origin(node_id: str) -> str:
    """The checkpoint origin (and log key name) of a node's exchange log: ``palermo/<node id>/exchange-log``."""
    return f"palermo/{check_node_id(node_id, what='node id')}/exchange-log"


@dataclass(frozen=True)
class Checkpoint:
    """A log's size and Merkle root, named by its origin. ``note`` is the signed note it came from."""

    origin: str
    size: int
    root: bytes
    note: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.origin)
        _check_size(self.size, what="checkpoint size", code="malformed_checkpoint")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise MalformedError("checkpoint root: expected 32 bytes", code="malformed_checkpoint")

    def body(self) -> bytes:
        """The note text: origin, size and base64 root, one per line (tlog-checkpoint)."""
        return f"{self.origin}\n{self.size}\n{b64encode(self.root)}\n".encode()


def sign_checkpoint(checkpoint: Checkpoint, *, signing_key: nacl.signing.SigningKey) -> bytes:
    """The signed note of ``checkpoint``; the key name is the origin. Raises MalformedError."""
    return sign_note(checkpoint.body(), name=checkpoint.origin, signing_key=signing_key)


def parse_checkpoint_body(text: bytes) -> Checkpoint:
    """Parse a checkpoint note text; raise MalformedError (``malformed_checkpoint``) otherwise.

    Palermo checkpoints have exactly three lines: extension lines are refused.
    """
    lines = _check_note_text(text)[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedError("checkpoint has fewer than three lines", code="malformed_checkpoint")
    if len(lines) > 3:
        raise MalformedError(
            "checkpoint has extension lines (Palermo uses none)", code="malformed_checkpoint"
        )
    if not _SIZE_RE.fullmatch(lines[1]) or int(lines[1]) > MAX_TREE_SIZE:
        raise MalformedError(
            "checkpoint size is not a decimal without leading zeros", code="malformed_checkpoint"
        )
    try:
        root = b64decode(lines[2], what="checkpoint root", length=32)
    except MalformedError as e:
        raise MalformedError(e.message, code="malformed_checkpoint") from e
    try:
        return Checkpoint(origin=lines[0], size=int(lines[1]), root=root)
    except MalformedError as e:
        raise MalformedError(e.message, code="malformed_checkpoint") from e


def verify_checkpoint(note: bytes, *, origin: str, public_key: nacl.signing.VerifyKey | bytes) -> Checkpoint:
    """Verify a checkpoint note signed by the log key named ``origin``; return the checkpoint.

    Raises MalformedError (``malformed_note``, ``malformed_checkpoint``) or VerificationError
    (``bad_signature``, ``unsigned_note``, ``wrong_origin``).
    """
    key = public_key if isinstance(public_key, nacl.signing.VerifyKey) else nacl.signing.VerifyKey(public_key)
    text = verify_note(note, name=origin, public_key=key)
    checkpoint = parse_checkpoint_body(text)
    if checkpoint.origin != origin:
        raise VerificationError("checkpoint is for another log (origin differs)", code="wrong_origin")
    return Checkpoint(origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root, note=note)


# --- verifying a stored log -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with a log. ``subject`` is "entry", "checkpoint" or "head"; ``position`` is
    the entry index or checkpoint size it concerns; ``message`` names both, for a person."""

    subject: str
    position: int
    message: str

    def __str__(self) -> str:
        return self.message


class LogVerifier:
    """Streaming check of a stored log: give it every checkpoint first, then every entry in order.

    Each entry's fields must re-canonicalise to its stored leaf hash, ``prev`` must be the stored
    leaf hash of the entry before, indexes must run from 0 without gaps, and every checkpoint's
    root must be the Merkle root of the first ``size`` entries (over recomputed leaf hashes, so a
    changed entry also breaks every checkpoint that covers it). Memory is O(log n).
    """

    def __init__(
        self, *, origin: str, public_key: nacl.signing.VerifyKey | bytes, max_problems: int = 1000
    ) -> None:
        self.origin = origin
        self.public_key = public_key
        self.max_problems = max_problems
        self.problems: list[LogProblem] = []
        self.problem_count = 0
        self.count = 0
        self.checkpoints = 0
        self.last_leaf_hash = ZERO_HASH
        self.last_index = -1
        self._pending: dict[int, bytes] = {}
        self._stack: list[bytes] = []

    def add_problem(self, subject: str, position: int, message: str) -> None:
        """Record a problem found by the caller (e.g. in the log's storage) beside the verifier's own."""
        # Past max_problems only count: a wrecked log must not exhaust memory.
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(LogProblem(subject, position, message))

    def resume(self, compact: CompactRange, last_leaf_hash: str) -> None:
        """Continue after the first ``compact.size`` entries (checked before); the last has ``last_leaf_hash``."""
        self.count, self._stack = compact.size, list(compact.hashes)
        self.last_index, self.last_leaf_hash = compact.size - 1, last_leaf_hash

    def add_checkpoint(self, size: int, note: bytes) -> Checkpoint | None:
        """Check a stored checkpoint's note now, and its root once the entries reach ``size``."""
        self.checkpoints += 1
        where = f"checkpoint at size {size}:"
        try:
            checkpoint = verify_checkpoint(note, origin=self.origin, public_key=self.public_key)
        except VerificationError as e:
            reason = "" if e.code == "bad_signature" else f" ({e.message})"
            self.add_problem("checkpoint", size, f"{where} bad signature{reason}")
            return None
        except MalformedError as e:
            self.add_problem("checkpoint", size, f"{where} malformed note ({e.message})")
            return None
        if checkpoint.size != size:
            self.add_problem("checkpoint", size, f"{where} its note is for size {checkpoint.size}")
            return None
        self._pending[size] = checkpoint.root
        self._check_root()
        return checkpoint

    def add(self, fields: Mapping[str, Any], stored_leaf_hash: str) -> None:
        """Check the next stored entry (``detail`` as canonical JSON text or as an object)."""
        index = fields.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = self.last_index + 1
        after_gap = self._check_index(index)
        actual = self._recompute(index, fields, stored_leaf_hash)
        if not after_gap and fields.get("prev") != self.last_leaf_hash:
            before = f"entry {self.last_index}" if self.last_index >= 0 else "64 zeros for a first entry"
            self.add_problem(
                "entry", index, f"entry {index}: inserted or reordered (prev does not match {before})"
            )
        self.last_index = max(index, self.last_index)
        self.last_leaf_hash = stored_leaf_hash
        _push(self._stack, self.count, actual)
        self.count += 1
        self._check_root()

    def _check_index(self, index: int) -> bool:
        """Report a gap or a step back; True when the chain cannot be checked across it."""
        expected = self.last_index + 1
        if index < expected:
            message = f"entry {index}: duplicate or out of order (after entry {self.last_index})"
            self.add_problem("entry", index, message)
            return True
        if index > expected:
            which = f"entry {expected}" if index == expected + 1 else f"entries {expected} to {index - 1}"
            how = (
                f"log starts at index {index}"
                if expected == 0
                else f"index jumps from {expected - 1} to {index}"
            )
            self.add_problem("entry", expected, f"{which}: missing ({how})")
            return True
        return False

    def _recompute(self, index: int, fields: Mapping[str, Any], stored_leaf_hash: str) -> bytes:
        try:
            values = dict(fields)
            text = values.get("detail")
            if isinstance(text, str):
                try:
                    values["detail"] = json.loads(text)
                except (ValueError, RecursionError) as e:
                    raise MalformedError("detail is not JSON") from e
            entry = LogEntry.from_dict(values)
            if isinstance(text, str) and entry.detail_json != text.encode():
                raise MalformedError("detail is not canonical JSON")
            actual = entry.leaf_hash()
        except MalformedError as e:
            message = f"entry {index}: contents changed (stored fields are not an entry: {e.message})"
            self.add_problem("entry", index, message)
            return b"\xff" * 32  # matches no checkpoint
        if actual.hex() != stored_leaf_hash:
            self.add_problem("entry", index, f"entry {index}: contents changed (leaf hash differs)")
        return actual

    def _check_root(self) -> None:
        root = self._pending.pop(self.count, None)
        if root is not None and root != self.root():
            self.add_problem(
                "checkpoint", self.count, f"checkpoint at size {self.count}: root does not match entries"
            )

    def compact(self) -> CompactRange:
        """The compact range of the (recomputed) entries seen so far."""
        return CompactRange(self.count, tuple(self._stack))

    def root(self) -> bytes:
        """The Merkle root of the (recomputed) entries seen so far."""
        return self.compact().root()

    def finish(self) -> list[LogProblem]:
        """Report checkpoints beyond the last entry; return the problems, in the order found."""
        for size in sorted(self._pending):
            message = (
                f"checkpoint at size {size}: root does not match entries (the log holds only {self.count})"
            )
            self.add_problem("checkpoint", size, message)
        self._pending.clear()
        return self.problems
