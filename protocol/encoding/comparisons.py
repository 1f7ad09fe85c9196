"""The comparisons of the reference linkage (SPEC-encoding 6.1): from two encoded rows to agreement levels.

Only the comparing party needs this; it reads encodings and the pairs that private set
intersection found, never a name. Each comparison turns a pair into a level, 0 the closest, or
-1 (:data:`~protocol.encoding.scoring.MISSING`) when either row lacks the field:

- ``name``: given and family names together (Dice of each, the better of straight and crosswise
  orientation). One comparison, not two, because the two agree far more often together among
  different people than the product of their separate rates says: names come from the same
  population (two Syrians are likelier to share both names than a Syrian and a Nigerian), and
  random pairs then measure the joint rate directly.
- ``birth``: shared date items (see :func:`birth_levels`), and the year codes.
- ``citizenship``, ``place``, ``gender``: Dice thresholds.
- ``document``, ``phone``, ``email``: 0 when the pair shares a selector of that kind, 1 when both
  rows hold one (the ``has_*`` presence fields) but none is shared, missing otherwise. Telling "both
  hold a phone and none is common" (evidence against) from "one holds none" (no evidence) needs
  only the presence bit, never the number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from protocol.encoding.bloom import EncodedBatch
from protocol.encoding.scoring import MISSING, Comparison, levels

Index = NDArray[np.intp]

NAME = Comparison(
    "name",
    (),
    labels=(
        "both agree",
        "one agrees, one close",
        "one agrees, one near",
        "both close",
        "both close or near",
        "one agrees, one differs",
        "one close or near, one differs",
        "both differ",
    ),
)
# The levels at which one name agrees (Dice >= 0.9): name blocking never misses those pairs.
NAME_AGREES = (0, 1, 2, 5)
NAME_PARTS = (
    Comparison("given", (0.9, 0.75, 0.6), swap_with="family"),
    Comparison("family", (0.9, 0.75, 0.6), swap_with="given"),
)
# The name level of (given level, family level): agrees (Dice >= 0.9), close (0.75), near (0.6),
# differs, and 4 for a missing part, which counts as differing, except that two missing parts are
# a missing name.
_NAME_TABLE = np.array(
    [
        [0, 1, 2, 5, 5],
        [1, 3, 4, 6, 6],
        [2, 4, 4, 6, 6],
        [5, 6, 6, 7, 7],
        [5, 6, 6, 7, MISSING],
    ],
    np.int8,
)
BIRTH = Comparison(
    "birth", (), labels=("same date", "two date items", "same year", "years one apart", "other years")
)
# Shared bits of two birth filters, in items (a full date has four: year, month, date, swap key),
# from which a pair counts as sharing the whole date (with Dice >= SAME_DATE_DICE, so neither side
# has items the other lacks), two items, or one.
DATE_ITEMS = (2.5, 1.6, 0.8)
SAME_DATE_DICE = 0.85
DICE = (
    Comparison("citizenship", (0.6,)),
    Comparison("place", (0.85, 0.6)),
    Comparison("gender", (0.6,)),
)
EXACT_KINDS = ("document", "phone", "email")
PRESENCE = {"document": "has_document", "phone": "has_phone", "email": "has_email"}
EXACT = tuple(Comparison(kind, (), labels=("shared", "both hold one, none shared")) for kind in EXACT_KINDS)
COMPARISONS = (NAME, BIRTH, *DICE, *EXACT)
FIELDS = frozenset({"given", "family", "birth", *(c.field for c in DICE), *PRESENCE.values()})


def pair_levels(
    a: EncodedBatch, b: EncodedBatch, ia: Index, ib: Index, shared: NDArray[np.uint8]
) -> NDArray[np.int8]:
    """Levels of pairs (``a[ia[p]]``, ``b[ib[p]]``) for :data:`COMPARISONS`, shape (pairs, comparisons).

    ``shared`` has bit k set when the pair shares an exact selector of kind ``EXACT_KINDS[k]``.
    The batches must have every field in :data:`FIELDS`.
    """
    rows = _Rows(a, b, ia, ib)
    out = np.empty((ia.shape[0], len(COMPARISONS)), np.int8)
    parts = levels(rows.names(), NAME_PARTS)
    parts[parts == MISSING] = 4
    out[:, 0] = _NAME_TABLE[parts[:, 0], parts[:, 1]]
    out[:, 1] = rows.birth()
    out[:, 2 : 2 + len(DICE)] = levels(np.column_stack([rows.dice(c.field) for c in DICE]), DICE)
    for k, kind in enumerate(EXACT_KINDS):
        both = rows.present(PRESENCE[kind])
        found = (shared >> k) & 1 == 1
        out[:, 2 + len(DICE) + k] = np.where(found, 0, np.where(both, 1, MISSING))
    return out


class _Rows:
    """The two rows of each pair, gathered once (whole rows are contiguous, so one gather beats one
    per field), and the per-word popcounts from which every field's Dice follows."""

    def __init__(self, a: EncodedBatch, b: EncodedBatch, ia: Index, ib: Index) -> None:
        self.layout = a.layout
        self.ra, self.rb = np.take(a.filters, ia, axis=0), np.take(b.filters, ib, axis=0)
        self.pa, self.pb = a.presence[ia], b.presence[ib]
        self.ya, self.yb = a.years[ia].astype(np.int32), b.years[ib].astype(np.int32)
        starts = np.cumsum([0] + [f.words for f in self.layout.fields])[:-1]
        self.ca, self.cb, self.cab = (
            np.add.reduceat(np.bitwise_count(rows).astype(np.int32), starts, axis=1)
            for rows in (self.ra, self.rb, self.ra & self.rb)
        )

    def present(self, name: str, other: str = "") -> NDArray[np.bool_]:
        """Pairs whose row in a has ``name`` and whose row in b has ``other`` (default the same)."""
        i, j = self.layout.index(name), self.layout.index(other or name)
        return np.asarray(((self.pa >> i) & 1 == 1) & ((self.pb >> j) & 1 == 1), np.bool_)

    def bits(self, name: str) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]:
        """Set bits of the field in a's row, in b's row, and in both."""
        k = self.layout.index(name)
        return self.ca[:, k], self.cb[:, k], self.cab[:, k]

    def dice(self, name: str, other: str = "") -> NDArray[np.float32]:
        """Dice of field ``name`` of a's row and field ``other`` (default the same) of b's row; NaN
        where either is absent."""
        if not other or other == name:
            na, nb, both = self.bits(name)
        else:
            na, nb = self.ca[:, self.layout.index(name)], self.cb[:, self.layout.index(other)]
            crossed = self.ra[:, self.layout.word_slice(name)] & self.rb[:, self.layout.word_slice(other)]
            both = np.bitwise_count(crossed).sum(axis=1, dtype=np.int32)
        total = (na + nb).astype(np.float32)
        out = np.divide(2 * both.astype(np.float32), total, out=np.zeros_like(total), where=total > 0)
        out[~self.present(name, other)] = np.nan
        return out

    def names(self) -> NDArray[np.float32]:
        """Dice of given and family names, in the orientation (straight or crosswise) with the larger
        sum, so that a swap of the two costs nothing."""
        straight = np.column_stack([self.dice("given"), self.dice("family")])
        cross = np.column_stack([self.dice("given", "family"), self.dice("family", "given")])
        swap = np.nan_to_num(cross).sum(axis=1) > np.nan_to_num(straight).sum(axis=1)
        straight[swap] = cross[swap]
        return straight

    def birth(self) -> NDArray[np.int8]:
        """0 same date, 1 two shared items, 2 same year, 3 years one apart, 4 other years; -1 when
        either lacks a date.

        Dice would mix precision with agreement (two year-only dates agree fully, yet only on the
        year), so the level counts shared items: the shared bits over the bits an item sets. The
        year codes, when both are known, decide the year exactly (a 1 January placeholder has none).
        """
        hashes = self.layout.fields[self.layout.index("birth")].hashes
        na, nb, shared = self.bits("birth")
        items, dice = shared / hashes, 2 * shared / np.maximum(na + nb, 1)
        known = (self.ya > 0) & (self.yb > 0)
        apart = np.abs(self.ya - self.yb)
        same_year = np.where(known, apart == 0, items >= DATE_ITEMS[2])
        out = np.where(same_year, 2, np.where(known & (apart == 1), 3, 4))
        out = np.where(same_year & (items >= DATE_ITEMS[1]), 1, out)
        out = np.where(same_year & (items >= DATE_ITEMS[0]) & (dice >= SAME_DATE_DICE), 0, out)
        out[~self.present("birth")] = MISSING
        return np.asarray(out, np.int8)


class PatternCodec:
    """Level vectors as mixed-radix numbers (missing is digit 0): a pair's levels fit in 32 bits, and
    a model sees a histogram of patterns however many pairs there are."""

    def __init__(self, comparisons: tuple[Comparison, ...]) -> None:
        self.radix = np.array([c.levels + 1 for c in comparisons], np.int64)
        self.stride = np.concatenate([[1], np.cumprod(self.radix[:-1])]).astype(np.int64)
        self.size = int(np.prod(self.radix))

    def encode(self, lv: NDArray[np.int8]) -> NDArray[np.uint32]:
        """The code of each row of levels."""
        return np.asarray((lv.astype(np.int64) + 1) @ self.stride, np.uint32)

    def decode(self, codes: NDArray[np.int64]) -> NDArray[np.int8]:
        """The levels of each code."""
        return np.asarray((codes[:, None] // self.stride) % self.radix - 1, np.int8)


CODEC = PatternCodec(COMPARISONS)
