"""Dice with numpy against a naive Python Dice, for candidate pairs and all pairs (both methods)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol.encoding import similarity
from protocol.errors import InvalidRequestError

Words = np.ndarray  # type: ignore[type-arg]  # test alias


def naive_dice(x: Words, y: Words) -> float:
    """Dice from the bits as Python integers, one pair at a time."""
    a = int.from_bytes(x.tobytes(), "little")
    b = int.from_bytes(y.tobytes(), "little")
    total = a.bit_count() + b.bit_count()
    return 2 * (a & b).bit_count() / total if total else 0.0


def matrices(max_rows: int = 40) -> st.SearchStrategy[tuple[Words, Words]]:
    """Two uint64 matrices with the same number of words, of varied density."""

    def build(words: int) -> st.SearchStrategy[tuple[Words, Words]]:
        rows = st.integers(1, max_rows)
        elements = st.sampled_from([0, 2**64 - 1, 0x0101010101010101, 0x8000000000000001]) | st.integers(
            0, 2**64 - 1
        )
        side = rows.flatmap(lambda n: hnp.arrays(np.uint64, (n, words), elements=elements))
        return st.tuples(side, side)

    return st.integers(1, 17).flatmap(build)


@settings(max_examples=60, deadline=None)
@given(matrices(), st.data())
def test_dice_pairs_equals_naive(ab: tuple[Words, Words], data: st.DataObject) -> None:
    a, b = ab
    n = data.draw(st.integers(0, 60))
    ia = np.asarray(data.draw(st.lists(st.integers(0, a.shape[0] - 1), min_size=n, max_size=n)), np.intp)
    ib = np.asarray(data.draw(st.lists(st.integers(0, b.shape[0] - 1), min_size=n, max_size=n)), np.intp)
    got = similarity.dice_pairs(a, b, ia, ib)
    want = [naive_dice(a[i], b[j]) for i, j in zip(ia, ib, strict=True)]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(matrices(), st.sampled_from([1, 2, 3]))
def test_intersections_and_dice_matrix_equal_naive(ab: tuple[Words, Words], workers: int) -> None:
    a, b = ab
    inter = similarity.intersections(a, b, workers=workers)
    want = [
        [
            (int.from_bytes(x.tobytes(), "little") & int.from_bytes(y.tobytes(), "little")).bit_count()
            for y in b
        ]
        for x in a
    ]
    assert inter.dtype == np.uint16
    assert inter.tolist() == want
    dice = similarity.dice_matrix(a, b, workers=workers)
    np.testing.assert_allclose(dice, [[naive_dice(x, y) for y in b] for x in a], rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(matrices(), st.sampled_from([0.2, 0.5, 2 / 3, 0.8, 1.0]), st.sampled_from(["matmul", "popcount"]))
def test_pairs_above_equals_naive(ab: tuple[Words, Words], threshold: float, method: str) -> None:
    a, b = ab
    ia, ib, dice = similarity.pairs_above(a, b, threshold, method=method, workers=2)
    # Exact rational test: 2 |a & b| >= t (|a| + |b|), with t as a fraction where it is one.
    num, den = {0.2: (1, 5), 0.5: (1, 2), 2 / 3: (2, 3), 0.8: (4, 5), 1.0: (1, 1)}[threshold]
    want = []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            p, q = int.from_bytes(x.tobytes(), "little"), int.from_bytes(y.tobytes(), "little")
            total = p.bit_count() + q.bit_count()
            if total and 2 * (p & q).bit_count() * den >= num * total:
                want.append((i, j))
    assert list(zip(ia.tolist(), ib.tolist(), strict=True)) == want
    np.testing.assert_allclose(dice, [naive_dice(a[i], b[j]) for i, j in want], rtol=1e-6)


def test_popcounts() -> None:
    words = np.array([[0, 0], [1, 2**63], [2**64 - 1, 2**64 - 1]], np.uint64)
    assert similarity.popcounts(words).tolist() == [0, 2, 128]
    assert similarity.popcounts(np.zeros((0, 3), np.uint64)).tolist() == []


def test_empty_rows_have_dice_zero() -> None:
    a = np.zeros((2, 4), np.uint64)
    assert similarity.dice_pairs(a, a, np.array([0, 1]), np.array([1, 0])).tolist() == [0.0, 0.0]
    assert similarity.pairs_above(a, a, 0.1)[0].size == 0


def test_large_blocks_agree_between_methods() -> None:
    rng = np.random.default_rng(5)
    a = np.packbits(rng.random((700, 1024)) < 0.3, axis=1, bitorder="little").view("<u8")
    b = np.packbits(rng.random((5000, 1024)) < 0.3, axis=1, bitorder="little").view("<u8")
    b[:700:7] = a[::7]  # planted identical rows
    first = similarity.pairs_above(a, b, 0.5, method="matmul")
    second = similarity.pairs_above(a, b, 0.5, method="popcount", workers=2)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert {(i, i) for i in range(0, 700, 7)} <= set(zip(first[0].tolist(), first[1].tolist(), strict=True))


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: similarity.dice_pairs(np.zeros((1, 2), np.uint64), np.zeros((1, 3), np.uint64), np.array([0]), np.array([0])), "encoding_bad_pairs"),
        (lambda: similarity.dice_pairs(np.zeros((1, 2), np.uint64), np.zeros((1, 2), np.uint64), np.array([0]), np.array([0, 0])), "encoding_bad_pairs"),
        (lambda: similarity.intersections(np.zeros((1, 2), np.uint32), np.zeros((1, 2), np.uint32)), "encoding_bad_pairs"),  # type: ignore[arg-type]
        (lambda: similarity.pairs_above(np.zeros((1, 2), np.uint64), np.zeros((1, 2), np.uint64), 0.0), "encoding_bad_threshold"),
        (lambda: similarity.pairs_above(np.zeros((1, 2), np.uint64), np.zeros((1, 2), np.uint64), 0.5, method="gpu"), "encoding_bad_method"),
        (lambda: similarity.intersections(np.zeros((1, 2), np.uint64), np.zeros((1, 2), np.uint64), workers=0), "encoding_bad_workers"),
    ],
    ids=["word_counts_differ", "index_lengths_differ", "wrong_dtype", "zero_threshold", "unknown_method", "no_workers"],
)  # fmt: skip
def test_bad_similarity_inputs(call: object, code: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call()  # type: ignore[operator]  # each case is a zero-argument callable
    assert info.value.code == code
