"""RFC 9162 inclusion and consistency proofs in protocol/translog/proofs.py.

Generated proofs are compared with a literal transcription of the recursive definitions of RFC
9162 sections 2.1.3.1 and 2.1.4.1 written here, for every index, size and pair of sizes up to 70
leaves, and with the Certificate Transparency test vectors; verification is checked against
every kind of tampering, each refusal with its exact message.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import MalformedError
from protocol.translog.merkle import merkle_root
from protocol.translog.proofs import (
    ProofError,
    SubtreeCache,
    consistency_proof,
    inclusion_proof,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- RFC 9162 section 2.1, transcribed literally (recursive, slow, obviously right) ---------------


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return sha(b"")
    if len(d) == 1:
        return d[0]
    k = split(len(d))
    return sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 section 2.1.3.1."""
    if len(d) == 1:
        return []
    k = split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 section 2.1.4.1."""
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = split(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


LEAVES = [sha(b"\x00" + i.to_bytes(4, "big")) for i in range(70)]
ROOTS = [ref_mth(LEAVES[:n]) for n in range(71)]


def flipped(proof: list[bytes], i: int) -> list[bytes]:
    return [bytes([h[0] ^ 8]) + h[1:] if j == i else h for j, h in enumerate(proof)]


# --- exhaustive up to 70 leaves ------------------------------------------------------------------


def test_every_inclusion_proof_up_to_70_leaves() -> None:
    cache = SubtreeCache(LEAVES, block=4)
    for n in range(1, 71):
        for i in range(n):
            proof = inclusion_proof(LEAVES, i, n)
            assert proof == ref_path(i, LEAVES[:n]), (i, n)
            assert cache.inclusion_proof(i, n) == proof
            verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])
            for j in range(len(proof)):
                with pytest.raises(ProofError, match="does not lead to the root"):
                    verify_inclusion(LEAVES[i], i, n, flipped(proof, j), ROOTS[n])


def test_every_consistency_proof_up_to_70_leaves() -> None:
    cache = SubtreeCache(LEAVES, block=2)
    for n in range(1, 71):
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES, m, n)
            assert proof == ref_subproof(m, LEAVES[:n], True), (m, n)
            assert cache.consistency_proof(m, n) == proof
            verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
            for j in range(len(proof)):
                with pytest.raises(ProofError, match="does not lead to the"):
                    verify_consistency(m, n, ROOTS[m], ROOTS[n], flipped(proof, j))


def test_every_subtree_root_up_to_24_leaves() -> None:
    cache = SubtreeCache(LEAVES[:24], block=2)
    for start in range(25):
        for end in range(start, 25):
            expected = ref_mth(LEAVES[start:end])
            assert subtree_root(LEAVES, start, end) == expected
            assert cache.subtree_root(start, end) == expected


def test_another_index_never_verifies() -> None:
    for n in range(2, 40):
        for i in range(n):
            proof = inclusion_proof(LEAVES, i, n)
            for other in range(n):
                if other != i:
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAVES[i], other, n, proof, ROOTS[n])


# --- Certificate Transparency test vectors -------------------------------------------------------

# From transparency-dev/merkle, proof/verify_test.go (commit 02194e9afb6c1d95b5381350007963aa70fff472),
# the test suite carried over from certificate-transparency-go: eight leaves, their roots at sizes 1
# to 8, and known inclusion and consistency proofs. Leaf indexes there count from 1; here from 0.
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_LEAF_HASHES = [sha(b"\x00" + bytes.fromhex(leaf)) for leaf in CT_LEAVES]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def ct_root(size: int) -> bytes:
    return bytes.fromhex(CT_ROOTS[size - 1])


def test_a_complete_old_tree_needs_only_the_new_side() -> None:
    # From 4 to 8 the proof is MTH(D[4:8]) alone, which is also the last hash of the CT inclusion
    # proof of leaf 0 in 8; the verifier supplies the old root itself (RFC 9162 2.1.4.2 step 2).
    assert consistency_proof(CT_LEAF_HASHES, 4, 8) == [bytes.fromhex(CT_INCLUSION[1][2][2])]
    verify_consistency(4, 8, ct_root(4), ct_root(8), consistency_proof(CT_LEAF_HASHES, 4, 8))


def test_ct_roots() -> None:
    for size in range(1, 9):
        assert merkle_root(CT_LEAF_HASHES[:size]) == ct_root(size)


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_ct_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert inclusion_proof(CT_LEAF_HASHES, index, size) == expected
    verify_inclusion(CT_LEAF_HASHES[index], index, size, expected, ct_root(size))


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_ct_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(CT_LEAF_HASHES, old, new) == expected
    verify_consistency(old, new, ct_root(old), ct_root(new), expected)


# --- refusals, each with its message -------------------------------------------------------------

IDX, N = 5, 8  # the CT vector: leaf 5 of 8, three hashes
PROOF = inclusion_proof(CT_LEAF_HASHES, IDX, N)
LEAF, ROOT = CT_LEAF_HASHES[IDX], ct_root(N)
OTHER = sha(b"other")
WRONG_ROOT = f"inclusion proof: leaf {IDX} does not lead to the root of the tree of size {N}"

INCLUSION_REFUSALS: list[tuple[str, tuple[Any, ...], str]] = [
    ("wrong-leaf", (OTHER, IDX, N, PROOF, ROOT), WRONG_ROOT),
    ("neighbour-leaf", (CT_LEAF_HASHES[4], IDX, N, PROOF, ROOT), WRONG_ROOT),
    (
        "index-1",
        (LEAF, 4, N, PROOF, ROOT),
        "inclusion proof: leaf 4 does not lead to the root of the tree of size 8",
    ),
    (
        "index+1",
        (LEAF, 6, N, PROOF, ROOT),
        "inclusion proof: leaf 6 does not lead to the root of the tree of size 8",
    ),
    (
        "size-1",  # with the size-8 root it would verify: leaf 5 has the same path in 7 and 8
        (LEAF, IDX, 7, PROOF, ct_root(7)),
        "inclusion proof: leaf 5 does not lead to the root of the tree of size 7",
    ),
    ("size*2", (LEAF, IDX, 16, PROOF, ROOT), "inclusion proof: 3 hashes, fewer than leaf 5 of 16 needs"),
    (
        "size/2",
        (LEAF, IDX, 4, PROOF, ROOT),
        "inclusion proof: leaf index: expected an integer from 0 to 3, got 5",
    ),
    (
        "index=size",
        (LEAF, N, N, PROOF, ROOT),
        "inclusion proof: leaf index: expected an integer from 0 to 7, got 8",
    ),
    (
        "index<0",
        (LEAF, -1, N, PROOF, ROOT),
        "inclusion proof: leaf index: expected an integer from 0 to 7, got -1",
    ),
    (
        "index-bool",
        (LEAF, True, N, PROOF, ROOT),
        "inclusion proof: leaf index: expected an integer from 0 to 7, got True",
    ),
    (
        "size-0",
        (LEAF, 0, 0, [], ROOT),
        "inclusion proof: tree size: expected an integer from 1 to 9223372036854775807, got 0",
    ),
    (
        "size>2^63",
        (LEAF, 0, 2**63, PROOF, ROOT),
        "inclusion proof: tree size: expected an integer from 1 to 9223372036854775807, got 9223372036854775808",
    ),
    ("wrong-root", (LEAF, IDX, N, PROOF, OTHER), WRONG_ROOT),
    ("empty-tree-root", (LEAF, IDX, N, PROOF, sha(b"")), WRONG_ROOT),
    ("sibling-changed", (LEAF, IDX, N, flipped(PROOF, 0), ROOT), WRONG_ROOT),
    ("middle-changed", (LEAF, IDX, N, flipped(PROOF, 1), ROOT), WRONG_ROOT),
    ("top-changed", (LEAF, IDX, N, flipped(PROOF, 2), ROOT), WRONG_ROOT),
    (
        "removed-last",
        (LEAF, IDX, N, PROOF[:-1], ROOT),
        "inclusion proof: 2 hashes, fewer than leaf 5 of 8 needs",
    ),
    (
        "removed-first",
        (LEAF, IDX, N, PROOF[1:], ROOT),
        "inclusion proof: 2 hashes, fewer than leaf 5 of 8 needs",
    ),
    ("empty", (LEAF, IDX, N, [], ROOT), "inclusion proof: 0 hashes, fewer than leaf 5 of 8 needs"),
    (
        "added-root",
        (LEAF, IDX, N, [*PROOF, ROOT], ROOT),
        "inclusion proof: 4 hashes, more than leaf 5 of 8 needs",
    ),
    (
        "added-front",
        (LEAF, IDX, N, [ROOT, *PROOF], ROOT),
        "inclusion proof: 4 hashes, more than leaf 5 of 8 needs",
    ),
    (
        "inserted",
        (LEAF, IDX, N, [PROOF[0], OTHER, *PROOF[1:]], ROOT),
        "inclusion proof: 4 hashes, more than leaf 5 of 8 needs",
    ),
    (
        "short-hash",
        (LEAF, IDX, N, [PROOF[0], PROOF[1][:31], PROOF[2]], ROOT),
        "inclusion proof: hash 1: expected 32 bytes",
    ),
    ("empty-hash", (LEAF, IDX, N, [*PROOF, b""], ROOT), "inclusion proof: hash 3: expected 32 bytes"),
    (
        "text-hash",
        (LEAF, IDX, N, [PROOF[0].hex(), *PROOF[1:]], ROOT),
        "inclusion proof: hash 0: expected 32 bytes",
    ),
    (
        "proof-bytes",
        (LEAF, IDX, N, b"".join(PROOF), ROOT),
        "inclusion proof: expected a sequence of 32-byte hashes",
    ),
    ("65-hashes", (LEAF, IDX, N, [OTHER] * 65, ROOT), "inclusion proof: 65 hashes, more than any tree needs"),
    ("short-leaf", (LEAF[:31], IDX, N, PROOF, ROOT), "inclusion proof: leaf hash: expected 32 bytes"),
    ("short-root", (LEAF, IDX, N, PROOF, ROOT[:31]), "inclusion proof: root: expected 32 bytes"),
    (
        "size-1-wrong",
        (LEAF, 0, 1, [], OTHER),
        "inclusion proof: leaf 0 does not lead to the root of the tree of size 1",
    ),
    ("size-1-extra", (LEAF, 0, 1, [OTHER], LEAF), "inclusion proof: 1 hashes, more than leaf 0 of 1 needs"),
]


@pytest.mark.parametrize(
    ("args", "message"), [r[1:] for r in INCLUSION_REFUSALS], ids=[r[0] for r in INCLUSION_REFUSALS]
)
def test_inclusion_refusals(args: tuple[Any, ...], message: str) -> None:
    verify_inclusion(LEAF, IDX, N, PROOF, ROOT)  # the untampered proof verifies
    with pytest.raises(ProofError) as info:
        verify_inclusion(*args)
    assert (info.value.code, info.value.message) == ("bad_proof", message)
    assert isinstance(info.value, MalformedError)


M = 6  # the CT vector: 6 to 8, three hashes
CPROOF = consistency_proof(CT_LEAF_HASHES, M, N)
OLD, NEW = ct_root(M), ct_root(N)
OLD_WRONG = "consistency proof: does not lead to the old root (size 6)"
NEW_WRONG = "consistency proof: does not lead to the new root (size 8)"

CONSISTENCY_REFUSALS: list[tuple[str, tuple[Any, ...], str]] = [
    ("wrong-old-root", (M, N, OTHER, NEW, CPROOF), OLD_WRONG),
    ("wrong-new-root", (M, N, OLD, OTHER, CPROOF), NEW_WRONG),
    ("swapped-roots", (M, N, NEW, OLD, CPROOF), OLD_WRONG),
    ("old-size-1", (5, N, OLD, NEW, CPROOF), "consistency proof: fewer hashes than sizes 5 and 8 need"),
    ("old-size+1", (7, N, OLD, NEW, CPROOF), "consistency proof: fewer hashes than sizes 7 and 8 need"),
    ("old-size^2", (4, N, OLD, NEW, CPROOF), "consistency proof: more hashes than sizes 4 and 8 need"),
    ("new-size*2", (M, 16, OLD, NEW, CPROOF), "consistency proof: fewer hashes than sizes 6 and 16 need"),
    # as for inclusion, 6 to 7 has the shape of 6 to 8: only the size-7 root tells them apart
    (
        "new-size-1",
        (M, 7, OLD, ct_root(7), CPROOF),
        "consistency proof: does not lead to the new root (size 7)",
    ),
    ("m>n", (9, N, OLD, NEW, CPROOF), "consistency proof: old size 9 is larger than new size 8"),
    (
        "m=0",
        (0, N, sha(b""), NEW, CPROOF),
        "consistency proof: old size: expected an integer from 1 to 8, got 0",
    ),
    (
        "n=0",
        (0, 0, sha(b""), sha(b""), []),
        "consistency proof: new size: expected an integer from 1 to 9223372036854775807, got 0",
    ),
    (
        "m-bool",
        (True, N, OLD, NEW, CPROOF),
        "consistency proof: old size: expected an integer from 1 to 8, got True",
    ),
    ("first-changed", (M, N, OLD, NEW, flipped(CPROOF, 0)), OLD_WRONG),
    ("second-changed", (M, N, OLD, NEW, flipped(CPROOF, 1)), NEW_WRONG),  # MTH(D[6:8]) is new only
    ("last-changed", (M, N, OLD, NEW, flipped(CPROOF, 2)), OLD_WRONG),
    (
        "removed-last",
        (M, N, OLD, NEW, CPROOF[:-1]),
        "consistency proof: fewer hashes than sizes 6 and 8 need",
    ),
    (
        "removed-first",
        (M, N, OLD, NEW, CPROOF[1:]),
        "consistency proof: fewer hashes than sizes 6 and 8 need",
    ),
    ("empty", (M, N, OLD, NEW, []), "consistency proof: empty, but sizes 6 and 8 differ"),
    (
        "added-new-root",
        (M, N, OLD, NEW, [*CPROOF, NEW]),
        "consistency proof: more hashes than sizes 6 and 8 need",
    ),
    (
        "added-front",
        (M, N, OLD, NEW, [OLD, *CPROOF]),
        "consistency proof: more hashes than sizes 6 and 8 need",
    ),
    (
        "repeated-first",
        (M, N, OLD, NEW, [CPROOF[0], *CPROOF]),
        "consistency proof: more hashes than sizes 6 and 8 need",
    ),
    (
        "short-hash",
        (M, N, OLD, NEW, [CPROOF[0][:31], *CPROOF[1:]]),
        "consistency proof: hash 0: expected 32 bytes",
    ),
    ("short-old-root", (M, N, OLD[:31], NEW, CPROOF), "consistency proof: old root: expected 32 bytes"),
    ("short-new-root", (M, N, OLD, NEW[:31], CPROOF), "consistency proof: new root: expected 32 bytes"),
    ("65-hashes", (M, N, OLD, NEW, [OTHER] * 65), "consistency proof: 65 hashes, more than any tree needs"),
    (
        "equal-sizes-proof",
        (N, N, NEW, NEW, [OTHER]),
        "consistency proof: equal sizes need an empty proof, got 1 hashes",
    ),
    ("equal-sizes-roots", (N, N, OLD, NEW, []), "consistency proof: equal sizes 8 but the roots differ"),
    (
        "power-of-two-old",  # a complete old tree is its own first hash: only the new root can differ
        (4, N, OTHER, NEW, consistency_proof(CT_LEAF_HASHES, 4, N)),
        NEW_WRONG,
    ),
    ("power-of-two-new", (4, N, ct_root(4), OTHER, consistency_proof(CT_LEAF_HASHES, 4, N)), NEW_WRONG),
]


@pytest.mark.parametrize(
    ("args", "message"), [r[1:] for r in CONSISTENCY_REFUSALS], ids=[r[0] for r in CONSISTENCY_REFUSALS]
)
def test_consistency_refusals(args: tuple[Any, ...], message: str) -> None:
    verify_consistency(M, N, OLD, NEW, CPROOF)  # the untampered proof verifies
    with pytest.raises(ProofError) as info:
        verify_consistency(*args)
    assert (info.value.code, info.value.message) == ("bad_proof", message)


def test_equal_sizes_with_equal_roots_and_no_proof_verify() -> None:
    verify_consistency(N, N, NEW, NEW, [])
    verify_consistency(1, 1, CT_LEAF_HASHES[0], CT_LEAF_HASHES[0], [])


GENERATION_REFUSALS: list[tuple[str, Any, str]] = [
    (
        "inclusion-index=size",
        lambda: inclusion_proof(LEAVES, 8, 8),
        "inclusion proof: leaf index: expected an integer from 0 to 7, got 8",
    ),
    (
        "inclusion-size-0",
        lambda: inclusion_proof(LEAVES, 0, 0),
        "inclusion proof: tree size: expected an integer from 1 to 70, got 0",
    ),
    (
        "inclusion-size>leaves",
        lambda: inclusion_proof(LEAVES, 0, 71),
        "inclusion proof: tree size: expected an integer from 1 to 70, got 71",
    ),
    (
        "consistency-m=0",
        lambda: consistency_proof(LEAVES, 0, 8),
        "consistency proof: old size: expected an integer from 1 to 8, got 0",
    ),
    (
        "consistency-m>n",
        lambda: consistency_proof(LEAVES, 9, 8),
        "consistency proof: old size: expected an integer from 1 to 8, got 9",
    ),
    (
        "consistency-n>leaves",
        lambda: consistency_proof(LEAVES, 1, 71),
        "consistency proof: new size: expected an integer from 1 to 70, got 71",
    ),
    (
        "subtree-end>leaves",
        lambda: subtree_root(LEAVES, 0, 71),
        "subtree end: expected an integer from 0 to 70, got 71",
    ),
    (
        "subtree-start>end",
        lambda: subtree_root(LEAVES, 5, 4),
        "subtree start: expected an integer from 0 to 4, got 5",
    ),
    (
        "cache-consistency-m=0",
        lambda: SubtreeCache(LEAVES).consistency_proof(0, 8),
        "consistency proof: old size: expected an integer from 1 to 8, got 0",
    ),
    (
        "cache-inclusion-size>leaves",
        lambda: SubtreeCache(LEAVES).inclusion_proof(0, 71),
        "inclusion proof: tree size: expected an integer from 1 to 70, got 71",
    ),
    ("cache-block", lambda: SubtreeCache(LEAVES, block=3), "subtree cache block: expected a power of two"),
]


@pytest.mark.parametrize(
    ("call", "message"), [r[1:] for r in GENERATION_REFUSALS], ids=[r[0] for r in GENERATION_REFUSALS]
)
def test_generation_refusals(call: Any, message: str) -> None:
    with pytest.raises(ProofError) as info:
        call()
    assert info.value.message == message


def test_a_leaf_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(MalformedError, match="every hash must be 32 bytes"):
        inclusion_proof([*LEAVES[:3], b"short"], 0, 4)


# --- larger trees, by property ------------------------------------------------------------------

BIG = [sha(i.to_bytes(4, "big")) for i in range(3000)]
BIG_CACHE = SubtreeCache(BIG, block=16)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, len(BIG) - 1))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=200, deadline=None)
@given(size_and_index())
def test_inclusion_at_larger_sizes(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(BIG, index, size)
    assert proof == ref_path(index, BIG[:size]) == BIG_CACHE.inclusion_proof(index, size)
    root = merkle_root(BIG[:size])
    verify_inclusion(BIG[index], index, size, proof, root)
    with pytest.raises(ProofError):  # the checkpoint one entry later needs its own proof
        verify_inclusion(BIG[index], index, size + 1, proof, merkle_root(BIG[: size + 1]))
    with pytest.raises(ProofError):
        verify_inclusion(BIG[index - 1], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(size_and_index(), st.data())
def test_consistency_at_larger_sizes(case: tuple[int, int], data: st.DataObject) -> None:
    new, old = case[0], case[1] + 1
    proof = consistency_proof(BIG, old, new)
    assert proof == ref_subproof(old, BIG[:new], True) == BIG_CACHE.consistency_proof(old, new)
    old_root, new_root = merkle_root(BIG[:old]), merkle_root(BIG[:new])
    verify_consistency(old, new, old_root, new_root, proof)
    # A log that rewrites a leaf its old checkpoint covered cannot prove the new tree consistent
    # with that checkpoint; rewriting (here: choosing) leaves after it is an ordinary append.
    changed = data.draw(st.integers(0, new - 1))
    rewritten = [*BIG[:changed], sha(b"forged"), *BIG[changed + 1 : new]]
    forged_proof = consistency_proof(rewritten, old, new)
    if changed < old:
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, merkle_root(rewritten), forged_proof)
    else:
        verify_consistency(old, new, old_root, merkle_root(rewritten), forged_proof)


def test_cache_stays_right_while_the_log_grows() -> None:
    leaves: list[bytes] = []
    cache = SubtreeCache(leaves, block=2)
    for n in range(1, 200):
        leaves.append(sha(b"grow" + n.to_bytes(2, "big")))
        root = merkle_root(leaves)
        for i in (0, n // 3, n - 1):
            verify_inclusion(leaves[i], i, n, cache.inclusion_proof(i, n), root)
        for m in (1, (n + 1) // 2, n):
            verify_consistency(m, n, merkle_root(leaves[:m]), root, cache.consistency_proof(m, n))
