"""The keys and encoder a node uses with one peer in one key epoch (protocol/SPEC.md section 11.2).

The pair key comes from the two nodes' X25519 keys and the epoch, so only the two of them can
make or read each other's encodings. Epochs are periods of ``match_key_days`` counted from the
Unix epoch; a round names its epoch and the responder accepts the current one or the one before
(two nodes may sit either side of a boundary). The noise key mixes in a secret only this node
holds, derived from its own X25519 key, so that the peer cannot undo the bit flips.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from node.errors import OperatorError
from protocol.encoding import DEFAULT_LAYOUT, EncodedBatch, Encoder, Layout
from protocol.encoding import keys as encoding_keys
from protocol.encoding.bloom import HANDLE_SIZE, RECORD_PERSON

if TYPE_CHECKING:
    from node.context import NodeContext

DAY = 86_400


def current_epoch(node: NodeContext) -> int:
    return node.clock() // (node.settings.match_key_days * DAY)


def acceptable_epochs(node: NodeContext) -> tuple[int, ...]:
    now = current_epoch(node)
    return (now, now - 1) if now > 0 else (now,)


@dataclass(frozen=True)
class Pairing:
    """Everything keyed for one peer and epoch: the encoder, the blocking seed and row handles."""

    peer: str
    epoch: int
    layout: Layout
    encoder: Encoder
    blocking_seed: bytes
    record_key: bytes
    bucket_key: bytes

    def bucket(self, selector: bytes, buckets: int) -> int:
        """The PSI bucket of a selector: keyed, so only the two nodes can tell which bucket holds what."""
        digest = hashlib.blake2b(selector, key=self.bucket_key, digest_size=8).digest()
        return int.from_bytes(digest, "big") % buckets

    def handles(self, person_refs: list[str]) -> list[bytes]:
        """The 16-byte handles the encoder gives these persons (SPEC-encoding 3.4), without encoding."""
        return [
            hashlib.blake2b(
                ref.encode("utf-8"), key=self.record_key, digest_size=40, person=RECORD_PERSON
            ).digest()[24:]
            for ref in person_refs
        ]


def pairing(node: NodeContext, peer_id: str, epoch: int) -> Pairing:
    """The pairing with ``peer_id`` in ``epoch``. Raises OperatorError ``unknown_peer``."""
    from node.services.directory import current_directory

    member = current_directory(node, now=node.clock()).member(peer_id)
    if member is None or peer_id == node.node_id:
        raise OperatorError(f"'{peer_id}' is not a peer in this node's directory", code="unknown_peer")
    own_private = bytes(node.keys.encryption)
    pair_key = encoding_keys.pair_key(
        own_private, member.encryption_key, node_ids=(node.node_id, peer_id), epoch=epoch
    )
    local_secret = hashlib.blake2b(own_private, digest_size=32, person=b"palermo.noiseloc").digest()
    noise_key = encoding_keys.noise_key(local_secret, pair_key)
    layout = DEFAULT_LAYOUT
    return Pairing(
        peer=peer_id,
        epoch=epoch,
        layout=layout,
        encoder=Encoder(layout, pair_key=pair_key, noise_key=noise_key, epoch=epoch),
        blocking_seed=encoding_keys.subkey(pair_key, "blocking"),
        record_key=encoding_keys.subkey(noise_key, "noise"),
        bucket_key=encoding_keys.subkey(pair_key, "psi-bucket"),
    )


def row_digest(filters: bytes, presence: int, year: int) -> bytes:
    """SHA-256 of one encoded row as both sides hold it (filters, then presence and year as u16 LE)."""
    return hashlib.sha256(filters + presence.to_bytes(2, "little") + year.to_bytes(2, "little")).digest()


def batch_row_digests(batch: EncodedBatch) -> list[bytes]:
    return [
        row_digest(batch.filters[i].tobytes(), int(batch.presence[i]), int(batch.years[i]))
        for i in range(len(batch))
    ]


def state_digest(entries: list[tuple[bytes, bytes]]) -> str:
    """What one side holds of the other's encodings: SHA-256 over sorted (handle, row digest) pairs."""
    digest = hashlib.sha256(b"palermo/encodings-state/v1")
    for handle, row in sorted(entries):
        digest.update(handle + row)
    return digest.hexdigest()


def empty_batch(layout: Layout, epoch: int) -> EncodedBatch:
    words = layout.total_bits // 64
    return EncodedBatch(
        layout=layout,
        epoch=epoch,
        filters=np.zeros((0, words), np.dtype("<u8")),
        presence=np.zeros(0, np.uint16),
        years=np.zeros(0, np.uint16),
        handles=np.zeros((0, HANDLE_SIZE), np.uint8),
    )
