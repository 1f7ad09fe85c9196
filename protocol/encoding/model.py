"""The Fellegi-Sunter model of the reference linkage, fitted on encoded batches (SPEC-encoding 6.2).

:func:`fit` takes what comparing the candidates left (the histogram of their level patterns), the
pairs private set intersection found (:class:`SelectorPairs`) and random pairs of the two batches,
and returns a :class:`LinkModel`: m and u per comparison level, the share of matches, and the
interactions the independence model cannot express. Only the comparing party needs this; it sees
encodings, year codes and presence bits, never a name. Pure: the random pairs come from a seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from protocol.encoding.bloom import EncodedBatch
from protocol.encoding.comparisons import CODEC, COMPARISONS, EXACT_KINDS, PRESENCE, pair_levels
from protocol.encoding.scoring import Census, FellegiSunter, estimate
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
SELECTOR_KINDS = (*EXACT_KINDS, "name_dob")  # name_dob: evidence and candidates, not a comparison
# Household attributes (place, citizenship, gender) do not drive EM, nor e-mail addresses, which are
# often made of the names (olena.kovalenko@...): different people who share both names may be
# recorded with one address, and a cluster of them would pass for matches.
CORE = ("name", "birth", "document", "phone")
ANCHOR = "document"  # a shared document number is a match while EM learns what matches look like
WITH_NAMES = ("citizenship", "place", "gender", "email")  # attributes that come with the names
SHRINK = 10.0  # pseudo-pairs that pull an interaction towards independence
RANDOM_PAIRS = 500_000
NAMES = [c.field for c in COMPARISONS]


@dataclass(frozen=True)
class SelectorPairs:
    """The pairs that share exact selectors, as sorted codes a * |B| + b with a bit per kind (bit k
    for ``SELECTOR_KINDS[k]``)."""

    codes: NDArray[np.int64]
    masks: NDArray[np.uint8]
    nb: int

    @classmethod
    def of(cls, pairs: Sequence[tuple[int, int, str]], na: int, nb: int) -> SelectorPairs:
        """From (row in A, row in B, kind) triples. Raises InvalidRequestError
        (``matching_bad_input``) for an unknown kind or a row out of range."""
        bits = {kind: 1 << k for k, kind in enumerate(SELECTOR_KINDS)}
        codes = np.zeros(len(pairs), np.int64)
        masks = np.zeros(len(pairs), np.uint8)
        for n, (i, j, kind) in enumerate(pairs):
            if kind not in bits:
                raise InvalidRequestError(
                    f"exact pairs: expected a kind in {SELECTOR_KINDS}", code="matching_bad_input"
                )
            if not (0 <= i < na and 0 <= j < nb):
                raise InvalidRequestError(
                    "exact pairs: a row index is out of range", code="matching_bad_input"
                )
            codes[n], masks[n] = i * nb + j, bits[kind]
        order = np.argsort(codes, kind="stable")
        codes, masks = codes[order], masks[order]
        if codes.size == 0:
            return cls(codes, masks, nb)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        return cls(codes[starts], np.bitwise_or.reduceat(masks, starts), nb)

    def lookup(self, codes: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The kind bits of each pair code (0 for pairs that share nothing)."""
        if self.codes.size == 0:
            return np.zeros(codes.shape[0], np.uint8)
        at = np.minimum(np.searchsorted(self.codes, codes), self.codes.size - 1)
        return np.where(self.codes[at] == codes, self.masks[at], 0).astype(np.uint8)

    def within(self, start: int, stop: int) -> NDArray[np.int64]:
        """Codes of the pairs whose row in A is in [start, stop)."""
        lo, hi = np.searchsorted(self.codes, [start * self.nb, stop * self.nb])
        return self.codes[lo:hi]


@dataclass(frozen=True)
class LinkModel:
    """The fitted model, and the interactions it cannot express between the names and attributes
    that come with them. Different people who share both names mostly share their citizenship,
    gender and home town too (names come from populations), and e-mail addresses are often made of
    the names (the synthetic registers give namesakes, and people who share a family name and an
    initial, one address). ``bits[(attribute, name level)]`` corrects the weight of the attribute's
    closest level at that name level: log2 of P(agree | name level) / P(agree), among matches over
    among non-matches, each shrunk towards independence by :data:`SHRINK` pseudo-pairs (so that a
    few pairs say little). Without it, namesakes with no birth date reach a band on agreements they
    owe to their names."""

    model: FellegiSunter
    bits: dict[tuple[str, int], float]

    def weights(self, lv: NDArray[np.int8]) -> NDArray[np.float64]:
        """Match weight (log2 Bayes factor) of each row of levels."""
        out = self.model.weights(lv)
        name = lv[:, NAMES.index("name")]
        for (attribute, level), bits in self.bits.items():
            out += np.where((name == level) & (lv[:, NAMES.index(attribute)] == 0), bits, 0.0)
        return out

    def posterior(self, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(match) for each weight, with the estimated share of matches as prior."""
        return self.model.posterior(weights)

    def strong_selector(self, lv: NDArray[np.int8]) -> NDArray[np.bool_]:
        """Rows that share a selector whose weight alone (interactions included) would lift a pair
        from the prior to even odds: such a selector is evidence worth a look, whatever else the
        pair says (a recruiter's phone number under two unrelated names)."""
        needed = -np.log2(self.model.prior / (1.0 - self.model.prior))
        name = lv[:, NAMES.index("name")]
        out = np.zeros(lv.shape[0], np.bool_)
        for kind in EXACT_KINDS:
            k = NAMES.index(kind)
            weight = np.full(lv.shape[0], np.log2(self.model.m[k][0] / self.model.u[k][0]))
            for (attribute, level), bits in self.bits.items():
                weight += np.where((attribute == kind) & (name == level), bits, 0.0)
            out |= (lv[:, k] == 0) & (weight >= needed)
        return out


def fit(
    a: EncodedBatch,
    b: EncodedBatch,
    counts: NDArray[np.int64],
    meeting: NDArray[np.int64],
    selectors: SelectorPairs,
    *,
    seed: bytes,
    name_census: tuple[int, ...],
    window: int,
) -> LinkModel:
    """The model, by EM over the histogram of the candidates' level patterns (``counts``, indexed by
    pattern code; ``meeting``: the candidates among them whose birth years the name rules let meet,
    within ``window`` or unknown). u of rare agreements is counted over all pairs (:func:`census`,
    with ``name_census`` the name levels blocking never misses), of the rest taken from random
    pairs drawn from ``seed``, twice: the second time without the random pairs the first model
    takes for matches; either way never below the share the candidates show (a sample that missed a
    rare name level would let EM settle on "same name"). Raises InvalidRequestError when ``counts``
    is empty."""
    na, nb = len(a), len(b)
    present = np.flatnonzero(counts)
    lv = CODEC.decode(present)
    counted = census(a, b, meeting[present].astype(np.float64), name_census, window)
    ra, rb = random_pairs(na, nb, seed)
    random_lv = pair_levels(a, b, ra, rb, selectors.lookup(ra.astype(np.int64) * nb + rb))

    def em(weights: NDArray[np.float64]) -> FellegiSunter:
        return estimate(
            lv,
            COMPARISONS,
            u=_level_shares(random_lv, weights),
            pairs=na * nb,
            max_prior=min(0.5, min(na, nb) / (na * nb)),
            core=CORE,
            census=counted,
            counts=counts[present],
            anchor=ANCHOR,
        )

    first = em(np.ones(ra.shape[0]))
    model = em(1.0 - first.posterior(first.weights(random_lv)))
    email_pairs = _known_pairs(a, b, PRESENCE["email"])
    return LinkModel(model, _interactions(model, lv, counts[present], meeting[present], email_pairs))


def census(a: EncodedBatch, b: EncodedBatch, meeting: NDArray[np.float64], name_levels: tuple[int, ...], window: int) -> dict[str, Census]:  # fmt: skip
    """The agreements that blocking never misses, and among which pairs: a shared selector among the
    pairs where both hold one of its kind; the same full date among the pairs where both have a date
    (the date rule has no year window); ``name_levels`` among the pairs whose birth years the name
    rules let meet (``meeting`` counts those among the candidates of each pattern). At the other
    levels the candidates in the set bound u from below: within the year window the name rules find
    nearly every pair at "one agrees, one close", a level that 500,000 random pairs see a few times."""
    out = {kind: Census((0,), _known_pairs(a, b, PRESENCE[kind])) for kind in EXACT_KINDS}
    out["birth"] = Census((0,), _known_pairs(a, b, "birth"))
    out["name"] = Census(name_levels, int(meeting_rows(a.years, b.years, window).sum()), meeting)
    return out


def meeting_rows(years: NDArray[np.uint16], other: NDArray[np.uint16], window: int) -> NDArray[np.float64]:
    """For each row, the rows of the other side whose birth year it may meet: within ``window``, or
    unknown (all of them when its own year is unknown)."""
    hist = np.bincount(other.astype(np.int64), minlength=1 << 16).astype(np.float64)
    unknown, hist[0] = hist[0], 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(hist)])
    code = years.astype(np.int64)
    low, high = np.clip(code - window, 0, 1 << 16), np.clip(code + window + 1, 0, 1 << 16)
    return np.where(code == 0, float(other.shape[0]), cumulative[high] - cumulative[low] + unknown)


def random_pairs(na: int, nb: int, seed: bytes) -> tuple[Index, Index]:
    """Pairs to estimate u from: all pairs of small batches, else :data:`RANDOM_PAIRS` drawn with a
    generator seeded from ``seed`` (so both runs of one round draw the same)."""
    if na * nb <= RANDOM_PAIRS:
        codes = np.arange(na * nb, dtype=np.int64)
    else:
        digest = hashlib.blake2b(b"random pairs", key=seed, digest_size=32).digest()
        rng = np.random.default_rng(np.frombuffer(digest, np.uint64))
        codes = rng.integers(0, na * nb, RANDOM_PAIRS, dtype=np.int64)
    return (codes // nb).astype(np.intp), (codes % nb).astype(np.intp)


def _known_pairs(a: EncodedBatch, b: EncodedBatch, name: str) -> int:
    return int(a.present(name).sum()) * int(b.present(name).sum())


def _level_shares(lv: NDArray[np.int8], weights: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Weighted level frequencies per comparison, half a pair added to each level."""
    out = []
    for k, c in enumerate(COMPARISONS):
        known = lv[:, k] >= 0
        found = np.bincount(lv[known, k], weights=weights[known], minlength=c.levels) + 0.5
        out.append(found / found.sum())
    return out


def _interactions(model: FellegiSunter, lv: NDArray[np.int8], counts: NDArray[np.int64], meeting: NDArray[np.int64], email_pairs: int) -> dict[tuple[str, int], float]:  # fmt: skip
    """The bits of :class:`LinkModel`. Matches are all among the candidates. So are the non-matches
    at name level 0 whose years meet (for :data:`WITH_NAMES` at that level), and every pair that
    shares an e-mail address: for the address at any name level, non-matches are counted among the
    candidates over the expected number of pairs at that name level that both hold an address."""
    g = model.posterior(model.weights(lv))
    name = lv[:, NAMES.index("name")]
    matches = counts * g
    bits = {}
    for attribute in WITH_NAMES:
        k = NAMES.index(attribute)
        m, u = float(model.m[k][0]), float(model.u[k][0])
        for level in range(COMPARISONS[0].levels) if attribute == "email" else (0,):
            agree, known = (name == level) & (lv[:, k] == 0), (name == level) & (lv[:, k] >= 0)
            if attribute == "email":
                share_name = float(model.u[0][level]) * (1 - model.prior)
                share_u = _shrunk(counts * (1 - g), agree, email_pairs * share_name, u)
            else:
                share_u = _shrunk(meeting * (1 - g), agree, float((meeting * (1 - g))[known].sum()), u)
            share_m = _shrunk(matches, agree, float(matches[known].sum()), m)
            bits[(attribute, level)] = float(np.log2(share_m / m) - np.log2(share_u / u))
    return bits


def _shrunk(weight: NDArray[np.float64], hits: NDArray[np.bool_], known: float, prior: float) -> float:
    """The weighted share of ``hits`` among ``known`` pairs, with SHRINK pseudo-pairs at ``prior``."""
    return float((weight[hits].sum() + SHRINK * prior) / (known + SHRINK))
