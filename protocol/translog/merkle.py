"""RFC 6962 Merkle tree hashing for the exchange log: leaf and node hashes, roots, compact ranges.

Leaves are SHA-256(0x00 || data) and interior nodes SHA-256(0x01 || left || right) (RFC 6962
section 2.1). A :class:`CompactRange` keeps one subtree root per set bit of the tree size, so a
log can be appended to and its root computed without its leaves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.errors import MalformedError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_TREE_SIZE = 2**63 - 1


def _check_size(value: Any, *, what: str, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise MalformedError(f"{what}: expected an integer from 0 to {MAX_TREE_SIZE}", code=code)
    return value


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
