"""This process's Merkle tree of the exchange log, for inclusion and consistency proofs.

A proof from scratch reads every leaf hash and rehashes the tree: about 2.3 s at 1,000,000
entries (scripts/bench/audit_speed.py). The log only grows, so each process keeps the leaf hashes
it read (packed, 32 bytes each: 32 MB at a million entries) and a protocol SubtreeCache over
them, and reads only the entries appended since. Later proofs then cost O(block · log n) hashes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import overload

from sqlalchemy import select

from node.context import NodeContext
from node.errors import OperatorError
from node.storage.models.log import LogEntryRow
from protocol.translog.proofs import SubtreeCache

HASH = 32
_lock = threading.Lock()


class PackedLeaves(Sequence[bytes]):
    """Leaf hashes in one bytearray: a third of the memory of a list of 32-byte objects."""

    def __init__(self) -> None:
        self.data = bytearray()

    def __len__(self) -> int:
        return len(self.data) // HASH

    @overload
    def __getitem__(self, item: int) -> bytes: ...
    @overload
    def __getitem__(self, item: slice) -> list[bytes]: ...
    def __getitem__(self, item: int | slice) -> bytes | list[bytes]:
        data = self.data
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            return [bytes(data[i * HASH : (i + 1) * HASH]) for i in range(start, stop, step)]
        index = item + len(self) if item < 0 else item
        if not 0 <= index < len(self):
            raise IndexError("leaf index out of range")
        return bytes(data[index * HASH : (index + 1) * HASH])


def proof_tree(node: NodeContext, size: int) -> SubtreeCache:
    """A SubtreeCache holding at least the first ``size`` leaf hashes of this node's log.

    Raises OperatorError ``log_damaged`` when an entry below ``size`` is missing or its leaf hash
    unreadable (the tree is then left as it was; 'palermo audit verify' names the damage).
    """
    with _lock:
        tree = node.cache.get("proof_tree")
        if not isinstance(tree, SubtreeCache):
            tree = node.cache["proof_tree"] = SubtreeCache(PackedLeaves())
        leaves = tree.leaves
        assert isinstance(leaves, PackedLeaves)
        have = len(leaves)
        if have >= size:
            return tree
        query = (
            select(LogEntryRow.leaf_hash)
            .where(LogEntryRow.index >= have, LogEntryRow.index < size)
            .order_by(LogEntryRow.index)
        )
        added = bytearray()
        with node.db.read() as session:
            for (leaf_hash,) in session.execute(query.execution_options(yield_per=10_000)):
                try:
                    raw = bytes.fromhex(leaf_hash)
                except (TypeError, ValueError):
                    raw = b""
                if len(raw) != HASH:
                    raise _damaged(size)
                added += raw
        if len(added) != (size - have) * HASH:
            raise _damaged(size)
        leaves.data += added
        return tree


def _damaged(size: int) -> OperatorError:
    return OperatorError(
        f"the log's entries below {size} are missing or damaged; run 'palermo audit verify'",
        code="log_damaged",
    )
