"""Proofs for auditors from this process's cached Merkle tree (node/services/proof_tree.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from federation import build_federation
from sqlalchemy import delete, select

from node.context import NodeContext
from node.errors import OperatorError
from node.services import exchange_log
from node.services.proof_tree import PackedLeaves, proof_tree
from node.services.witness import consistency, inclusion
from node.storage.models.log import LogEntryRow
from protocol.canonical import b64decode
from protocol.translog import (
    Checkpoint,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)


@pytest.fixture
def node(make_home: Callable[..., Path], database_url: str | None) -> NodeContext:
    return build_federation(make_home, [("nld", "NLD")], database_url=database_url).nodes["nld"]


def _grow(node: NodeContext, count: int) -> Checkpoint:
    entries = [{"time": 1_800_000_000 + i, "kind": "test", "outcome": "ok", "size": i} for i in range(count)]
    with node.db.transaction() as session:
        exchange_log.append_many(session, entries)
    return exchange_log.checkpoint(node)


def _leaves(node: NodeContext) -> list[bytes]:
    with node.db.read() as session:
        rows = session.execute(select(LogEntryRow.leaf_hash).order_by(LogEntryRow.index))
        return [bytes.fromhex(h) for (h,) in rows]


def _decoded(proof: list[str]) -> list[bytes]:
    return [b64decode(h, what="proof hash") for h in proof]


def test_cached_proofs_equal_proofs_from_scratch_as_the_log_grows(node: NodeContext) -> None:
    checkpoints = [exchange_log.checkpoint(node)]
    first = inclusion(node, 0, checkpoints[0].size)  # the tree is built here, then extended below
    for count in (700, 1300, 1):
        checkpoints.append(_grow(node, count))
    leaves = _leaves(node)
    assert len(proof_tree(node, checkpoints[-1].size).leaves) == checkpoints[-1].size == len(leaves)
    assert _decoded(first["proof"]) == inclusion_proof(leaves, 0, checkpoints[0].size)
    for signed in checkpoints:
        size = signed.size
        for index in sorted({0, 1, 255, 256, size // 2, size - 1} & set(range(size))):
            proof = _decoded(inclusion(node, index, size)["proof"])
            assert proof == inclusion_proof(leaves, index, size)
            verify_inclusion(leaves[index], index, size, proof, signed.root)
    for old, new in itertools.pairwise(checkpoints):
        proof = _decoded(consistency(node, old.size, new.size)["proof"])
        assert proof == consistency_proof(leaves, old.size, new.size)
        verify_consistency(old.size, new.size, old.root, new.root, proof)


def test_a_gap_in_the_log_is_refused_and_the_cache_kept(node: NodeContext) -> None:
    size = _grow(node, 300).size
    proof_tree(node, size)
    more = _grow(node, 10).size
    with node.db.transaction() as session:
        session.execute(delete(LogEntryRow).where(LogEntryRow.index == size + 3))
    with pytest.raises(OperatorError) as refused:
        proof_tree(node, more)
    assert refused.value.code == "log_damaged"
    assert len(proof_tree(node, size).leaves) == size  # what was read before stays usable


def test_packed_leaves_index_like_a_list() -> None:
    packed, plain = PackedLeaves(), [bytes([i]) * 32 for i in range(5)]
    packed.data += b"".join(plain)
    assert (
        len(packed) == 5 and list(packed) == plain and packed[1:4] == plain[1:4] and packed[-1] == plain[-1]
    )
    with pytest.raises(IndexError):
        packed[5]
