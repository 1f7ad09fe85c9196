"""Witnessing: a node sends its latest checkpoint to peers, each checks it extends what it saw and cosigns.

    log.witness {checkpoint, old_size, proof}  →  log.cosignature {status, cosignature, known_size}

The log node sends its newest signed checkpoint (a C2SP note), the size of the last checkpoint it
believes the witness cosigned (``old_size``, 0 the first time) and an RFC 9162 consistency proof
from that size. The witness answers ``status`` ``cosigned`` with one C2SP cosignature line
(protocol.translog.cosign), or ``size_mismatch`` with the size it actually knows (``known_size``),
so the log can retry once with the right proof (as the C2SP witness protocol does). A checkpoint
that does not extend what the witness saw is refused loudly (``log_fork``, ``log_rollback``) and
logged by the witness. See protocol/SPEC.md section 7.10. This module checks payload shapes only.
"""

from __future__ import annotations

from typing import Any

from protocol.canonical import MAX_SAFE_INTEGER, b64decode, require_fields
from protocol.errors import MalformedError
from protocol.messages import MessageType, register
from protocol.translog.note import MAX_NOTE_BYTES

MAX_PROOF_HASHES = 128  # 2 log2(size) at most: enough for any size up to 2**63
MAX_SIZE = MAX_SAFE_INTEGER
STATUSES = ("cosigned", "size_mismatch")


def _fail(what: str, message: str) -> MalformedError:
    return MalformedError(f"{what}.{message}", code="invalid_payload")


def _size(value: Any, what: str, name: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SIZE:
        raise _fail(what, f"{name}: expected a whole number from 0")
    return value


def _check_request(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required={"checkpoint", "old_size", "proof"})
    note = payload["checkpoint"]
    if not isinstance(note, str) or not note or len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise _fail(what, f"checkpoint: expected a signed note of at most {MAX_NOTE_BYTES} bytes")
    _size(payload["old_size"], what, "old_size")
    proof = payload["proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
        raise _fail(what, f"proof: expected a list of at most {MAX_PROOF_HASHES} hashes")
    for item in proof:
        b64decode(item, what=f"{what}.proof[]", length=32)
    return dict(payload)


def _check_reply(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required={"status", "cosignature", "known_size"})
    if payload["status"] not in STATUSES:
        raise _fail(what, f"status: expected one of {', '.join(STATUSES)}")
    line = payload["cosignature"]
    if not isinstance(line, str) or len(line) > 512 or (payload["status"] == "cosigned") != bool(line):
        raise _fail(what, "cosignature: one signature line when cosigned, empty otherwise")
    _size(payload["known_size"], what, "known_size")
    return dict(payload)


register(MessageType("log.witness", "request", _check_request, reply_types=("log.cosignature",)))
register(MessageType("log.cosignature", "reply", _check_reply))
