"""Signed refusal receipts: a node's signed statement that it received an envelope and refused it.

A reply is the receipt of the request it answers (SPEC 5.4). An envelope that is refused gets no
reply, so the refusing node signs a short statement instead and returns it in the error body
(SPEC 5.7): its node id, the envelope hash, the refusal code and the time, signed with its
identity key under its own context string. The sender verifies it with the refuser's signing key
from the directory and keeps the signature in its log entry (``detail.receipt_time``,
``detail.receipt_signature``, ``detail.receipt_key``), so an auditor holding the sender's bundle
alone can check that the peer received that envelope and refused it, and a peer whose log omits
the refusal is caught by reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import (
    MAX_SAFE_INTEGER,
    b64decode,
    b64encode,
    canonical_json,
    expect_type,
    require_fields,
)
from protocol.envelope import HASH_RE, TYPE_RE, check_node_id
from protocol.errors import MalformedError, VerificationError

CONTEXT = b"palermo/refusal/v1\n"
SIGNATURE_SIZE = 64
_FIELDS = {"node", "envelope_hash", "code", "time", "signature"}


@dataclass(frozen=True)
class RefusalReceipt:
    """``node`` refused the envelope with hash ``envelope_hash`` with ``code`` at ``time`` (signed)."""

    node: str
    envelope_hash: str
    code: str
    time: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        check_node_id(self.node, what="receipt.node")
        if not isinstance(self.envelope_hash, str) or not HASH_RE.match(self.envelope_hash):
            raise MalformedError("receipt.envelope_hash: expected 64 lowercase hex digits")
        if not isinstance(self.code, str) or not TYPE_RE.match(self.code):  # codes are names, as types
            raise MalformedError("receipt.code: expected an error code name")
        expect_type(self.time, int, what="receipt.time")
        if not 0 <= self.time <= MAX_SAFE_INTEGER:
            raise MalformedError("receipt.time: expected unix seconds from 0 to 2**53-1")

    def signing_bytes(self) -> bytes:
        statement = {
            "code": self.code,
            "envelope_hash": self.envelope_hash,
            "node": self.node,
            "time": self.time,
        }
        return CONTEXT + canonical_json(statement)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "envelope_hash": self.envelope_hash,
            "code": self.code,
            "time": self.time,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_dict(cls, obj: Any) -> RefusalReceipt:
        """Parse a receipt (not yet verified); raises MalformedError."""
        require_fields(obj, what="receipt", required=_FIELDS)
        signature = b64decode(obj["signature"], what="receipt.signature", length=SIGNATURE_SIZE)
        return cls(obj["node"], obj["envelope_hash"], obj["code"], obj["time"], signature)


def sign_refusal(
    node: str, envelope_hash: str, code: str, time: int, *, signing_key: nacl.signing.SigningKey
) -> RefusalReceipt:
    unsigned = RefusalReceipt(node, envelope_hash, code, time)
    signature = signing_key.sign(unsigned.signing_bytes()).signature
    return RefusalReceipt(node, envelope_hash, code, time, signature)


def verify_refusal(receipt: RefusalReceipt, *, public_key: bytes, node: str, envelope_hash: str) -> None:
    """Check that ``node`` (key ``public_key``) signed ``receipt`` for the envelope ``envelope_hash``.

    Raises VerificationError (``receipt_mismatch`` when it names another node or envelope,
    ``bad_receipt_signature`` when the signature does not verify).
    """
    if receipt.node != node or receipt.envelope_hash != envelope_hash:
        raise VerificationError("the receipt names another node or envelope", code="receipt_mismatch")
    try:
        nacl.signing.VerifyKey(public_key).verify(receipt.signing_bytes(), receipt.signature)
    except (nacl.exceptions.BadSignatureError, ValueError) as e:
        raise VerificationError(
            "the receipt's signature does not verify with the node's identity key",
            code="bad_receipt_signature",
        ) from e
