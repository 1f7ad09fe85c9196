"""C2SP witness cosignatures on exchange-log checkpoints (https://c2sp.org/tlog-cosignature).

A cosignature is one more signature line on a checkpoint's signed note, by a witness that has
checked the checkpoint: signature type 0x04 (timestamped Ed25519, ``cosignature/v1``), key id
SHA-256(name || 0x0A || 0x04 || public key)[:4], and the base64 of key id || 8-byte big-endian
timestamp || Ed25519 signature over "cosignature/v1\\ntime <timestamp>\\n" followed by the note
text. The log's own signature (type 0x01) and any number of cosignatures share the note, and
each verifier ignores the lines of keys it does not know (signed-note).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import b64encode
from protocol.envelope import check_node_id
from protocol.errors import MalformedError
from protocol.translog.merkle import MAX_TREE_SIZE, _check_size
from protocol.translog.note import (
    SIGNATURE_DASH,
    _parse_signature_line,
    check_key_name,
    note_key_id,
    parse_checkpoint_body,
    parse_note,
)

COSIGNATURE_TYPE = 0x04
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = MAX_TREE_SIZE  # both are C2SP uint64 fields limited to 2**63 - 1
_TIMESTAMP_BYTES = 8
_SIGNATURE_BYTES = 64


class CosignatureError(MalformedError):
    """A note carries no valid cosignature by the expected witness key."""

    code = "bad_cosignature"


def _check_timestamp(value: Any, *, code: str) -> int:
    return _check_size(value, what="cosignature timestamp", code=code)


@dataclass(frozen=True)
class Cosignature:
    """One cosignature line: witness key name, 4-byte key id, POSIX timestamp, 64-byte signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        _check_timestamp(self.timestamp, code="malformed")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != 4:
            raise MalformedError("cosignature key id: expected 4 bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != _SIGNATURE_BYTES:
            raise MalformedError("cosignature signature: expected 64 bytes")


def witness_name(node_id: str) -> str:
    """The key name of a node's cosignatures: ``palermo-witness/<node id>``. Raises MalformedError."""
    return check_key_name(f"palermo-witness/{check_node_id(node_id, what='node id')}")


def _public_bytes(public_key: Any) -> bytes:
    if isinstance(public_key, nacl.signing.VerifyKey):
        return bytes(public_key)
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise MalformedError("witness public key: expected 32 bytes", code="malformed_key")
    return public_key


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """C2SP cosignature key id: SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 key)[:4]."""
    return note_key_id(name, _public_bytes(public_key), signature_type=COSIGNATURE_TYPE)


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """The bytes a witness signs: "cosignature/v1\\n", "time <decimal>\\n", then the note text."""
    return COSIGNATURE_HEADER + b"time %d\n" % _check_timestamp(timestamp, code="malformed") + text


def cosign(note: bytes, *, name: str, signing_key: nacl.signing.SigningKey, timestamp: int) -> bytes:
    """The cosignature line, ending in a newline, of witness ``name`` on the checkpoint ``note``.

    The caller must already have verified the checkpoint (its log signature, and that it is
    consistent with the last one it cosigned for that log); this only signs. ``timestamp`` is
    the time of cosigning in POSIX seconds. Raises MalformedError if ``note`` is not a signed
    note (``malformed_note``) of a checkpoint (``malformed_checkpoint``), or the timestamp is
    not in [0, 2^63 - 1].
    """
    text, _signatures = parse_note(note)
    parse_checkpoint_body(text)
    message = cosignature_message(text, timestamp)
    key_id = cosignature_key_id(name, bytes(signing_key.verify_key))
    signature = signing_key.sign(message).signature
    payload = key_id + timestamp.to_bytes(_TIMESTAMP_BYTES, "big") + signature
    return f"{SIGNATURE_DASH}{name} {b64encode(payload)}\n".encode()


def add_signatures(note: bytes, lines: Sequence[bytes]) -> bytes:
    """``note`` with the signature ``lines`` (each ending in one newline) added after its own.

    A line whose key name and key id are those of a line already there replaces it, so a key
    signs a note at most once and a witness's newer cosignature supersedes its older one; the
    lines are not verified here, so add only lines that verified. Raises MalformedError
    (``malformed_note``) if a line is not a signature line or the result is not a valid note.
    """
    text, _signatures = parse_note(note)
    block = note[len(text) + 1 :].split(b"\n")[:-1]
    position = {_line_key(line): i for i, line in enumerate(block)}
    for raw in lines:
        if not isinstance(raw, bytes) or not raw.endswith(b"\n") or b"\n" in raw[:-1]:
            raise MalformedError(
                "signature line: expected one line ending in a newline", code="malformed_note"
            )
        line = raw[:-1]
        key = _line_key(line)
        if key in position:
            block[position[key]] = line
        else:
            position[key] = len(block)
            block.append(line)
    result = text + b"\n" + b"".join(line + b"\n" for line in block)
    parse_note(result)  # the size and signature-count limits hold for the whole note
    return result


def _line_key(line: bytes) -> tuple[str, bytes]:
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError("signature line is not UTF-8", code="malformed_note") from e
    signature = _parse_signature_line(decoded)
    return signature.name, signature.key_id


def verify_cosignature(note: bytes, *, name: str, public_key: bytes | nacl.signing.VerifyKey) -> Cosignature:
    """Verify the cosignature by witness (``name``, ``public_key``) on ``note``; return it.

    Lines of other keys are ignored. Raises CosignatureError (``bad_cosignature``) when the note
    is not a signed note, carries no line or more than one line for this name and key id, or the
    line is not 8 + 64 bytes after the key id, has a timestamp above 2^63 - 1 or does not verify;
    MalformedError (``malformed_key``, ``malformed_note``) for a bad key or key name. The
    timestamp is not compared with any clock: a verifier that refuses cosignatures from the
    future compares ``timestamp`` itself.
    """
    raw_key = _public_bytes(public_key)
    key_id = cosignature_key_id(name, raw_key)
    try:
        text, signatures = parse_note(note)
    except MalformedError as e:
        raise CosignatureError(e.message) from e
    found = [s for s in signatures if s.name == name and s.key_id == key_id]
    if not found:
        raise CosignatureError(f"note carries no cosignature by {name} (key id {key_id.hex()})")
    if len(found) > 1:
        raise CosignatureError(f"note carries {len(found)} signatures by {name} (key id {key_id.hex()})")
    payload = found[0].signature
    if len(payload) != _TIMESTAMP_BYTES + _SIGNATURE_BYTES:
        raise CosignatureError(f"the cosignature by {name} is {len(payload)} bytes, not 8 + 64")
    timestamp = int.from_bytes(payload[:_TIMESTAMP_BYTES], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CosignatureError(f"the cosignature by {name} has a timestamp above 2^63 - 1")
    signature = payload[_TIMESTAMP_BYTES:]
    try:
        nacl.signing.VerifyKey(raw_key).verify(cosignature_message(text, timestamp), signature)
    except nacl.exceptions.BadSignatureError as e:
        raise CosignatureError(f"the cosignature by {name} does not verify") from e
    return Cosignature(name=name, key_id=key_id, timestamp=timestamp, signature=signature)


def cosignatures(note: bytes) -> list[Cosignature]:
    """Every signature line of ``note`` shaped like a cosignature (4 + 8 + 64 bytes), unverified.

    For listing who cosigned; nothing here is checked against a key. Lines of other shapes (the
    log's own 4 + 64-byte signature) are left out. Raises MalformedError (``malformed_note``) if
    ``note`` is not a signed note.
    """
    _text, signatures = parse_note(note)
    found: list[Cosignature] = []
    for s in signatures:
        if len(s.signature) != _TIMESTAMP_BYTES + _SIGNATURE_BYTES:
            continue
        timestamp = int.from_bytes(s.signature[:_TIMESTAMP_BYTES], "big")
        if timestamp <= MAX_TIMESTAMP:
            found.append(Cosignature(s.name, s.key_id, timestamp, s.signature[_TIMESTAMP_BYTES:]))
    return found
