"""RFC 9162 inclusion and consistency proofs for the exchange log's Merkle tree.

Same hashing as :mod:`protocol.translog.merkle` (leaf 0x00, node 0x01). Proofs are generated from
the leaf hashes by walking the tree from the root down (RFC 9162 sections 2.1.3.1 and 2.1.4.1,
without recursion), each sibling root computed level by level over a slice, so one proof costs at
most n - 1 node hashes. They are verified with the iterative algorithms of sections 2.1.3.2 and
2.1.4.2, never by rebuilding a tree. :class:`SubtreeCache` keeps the roots of large complete
subtrees so that many proofs over one append-only log cost O(log n) hashes each after the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from protocol.errors import MalformedError
from protocol.translog.merkle import MAX_TREE_SIZE, NODE_PREFIX, merkle_root, node_hash

LeafSource = Sequence[bytes]
"""Leaf hashes 0..size-1: a list, or any object with ``__len__`` and ``__getitem__`` for ints and slices."""

_RootOf = Callable[[int, int], bytes]


class ProofError(MalformedError):
    """An inclusion or consistency proof does not verify, or sizes and indexes are out of range."""

    code = "bad_proof"


def _check_int(value: Any, *, what: str, low: int = 0, high: int = MAX_TREE_SIZE) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProofError(f"{what}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _check_hash(value: Any, *, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ProofError(f"{what}: expected 32 bytes")
    return value


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): where RFC 9162 splits D[0:n]."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(leaves: LeafSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]), the RFC 6962 root of leaf hashes ``start`` to ``end - 1``.

    Computed level by level over the slice (O(end - start) hashes, no recursion). Proofs only
    ask for complete power-of-two subtrees and a tree's right-hand tail, but any range is allowed;
    an empty range gives SHA-256(""). Raises ProofError if the range is outside the leaves, and
    MalformedError if a leaf hash is not 32 bytes.
    """
    _check_int(end, what="subtree end", high=len(leaves))
    _check_int(start, what="subtree start", high=end)
    return merkle_root(leaves[start:end])


def _inclusion_path(root_of: _RootOf, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 2.1.3.1: sibling roots from the root down, then reversed."""
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(root_of(start + k, end))
            end = start + k
        else:
            path.append(root_of(start, start + k))
            start += k
    path.reverse()  # the leaf's sibling comes first
    return path


def _consistency_path(root_of: _RootOf, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) of RFC 9162 2.1.4.1, unrolled."""
    if old_size == new_size:
        return []
    path: list[bytes] = []
    start, end, whole = 0, new_size, True  # ``whole``: the b flag, still on the old tree's left edge
    while old_size != end:
        k = _split(end - start)
        if old_size - start <= k:
            path.append(root_of(start + k, end))
            end = start + k
        else:
            path.append(root_of(start, start + k))
            start, whole = start + k, False
    if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old subtree the verifier lacks
        path.append(root_of(start, end))
    path.reverse()
    return path


def _check_proof_sizes(leaves: LeafSource, index: int, size: int) -> None:
    _check_int(size, what="inclusion proof: tree size", low=1, high=len(leaves))
    _check_int(index, what="inclusion proof: leaf index", high=size - 1)


def _check_consistency_sizes(leaves: LeafSource, old_size: int, new_size: int) -> None:
    _check_int(new_size, what="consistency proof: new size", low=1, high=len(leaves))
    _check_int(old_size, what="consistency proof: old size", low=1, high=new_size)


def inclusion_proof(leaves: LeafSource, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves.

    Raises ProofError unless 0 <= index < size <= len(leaves).
    """
    _check_proof_sizes(leaves, index, size)
    return _inclusion_path(lambda s, e: subtree_root(leaves, s, e), index, size)


def consistency_proof(leaves: LeafSource, old_size: int, new_size: int) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``old_size`` leaves to that of ``new_size``.

    Empty when the sizes are equal. Raises ProofError unless 0 < old_size <= new_size <= len(leaves).
    """
    _check_consistency_sizes(leaves, old_size, new_size)
    return _consistency_path(lambda s, e: subtree_root(leaves, s, e), old_size, new_size)


def _proof_hashes(proof: Any, *, what: str) -> list[bytes]:
    if isinstance(proof, bytes | str) or not isinstance(proof, Sequence):
        raise ProofError(f"{what}: expected a sequence of 32-byte hashes")
    if len(proof) > 64:  # no tree of at most 2^63 - 1 leaves needs more than 64
        raise ProofError(f"{what}: {len(proof)} hashes, more than any tree needs")
    return [_check_hash(h, what=f"{what}: hash {i}") for i, h in enumerate(proof)]


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root``.

    The algorithm of RFC 9162 section 2.1.3.2. Returns nothing; raises ProofError naming what
    failed: an out-of-range index or size, a hash that is not 32 bytes, too many or too few proof
    hashes, or a computed root that differs from ``root``.
    """
    what = "inclusion proof"
    _check_int(size, what=f"{what}: tree size", low=1)
    _check_int(index, what=f"{what}: leaf index", high=size - 1)
    node = _check_hash(leaf_hash, what=f"{what}: leaf hash")
    _check_hash(root, what=f"{what}: root")
    hashes = _proof_hashes(proof, what=what)
    sha256, prefix = hashlib.sha256, NODE_PREFIX
    fn, sn = index, size - 1
    for p in hashes:
        if sn == 0:
            raise ProofError(f"{what}: {len(hashes)} hashes, more than leaf {index} of {size} needs")
        if fn & 1 or fn == sn:
            node = sha256(prefix + p + node).digest()
            while fn and not fn & 1:  # fn == sn on a right edge: climb past it
                fn, sn = fn >> 1, sn >> 1
        else:
            node = sha256(prefix + node + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what}: {len(hashes)} hashes, fewer than leaf {index} of {size} needs")
    if node != root:
        raise ProofError(f"{what}: leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` leaves (``old_root``) is a prefix of that of ``new_size``.

    The algorithm of RFC 9162 section 2.1.4.2, for 0 < old_size < new_size; for equal sizes the
    proof must be empty and the roots equal. Returns nothing; raises ProofError naming what
    failed: a size out of range (old size 0 or above the new size), a hash that is not 32 bytes,
    too many or too few proof hashes, or an old or new root that the proof does not lead to.
    """
    what = "consistency proof"
    _check_int(new_size, what=f"{what}: new size", low=1)
    if isinstance(old_size, int) and not isinstance(old_size, bool) and old_size > new_size:
        raise ProofError(f"{what}: old size {old_size} is larger than new size {new_size}")
    _check_int(old_size, what=f"{what}: old size", low=1, high=new_size)
    _check_hash(old_root, what=f"{what}: old root")
    _check_hash(new_root, what=f"{what}: new root")
    hashes = _proof_hashes(proof, what=what)
    if old_size == new_size:
        if hashes:
            raise ProofError(f"{what}: equal sizes need an empty proof, got {len(hashes)} hashes")
        if old_root != new_root:
            raise ProofError(f"{what}: equal sizes {old_size} but the roots differ")
        return
    if not hashes:
        raise ProofError(f"{what}: empty, but sizes {old_size} and {new_size} differ")
    if old_size & (old_size - 1) == 0:  # a complete old tree is its own first node: prepend it
        hashes = [old_root, *hashes]
    _check_consistency_path(old_size, new_size, old_root, new_root, hashes)


def _check_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, hashes: list[bytes]
) -> None:
    """Steps 3 to 7 of RFC 9162 section 2.1.4.2."""
    what = "consistency proof"
    sha256, prefix = hashlib.sha256, NODE_PREFIX
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofError(f"{what}: more hashes than sizes {old_size} and {new_size} need")
        if fn & 1 or fn == sn:
            fr = sha256(prefix + c + fr).digest()
            sr = sha256(prefix + c + sr).digest()
            while fn and not fn & 1:  # fn == sn on a right edge: climb past it
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = sha256(prefix + sr + c).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what}: fewer hashes than sizes {old_size} and {new_size} need")
    if fr != old_root:
        raise ProofError(f"{what}: does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"{what}: does not lead to the new root (size {new_size})")


class SubtreeCache:
    """Proofs over one append-only list of leaf hashes, remembering large complete subtrees.

    The root of every aligned power-of-two subtree of at least ``block`` leaves is kept once
    computed (about 2n / block roots); smaller ones are hashed from the leaves each time. The
    first proof costs O(n) hashes, later ones O(block * log n). Leaves may be appended between
    calls (a complete subtree never changes) but never changed or removed.
    """

    def __init__(self, leaves: LeafSource, *, block: int = 256) -> None:
        if isinstance(block, bool) or not isinstance(block, int) or block < 1 or block & (block - 1):
            raise ProofError("subtree cache block: expected a power of two")
        self.leaves = leaves
        self.block = block
        self._roots: dict[tuple[int, int], bytes] = {}

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), as :func:`subtree_root`, from the cache where it can."""
        _check_int(end, what="subtree end", high=len(self.leaves))
        _check_int(start, what="subtree start", high=end)
        return self._root(start, end)

    def _root(self, start: int, end: int) -> bytes:
        size = end - start
        if size <= self.block:
            return merkle_root(self.leaves[start:end])
        k = _split(size)
        if size & (size - 1) or start % size:  # not an aligned complete subtree: not kept
            return node_hash(self._root(start, start + k), self._root(start + k, end))
        cached = self._roots.get((start, size))
        if cached is None:
            cached = node_hash(self._root(start, start + k), self._root(start + k, end))
            self._roots[(start, size)] = cached
        return cached

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """As :func:`inclusion_proof` over the cached leaves."""
        _check_proof_sizes(self.leaves, index, size)
        return _inclusion_path(self._root, index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """As :func:`consistency_proof` over the cached leaves."""
        _check_consistency_sizes(self.leaves, old_size, new_size)
        return _consistency_path(self._root, old_size, new_size)
