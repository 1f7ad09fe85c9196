"""Signed refusal receipts in a bundle: each one a peer sent back must verify (protocol/refusal.py).

A sender logs the peer's receipt on its ``refused_by_peer`` entry (``detail.receipt_time``,
``receipt_signature``, ``receipt_key``, SPEC 5.7). The verifier rebuilds the receipt from the
entry (the peer, the envelope hash, the code) and checks it with the peer's identity key from the
bundled directory. A receipt signed with a key the directory no longer lists (the peer rotated
since) cannot be checked from the bundle and is counted, not failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.canonical import b64decode, sha256_hex
from protocol.directory import Directory
from protocol.errors import ProtocolError
from protocol.refusal import RefusalReceipt, verify_refusal
from protocol.translog.audit_common import AddProblem, detail_of
from protocol.translog.bundle import EntryLine


@dataclass
class ReceiptCheck:
    """Checks the refusal receipts of a bundle's entries as they stream by."""

    keys: Mapping[str, bytes] = field(default_factory=dict)  # node id -> identity key, from the directory
    verified: int = 0
    unchecked: int = 0

    @classmethod
    def of(cls, directory: Directory | None) -> ReceiptCheck:
        return cls({m.node_id: m.signing_key for m in (directory.members if directory else ())})

    def entry(self, record: EntryLine, add_problem: AddProblem) -> None:
        fields = record.fields
        raw = fields.get("detail")
        if fields.get("direction") != "out" or "receipt_signature" not in (
            raw if isinstance(raw, str) else str(raw)
        ):
            return
        detail, index, peer = detail_of(record), record.index or 0, str(fields.get("peer", ""))
        key = self.keys.get(peer)
        if key is None or sha256_hex(key) != detail.get("receipt_key"):
            self.unchecked += 1
            return
        try:
            receipt = RefusalReceipt(
                peer,
                str(fields.get("envelope_hash", "")),
                str(fields.get("code", "")),
                detail.get("receipt_time", -1),  # type and range checked by RefusalReceipt
                b64decode(detail.get("receipt_signature"), what="receipt_signature", length=64),
            )
            verify_refusal(receipt, public_key=key, node=peer, envelope_hash=receipt.envelope_hash)
        except ProtocolError as e:
            add_problem(
                "entry", index, f"entry {index}: the refusal receipt of {peer} does not verify ({e.message})"
            )
            return
        self.verified += 1

    def to_dict(self) -> dict[str, int]:
        return {"verified": self.verified, "unchecked": self.unchecked}
