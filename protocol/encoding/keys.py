"""Keys for Bloom-filter encodings: one key per pair of nodes and epoch, subkeys per use (SPEC-encoding 2).

Both nodes of a pair derive the same 32-byte pair key from their X25519 keys, their node ids and
the rotation epoch; nobody else can. Every other key used by the encoding is derived from it with
BLAKE2b, so that a key for one purpose (the positions of a field's q-grams) says nothing about
another (another field's positions, the blocking seed). The noise key that drives the bit flips
also mixes in a secret only the encoding node holds, so that its peer cannot undo the flips.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.hash
from nacl.encoding import RawEncoder

from protocol.canonical import b64encode, canonical_json
from protocol.envelope import NODE_ID_RE
from protocol.errors import InvalidRequestError, VerificationError

KEY_SIZE = 32
MAX_EPOCH = 2**53 - 1
# BLAKE2b personalisation strings (exactly 16 bytes): one per derivation, so no two can collide.
PAIR_PERSON = b"palermo.pairkey1"
SUBKEY_PERSON = b"palermo.subkey01"
NOISE_PERSON = b"palermo.noisekey"


def _blake2b(data: bytes, *, key: bytes, person: bytes, size: int = KEY_SIZE) -> bytes:
    return bytes(nacl.hash.blake2b(data, digest_size=size, key=key, person=person, encoder=RawEncoder))


def pair_key(
    own_x25519_private: bytes,
    peer_x25519_public: bytes,
    *,
    node_ids: tuple[str, str],
    epoch: int,
) -> bytes:
    """The 32-byte key both nodes of a pair derive for ``epoch`` (SPEC-encoding 2.1).

    ``node_ids`` is (own node id, peer node id). The X25519 shared secret keys a BLAKE2b hash of the
    canonical JSON of the epoch, both node ids in sorted order and their public keys in the same
    order, so that the two nodes compute the same key and any other pair, epoch or key gives another.
    Raises InvalidRequestError (``encoding_bad_key``) for malformed keys, ids or epoch, and
    VerificationError (``encoding_bad_peer_key``) for a peer key of small order.
    """
    own_id, peer_id = node_ids
    for node_id in node_ids:
        if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
            raise InvalidRequestError("pair key: node ids must be valid node ids", code="encoding_bad_key")
    if own_id == peer_id:
        raise InvalidRequestError("pair key: the two node ids must differ", code="encoding_bad_key")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise InvalidRequestError(
            f"pair key: expected an epoch from 0 to {MAX_EPOCH}", code="encoding_bad_key"
        )
    for what, value in (("own private key", own_x25519_private), ("peer public key", peer_x25519_public)):
        if not isinstance(value, bytes) or len(value) != KEY_SIZE:
            raise InvalidRequestError(f"pair key: {what} must be 32 bytes", code="encoding_bad_key")
    try:
        shared = nacl.bindings.crypto_scalarmult(own_x25519_private, peer_x25519_public)
    except nacl.exceptions.RuntimeError as e:  # libsodium refuses an all-zero result
        raise VerificationError(
            "pair key: the peer's X25519 key is of small order", code="encoding_bad_peer_key"
        ) from e
    own_public = nacl.bindings.crypto_scalarmult_base(own_x25519_private)
    pairs = sorted([(own_id, own_public), (peer_id, peer_x25519_public)])
    context = canonical_json(
        {"epoch": epoch, "keys": [b64encode(k) for _, k in pairs], "nodes": [n for n, _ in pairs]}
    )
    return _blake2b(context, key=shared, person=PAIR_PERSON)


def subkey(pair_key_: bytes, purpose: str) -> bytes:
    """The 32-byte key for one purpose (``field:<key group>``, ``blocking``, ``year``) of a pair key."""
    _check_key(pair_key_, "pair key")
    return _blake2b(purpose.encode("utf-8"), key=pair_key_, person=SUBKEY_PERSON)


def field_key(pair_key_: bytes, key_group: str) -> bytes:
    """The key that places the q-grams of the fields in ``key_group`` (SPEC-encoding 2.2)."""
    return subkey(pair_key_, f"field:{key_group}")


def noise_key(local_secret: bytes, pair_key_: bytes) -> bytes:
    """The key of the bit-flip noise (SPEC-encoding 3.4): keyed by a secret only this node holds, so
    the peer, which knows the pair key, cannot recompute the flips and remove them."""
    if not isinstance(local_secret, bytes) or len(local_secret) < 16:
        raise InvalidRequestError(
            "noise key: the local secret must be at least 16 bytes", code="encoding_bad_key"
        )
    _check_key(pair_key_, "pair key")
    return _blake2b(pair_key_, key=local_secret[:64], person=NOISE_PERSON)


def year_offset(pair_key_: bytes) -> int:
    """The keyed shift (0..29999) added to birth years sent for blocking (SPEC-encoding 4.3)."""
    raw = subkey(pair_key_, "year")
    return int.from_bytes(raw[:4], "little") % 30000


def _check_key(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise InvalidRequestError(f"{what}: expected 32 bytes", code="encoding_bad_key")
