"""Signed refusal receipts (protocol/refusal.py): signing bytes, parsing and verification."""

from __future__ import annotations

from typing import Any

import nacl.signing
import pytest

from protocol.errors import MalformedError, VerificationError
from protocol.refusal import RefusalReceipt, sign_refusal, verify_refusal

KEY = nacl.signing.SigningKey(bytes(range(32)))
HASH = "ab" * 32


def good() -> dict[str, Any]:
    return sign_refusal("rou-fp", HASH, "invalid_query", 1_800_000_000, signing_key=KEY).to_dict()


def test_signing_bytes_are_context_and_canonical_statement() -> None:
    receipt = RefusalReceipt.from_dict(good())
    assert receipt.signing_bytes() == (
        b'palermo/refusal/v1\n{"code":"invalid_query","envelope_hash":"' + HASH.encode()
        + b'","node":"rou-fp","time":1800000000}'
    )  # fmt: skip
    verify_refusal(receipt, public_key=bytes(KEY.verify_key), node="rou-fp", envelope_hash=HASH)


@pytest.mark.parametrize(
    ("node", "envelope_hash", "key", "code"),
    [
        ("nld-fp", HASH, KEY, "receipt_mismatch"),
        ("rou-fp", "cd" * 32, KEY, "receipt_mismatch"),
        ("rou-fp", HASH, nacl.signing.SigningKey(bytes(32)), "bad_receipt_signature"),
    ],
)
def test_a_receipt_verifies_only_for_its_node_envelope_and_key(
    node: str, envelope_hash: str, key: nacl.signing.SigningKey, code: str
) -> None:
    with pytest.raises(VerificationError) as refused:
        verify_refusal(
            RefusalReceipt.from_dict(good()),
            public_key=bytes(key.verify_key),
            node=node,
            envelope_hash=envelope_hash,
        )
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time": "now"}, "receipt.time: expected int"),
        ({"time": -1}, "receipt.time: expected unix seconds"),
        ({"code": "Bad Code"}, "receipt.code"),
        ({"envelope_hash": "AB" * 32}, "receipt.envelope_hash"),
        ({"node": "X"}, "receipt.node"),
        ({"signature": "AAAA"}, "receipt.signature"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_malformed_receipts_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedError) as refused:
        RefusalReceipt.from_dict({**good(), **change})
    assert message in refused.value.message
