"""C2SP signed notes and exchange-log checkpoints.

A checkpoint is a signed note (https://c2sp.org/signed-note) whose text is the log's origin,
size and Merkle root (https://c2sp.org/tlog-checkpoint), with no extension lines. Palermo signs
notes with Ed25519; the key name is the log's origin.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import b64decode, b64encode
from protocol.envelope import check_node_id
from protocol.errors import MalformedError, VerificationError
from protocol.translog.merkle import MAX_TREE_SIZE, _check_size

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

    Raises MalformedError (``malformed_note``, ``malformed_checkpoint``, ``malformed_key``) or
    VerificationError (``bad_signature``, ``unsigned_note``, ``wrong_origin``).
    """
    if not isinstance(public_key, nacl.signing.VerifyKey):
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise MalformedError("log public key: expected 32 bytes", code="malformed_key")
        public_key = nacl.signing.VerifyKey(public_key)
    text = verify_note(note, name=origin, public_key=public_key)
    checkpoint = parse_checkpoint_body(text)
    if checkpoint.origin != origin:
        raise VerificationError("checkpoint is for another log (origin differs)", code="wrong_origin")
    return Checkpoint(origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root, note=note)
