"""Dice similarity of Bloom filters with numpy: for candidate pairs and for all pairs of two blocks.

Dice(a, b) = 2 |a AND b| / (|a| + |b|), with |x| the number of set bits (0 when both are empty).
Filters are rows of little-endian 64-bit words (see :mod:`protocol.encoding.bloom`).

Candidate pairs gather their rows, AND them, count bits with ``np.bitwise_count`` (one byte per
word) and add the bytes of a row inside 64-bit lanes.

All pairs of two blocks, two ways with the same result:

- ``matmul`` (default): the bits as 0/1 float32 matrices multiplied by BLAS sgemm, which counts
  exactly (sums of at most 16384 ones) and runs on every core by itself; two extra columns fold
  the Dice threshold into the product, so each tile needs one comparison.
- ``popcount``: word by word. The words of a tile of B are stored word-major so that
  ``B[w] AND a[w]`` runs over long contiguous rows; ``np.bitwise_count`` gives one byte per word;
  the bytes of three words are summed inside 64-bit lanes (8 pairs per lane, at most 192 per byte,
  so no carry crosses a byte) and then spread into 16-bit counters. Worker threads take disjoint
  rows of A; numpy releases the GIL inside each call, and tiles are large so that the threads
  seldom wait for it.

On the 2-core reference machine sgemm does about 2000 flops per 1024-bit pair at close to the
cores' peak, which beats the popcount path (np.bitwise_count is not vectorised there).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from protocol.errors import InvalidRequestError

Words = NDArray[np.uint64]
LANE_LOW = np.uint64(0x00FF00FF00FF00FF)
SPREAD = np.uint64(0x0001000100010001)
_TILE_PAIRS = 16384  # pairs per tile: fewer, longer numpy calls let two threads share the GIL well
_PAIR_CHUNK = 65536


def popcounts(words: Words) -> NDArray[np.uint16]:
    """Number of set bits in each row."""
    if words.shape[0] == 0:
        return np.zeros(0, np.uint16)
    return _row_sums(np.bitwise_count(np.ascontiguousarray(words)))


def _row_sums(counts: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Row sums of per-word popcounts (each at most 64), as 16-bit numbers.

    With 8k words a row, the bytes are summed inside 64-bit numbers: first into four 16-bit lanes
    (each at most 128 per word group), then the lanes added with one multiplication.
    """
    rows, words = counts.shape
    if words % 8 or rows == 0:
        return np.asarray(counts.sum(axis=1, dtype=np.uint16), np.uint16)
    lanes = np.ascontiguousarray(counts).view("<u8")
    total = (lanes[:, 0] & LANE_LOW) + ((lanes[:, 0] >> np.uint64(8)) & LANE_LOW)
    for k in range(1, lanes.shape[1]):
        total += (lanes[:, k] & LANE_LOW) + ((lanes[:, k] >> np.uint64(8)) & LANE_LOW)
    return ((total * SPREAD) >> np.uint64(48)).astype(np.uint16)


def dice_pairs(
    a: Words,
    b: Words,
    ia: NDArray[np.intp],
    ib: NDArray[np.intp],
    *,
    counts_a: NDArray[np.uint16] | None = None,
    counts_b: NDArray[np.uint16] | None = None,
) -> NDArray[np.float32]:
    """Dice of rows ``a[ia[p]]`` and ``b[ib[p]]`` for each pair p, computed in chunks."""
    _check_pair(a, b)
    if ia.shape != ib.shape:
        raise InvalidRequestError("pair index arrays differ in length", code="encoding_bad_pairs")
    ca = popcounts(a) if counts_a is None else counts_a
    cb = popcounts(b) if counts_b is None else counts_b
    out = np.empty(ia.shape[0], np.float32)
    for start in range(0, ia.shape[0], _PAIR_CHUNK):
        pa, pb = ia[start : start + _PAIR_CHUNK], ib[start : start + _PAIR_CHUNK]
        rows = np.take(a, pa, axis=0)
        np.bitwise_and(rows, np.take(b, pb, axis=0), out=rows)
        inter = _row_sums(np.bitwise_count(rows))
        out[start : start + _PAIR_CHUNK] = _dice(inter, np.take(ca, pa), np.take(cb, pb))
    return out


def _dice(inter: NDArray[np.uint16], ca: NDArray[np.uint16], cb: NDArray[np.uint16]) -> NDArray[np.float32]:
    total = ca.astype(np.float32) + cb.astype(np.float32)
    return np.divide(2 * inter.astype(np.float32), total, out=np.zeros_like(total), where=total > 0)


def _check_pair(a: Words, b: Words) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.dtype != np.uint64 or b.dtype != np.uint64:
        raise InvalidRequestError(
            "expected two uint64 matrices with the same number of words per row", code="encoding_bad_pairs"
        )


@dataclass
class _Tiler:
    """Scratch space of one worker: the AND results, their popcounts and the lane sums."""

    words: int
    rows: int
    cols: int
    and_: NDArray[np.uint64] = field(init=False)
    counts: NDArray[np.uint8] = field(init=False)
    low: NDArray[np.uint64] = field(init=False)
    high: NDArray[np.uint64] = field(init=False)
    groups: NDArray[np.uint64] = field(init=False)
    spread: NDArray[np.uint64] = field(init=False)

    def __post_init__(self) -> None:
        w, r, c = self.words, self.rows, self.cols
        ngroups = (w + 2) // 3
        self.and_ = np.empty((w, r, c), np.uint64)
        self.counts = np.zeros((3 * ngroups, r, c), np.uint8)  # padded to whole groups of three words
        self.groups = np.empty((ngroups, r, c // 8), np.uint64)
        self.spread = np.empty((ngroups, r, c // 8), np.uint64)
        self.low = np.empty((r, c // 8), np.uint64)
        self.high = np.empty((r, c // 8), np.uint64)

    def intersections(self, a_t: Words, b_t: Words, out: NDArray[np.uint16]) -> None:
        """``out[i, j] = |a[i] AND b[j]|`` for a tile; ``a_t`` is (words, r), ``b_t`` (words, c), c % 8 == 0."""
        w, r = a_t.shape
        c = b_t.shape[1]
        and_, counts = self.and_[:, :r, :c], self.counts[:w, :r, :c]
        np.bitwise_and(b_t[:, None, :], a_t[:, :, None], out=and_)
        np.bitwise_count(and_, out=counts)
        ngroups = self.groups.shape[0]
        lanes = self.counts[:, :r, :c].view(np.uint64).reshape(ngroups, 3, r, c // 8)
        groups, spread = self.groups[:, :r, : c // 8], self.spread[:, :r, : c // 8]
        np.add.reduce(lanes, axis=1, out=groups)  # bytes of 3 words: at most 192, no carry between pairs
        low, high = self.low[:r, : c // 8], self.high[:r, : c // 8]
        np.bitwise_and(groups, LANE_LOW, out=spread)
        np.add.reduce(spread, axis=0, out=low)  # pairs 0, 2, 4, 6 of each lane in 16-bit counters
        np.right_shift(groups, np.uint64(8), out=spread)
        np.bitwise_and(spread, LANE_LOW, out=spread)
        np.add.reduce(spread, axis=0, out=high)  # pairs 1, 3, 5, 7
        view = out.reshape(r, c // 8, 8)
        view[:, :, 0::2] = low.view(np.uint16).reshape(r, c // 8, 4)
        view[:, :, 1::2] = high.view(np.uint16).reshape(r, c // 8, 4)


def _tile_shape(nb: int) -> tuple[int, int]:
    cols = min(max(8, -(-nb // 8) * 8), 4096)
    return max(1, _TILE_PAIRS // cols), cols


def _padded_transpose(m: Words, multiple: int) -> Words:
    """Word-major copy of ``m`` with the rows padded with zeros to a multiple of ``multiple``."""
    n = -(-m.shape[0] // multiple) * multiple
    out = np.zeros((m.shape[1], n), np.uint64)
    out[:, : m.shape[0]] = m.T
    return out


def intersections(a: Words, b: Words, *, workers: int = 2) -> NDArray[np.uint16]:
    """The full matrix of ``|a[i] AND b[j]|`` (uint16), computed with ``workers`` threads."""
    _check_pair(a, b)
    na, nb = a.shape[0], b.shape[0]
    out = np.zeros((na, nb), np.uint16)
    if na == 0 or nb == 0:
        return out
    rows, cols = _tile_shape(nb)
    a_t, b_t = _padded_transpose(a, rows), _padded_transpose(b, cols)

    def run(part: range) -> None:
        tiler = _Tiler(a.shape[1], rows, cols)
        tile = np.empty((rows, cols), np.uint16)
        for i0 in part:
            for j0 in range(0, nb, cols):
                tiler.intersections(a_t[:, i0 : i0 + rows], b_t[:, j0 : j0 + cols], tile)
                i1, j1 = min(na, i0 + rows), min(nb, j0 + cols)
                out[i0:i1, j0:j1] = tile[: i1 - i0, : j1 - j0]

    _run_parts(range(0, na, rows), workers, run)
    return out


def dice_matrix(a: Words, b: Words, *, workers: int = 2) -> NDArray[np.float32]:
    """The full matrix of Dice similarities (float32) of the rows of ``a`` and ``b``."""
    inter = intersections(a, b, workers=workers)
    return _dice(inter, popcounts(a)[:, None], popcounts(b)[None, :])


def pairs_above(
    a: Words, b: Words, threshold: float, *, workers: int = 2, method: str = "matmul"
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """Every pair (i, j) with Dice(a[i], b[j]) >= ``threshold``, as index arrays and the Dice values.

    Compares all ``len(a) * len(b)`` pairs without holding them in memory, a tile at a time.
    ``method`` "matmul" multiplies the bits as float32 matrices (BLAS sgemm, which runs on every
    core by itself, so ``workers`` is not used); "popcount" ANDs words and counts bits in
    ``workers`` threads. Both give the same pairs.
    """
    _check_pair(a, b)
    if not 0.0 < threshold <= 1.0:
        raise InvalidRequestError("the Dice threshold must be in (0, 1]", code="encoding_bad_threshold")
    if method == "matmul":
        return _pairs_above_matmul(a, b, threshold)
    if method != "popcount":
        raise InvalidRequestError("method must be matmul or popcount", code="encoding_bad_method")
    return _pairs_above_popcount(a, b, threshold, workers)


def _pairs_above_popcount(
    a: Words, b: Words, threshold: float, workers: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    na, nb = a.shape[0], b.shape[0]
    ca, cb = popcounts(a), popcounts(b)
    # |a AND b| >= need[|a| + |b|] is Dice >= threshold in integers (the epsilon absorbs rounding).
    need = np.ceil(threshold * np.arange(2 * 64 * a.shape[1] + 1) / 2 - 1e-9).astype(np.uint16)
    need[0] = 1  # two empty rows have Dice 0
    rows, cols = _tile_shape(nb)
    a_t, b_t = _padded_transpose(a, rows), _padded_transpose(b, cols)
    cb_pad = np.zeros(b_t.shape[1], np.uint16)
    cb_pad[:nb] = cb
    found: list[tuple[NDArray[np.intp], NDArray[np.intp]]] = []

    def run(part: range) -> None:
        tiler = _Tiler(a.shape[1], rows, cols)
        tile, total = np.empty((rows, cols), np.uint16), np.empty((rows, cols), np.uint16)
        hits: list[tuple[NDArray[np.intp], NDArray[np.intp]]] = []
        for i0 in part:
            r = min(rows, na - i0)
            for j0 in range(0, nb, cols):
                tiler.intersections(a_t[:, i0 : i0 + rows], b_t[:, j0 : j0 + cols], tile)
                np.add(ca[i0 : i0 + r, None], cb_pad[None, j0 : j0 + cols], out=total[:r])
                flat = np.flatnonzero(tile[:r] >= need[total[:r]])
                if flat.size:
                    ii, jj = flat // cols, flat % cols
                    keep = jj + j0 < nb
                    hits.append((ii[keep] + i0, jj[keep] + j0))
        found.extend(hits)

    _run_parts(range(0, na, rows), workers, run)
    if not found:
        empty = np.zeros(0, np.intp)
        return empty, empty, np.zeros(0, np.float32)
    ia = np.concatenate([h[0] for h in found])
    ib = np.concatenate([h[1] for h in found])
    order = np.lexsort((ib, ia))
    ia, ib = ia[order], ib[order]
    return ia, ib, dice_pairs(a, b, ia, ib, counts_a=ca, counts_b=cb)


_MATMUL_A, _MATMUL_B = 2048, 4096


def _unpacked(words: Words, extra: NDArray[np.float32]) -> NDArray[np.float32]:
    """Bits as 0.0 / 1.0 (bit i of a row is column i), followed by the ``extra`` columns."""
    bits = words.shape[1] * 64
    out = np.empty((words.shape[0], bits + extra.shape[1]), np.float32)
    out[:, :bits] = np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=1, bitorder="little")
    out[:, bits:] = extra
    return out


def _pairs_above_matmul(
    a: Words, b: Words, threshold: float
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32]]:
    """Dice >= t is |a AND b| - t|a|/2 - t|b|/2 >= 0: with a row [bits, -t|a|/2, -1] and a column
    [bits, 1, t|b|/2] one float32 product gives the left side, exact to far below 1/2."""
    ca, cb = popcounts(a), popcounts(b)
    half = np.float32(threshold / 2)
    found: list[tuple[NDArray[np.intp], NDArray[np.intp]]] = []
    product = np.empty((min(_MATMUL_A, a.shape[0]), min(_MATMUL_B, b.shape[0])), np.float32)
    hit = np.empty(product.shape, np.bool_)
    for j0 in range(0, b.shape[0], _MATMUL_B):
        cols = cb[j0 : j0 + _MATMUL_B].astype(np.float32)
        right = _unpacked(b[j0 : j0 + _MATMUL_B], np.stack([np.ones_like(cols), half * cols], axis=1))
        for i0 in range(0, a.shape[0], _MATMUL_A):
            rows = ca[i0 : i0 + _MATMUL_A].astype(np.float32)
            left = _unpacked(a[i0 : i0 + _MATMUL_A], np.stack([-half * rows, -np.ones_like(rows)], axis=1))
            out, mask = product[: left.shape[0], : right.shape[0]], hit[: left.shape[0], : right.shape[0]]
            np.matmul(left, right.T, out=out)
            np.greater_equal(out, np.float32(-1e-3), out=mask)
            flat = np.flatnonzero(mask)  # far faster than a 2-d np.nonzero on a sparse mask
            if flat.size:
                found.append((flat // mask.shape[1] + i0, flat % mask.shape[1] + j0))
    if not found:
        empty = np.zeros(0, np.intp)
        return empty, empty, np.zeros(0, np.float32)
    ia = np.concatenate([f[0] for f in found]).astype(np.intp)
    ib = np.concatenate([f[1] for f in found]).astype(np.intp)
    order = np.lexsort((ib, ia))
    ia, ib = ia[order], ib[order]
    dice = dice_pairs(a, b, ia, ib, counts_a=ca, counts_b=cb)
    keep = dice >= np.float32(threshold) - np.float32(1e-6)
    return ia[keep], ib[keep], dice[keep]


def _run_parts(starts: range, workers: int, run: Callable[[range], None]) -> None:
    """Split ``starts`` into ``workers`` interleaved parts and call ``run(part)`` in threads."""
    if not isinstance(workers, int) or workers < 1:
        raise InvalidRequestError("workers must be at least 1", code="encoding_bad_workers")
    parts = [starts[k::workers] for k in range(workers)]
    if workers == 1 or len(starts) <= 1:
        run(starts)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, part) for part in parts if len(part)]:
            future.result()
