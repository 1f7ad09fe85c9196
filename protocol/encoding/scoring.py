"""Fellegi-Sunter scoring of candidate pairs, with m and u estimated by EM (SPEC-encoding 6).

Per field, the Dice similarity of a pair's filters becomes an agreement level (level 0 the
closest; the last level "disagrees"; -1 when either side lacks the field). Given and family
names are compared straight and crosswise and the better orientation is kept, so a swap costs
nothing. For each field and level, m = P(level | match) and u = P(level | non-match) are
estimated from the unlabelled candidate pairs with the EM algorithm of Winkler (1988), as
probabilistic linkage tools do, under the usual assumption that fields agree independently given
the match status. A pair's match weight is the sum of log2(m / u) over its fields; with the
estimated share of matches among the candidates it gives a posterior probability, and the
posterior gives the band: "likely" or "possible".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from protocol.encoding.bloom import EncodedBatch
from protocol.encoding.similarity import dice_pairs
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
MISSING = -1
LIKELY, POSSIBLE, UNLIKELY = "likely", "possible", "unlikely"
_FLOOR = 1e-6


@dataclass(frozen=True)
class Comparison:
    """One field of the model: its Dice thresholds, highest first, and the field it may swap with.

    A comparison whose levels the caller computes itself (from several fields, or not from Dice)
    gives ``labels``, one per level, closest first, and no thresholds.
    """

    field: str
    thresholds: tuple[float, ...] = (0.95, 0.85, 0.7)
    swap_with: str = ""
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        t = self.thresholds
        if self.labels:
            if t or len(self.labels) < 2:
                raise InvalidRequestError(
                    f"comparison {self.field}: labelled levels take no thresholds, and two labels at least",
                    code="encoding_bad_model",
                )
            return
        if not t or any(not 0.0 < x <= 1.0 for x in t) or any(x <= y for x, y in pairwise(t)):
            raise InvalidRequestError(
                f"comparison {self.field}: thresholds must be decreasing, in (0, 1]",
                code="encoding_bad_model",
            )

    @property
    def levels(self) -> int:
        return len(self.labels) if self.labels else len(self.thresholds) + 1


DEFAULT_COMPARISONS = (
    Comparison("given", (0.9, 0.75, 0.6), swap_with="family"),
    Comparison("family", (0.9, 0.75, 0.6), swap_with="given"),
    Comparison("birth", (0.9, 0.6, 0.35)),
    Comparison("citizenship", (0.6,)),
    Comparison("place", (0.85, 0.6)),
)


def similarities(
    a: EncodedBatch, b: EncodedBatch, ia: Index, ib: Index, comparisons: Sequence[Comparison]
) -> NDArray[np.float32]:
    """Dice per pair and comparison, shape (pairs, comparisons); NaN where either side lacks the field.

    Comparisons that name each other in ``swap_with`` are also compared crosswise, and the
    orientation with the larger sum is kept for both.
    """
    out = np.full((ia.shape[0], len(comparisons)), np.nan, np.float32)
    names = [c.field for c in comparisons]
    for k, c in enumerate(comparisons):
        out[:, k] = _dice(a, b, ia, ib, c.field, c.field)
    for k, c in enumerate(comparisons):
        if c.swap_with and c.swap_with in names and names.index(c.swap_with) > k:
            j = names.index(c.swap_with)
            cross_k = _dice(a, b, ia, ib, c.field, c.swap_with)
            cross_j = _dice(a, b, ia, ib, c.swap_with, c.field)
            straight = np.nan_to_num(out[:, k]) + np.nan_to_num(out[:, j])
            swap = np.nan_to_num(cross_k) + np.nan_to_num(cross_j) > straight
            out[swap, k], out[swap, j] = cross_k[swap], cross_j[swap]
    return out


def _dice(
    a: EncodedBatch, b: EncodedBatch, ia: Index, ib: Index, field_a: str, field_b: str
) -> NDArray[np.float32]:
    sims = dice_pairs(a.field(field_a), b.field(field_b), ia, ib)
    sims[~(a.present(field_a)[ia] & b.present(field_b)[ib])] = np.nan
    return sims


def levels(sims: NDArray[np.float32], comparisons: Sequence[Comparison]) -> NDArray[np.int8]:
    """Agreement levels: 0 for Dice >= the first threshold, ..., len(thresholds) below all, -1 missing."""
    out = np.empty(sims.shape, np.int8)
    for k, c in enumerate(comparisons):
        column = sims[:, k]
        level = np.full(column.shape, len(c.thresholds), np.int8)
        for i, t in reversed(list(enumerate(c.thresholds))):
            level[column >= t - 1e-6] = i
        level[np.isnan(column)] = MISSING
        out[:, k] = level
    return out


@dataclass(frozen=True)
class FellegiSunter:
    """Estimated model: per comparison, m and u per level; the share of matches among the pairs."""

    comparisons: tuple[Comparison, ...]
    m: tuple[NDArray[np.float64], ...]
    u: tuple[NDArray[np.float64], ...]
    prior: float
    iterations: int
    converged: bool

    def level_weights(self) -> tuple[NDArray[np.float64], ...]:
        """log2(m / u) per comparison and level."""
        return tuple(np.log2(m / u) for m, u in zip(self.m, self.u, strict=True))

    def weights(self, lv: NDArray[np.int8]) -> NDArray[np.float64]:
        """Match weight of each pair: the sum of log2(m / u) over its non-missing fields."""
        total = np.zeros(lv.shape[0])
        for k, w in enumerate(self.level_weights()):
            column = lv[:, k]
            total += np.where(column >= 0, w[np.maximum(column, 0)], 0.0)
        return total

    def posterior(self, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(match | levels) from the weights and the prior share of matches."""
        log_odds = weights + np.log2(self.prior / (1.0 - self.prior))
        return np.asarray(1.0 / (1.0 + np.exp2(-np.clip(log_odds, -200.0, 200.0))), np.float64)


@dataclass(frozen=True)
class Census:
    """Levels of a comparison that blocking never misses within a known set of pairs.

    Every pair of the set at one of ``levels`` is among the candidates (exact selectors: every pair
    that shares one; names agreeing closely, among pairs whose birth years blocking lets meet), so
    u at those levels can be counted over all ``pairs`` of the set instead of sampled. At the other
    levels blocking may miss pairs of the set but never adds any, so the candidates give a lower
    bound. ``counts`` gives, per pattern of the histogram, how many of its candidates are in the
    set (None: all).
    """

    levels: tuple[int, ...]
    pairs: int
    counts: NDArray[np.float64] | None = None

    def u(self, column: NDArray[np.int8], non_matches: NDArray[np.float64], base: NDArray[np.float64], non_match_share: float, pseudo: float) -> NDArray[np.float64]:  # fmt: skip
        """u: the census levels counted (expected non-matches in the set at the level over the
        expected non-matches in the set), the other levels the rest in proportion to ``base``, none
        below the share the set's candidates show at it.

        That bound matters for a level too rare for the sample behind ``base``: 500,000 random
        pairs see a level of a few pairs in a million a handful of times or not at all, and u taken
        from them can be a fraction of the true rate. The level then weighs bits more than it
        should, EM takes the namesakes among the candidates at it for matches, and the latent class
        drifts from "same person" to "same name" (for 2 pair keys of 36 at 100,000 persons a side,
        before the bound).
        """
        known = column >= 0
        in_set = np.bincount(column[known], weights=non_matches[known], minlength=base.shape[0])
        set_non_matches = max(self.pairs * non_match_share, 1.0)
        settled = np.zeros(base.shape[0], np.bool_)
        settled[list(self.levels)] = True
        out = np.where(settled, np.clip((in_set + pseudo) / set_non_matches, _FLOOR * _FLOOR, None), 0.0)
        while True:
            rest = max(1.0 - float(out[settled].sum()), _FLOOR)
            out[~settled] = rest * base[~settled] / max(float(base[~settled].sum()), _FLOOR)
            low = ~settled & (out < in_set / set_non_matches)
            if not low.any():
                return np.asarray(out / out.sum(), np.float64)
            settled |= low
            out[low] = in_set[low] / set_non_matches


def estimate(
    lv: NDArray[np.int8],
    comparisons: Sequence[Comparison],
    *,
    u: Sequence[NDArray[np.float64]] | None = None,
    pairs: int | None = None,
    max_prior: float | None = None,
    prior: float | None = None,
    core: Sequence[str] | None = None,
    census: Mapping[str, Census] | None = None,
    counts: NDArray[np.int64] | None = None,
    anchor: str | None = None,
    max_iterations: int = 500,
    tolerance: float = 1e-6,
    pseudo_count: float = 0.5,
) -> FellegiSunter:
    """Estimate m (and u unless given) and the share of matches by EM (SPEC-encoding 6.2).

    ``lv`` holds the levels of the candidate pairs (with ``counts``, row i stands for ``counts[i]``
    pairs: a histogram of level patterns, for candidates too many to hold). The recommended use gives ``u`` from random
    pairs (:func:`u_from_levels`) and ``pairs`` = |A| x |B|: then m and the share of matches among
    all pairs are estimated, the pairs blocking left out counting as non-matches, and weights and
    posteriors are those of the whole population, which blocking does not bias (u estimated on
    the candidates would be: blocking picks pairs that agree on names or dates, and among them an
    agreement proves little). Without ``u`` both m and u are estimated on the candidates.

    Starts from m falling with the level and u from the level frequencies; adds ``pseudo_count``
    to every level count in each M step so no estimate is 0 or 1; stops when no probability moves
    by more than ``tolerance`` (relative for the share); swaps the classes back if "match" came out
    as the one that disagrees more. The share never exceeds ``max_prior`` (default min(|A|, |B|) is
    unknown here, so 0.5 of ``pairs``; pass min(|A|, |B|) / pairs, since a person matches about one
    person of the other side: without that cap EM readily settles on "same family" instead of "same
    person"). With ``core``, only those comparisons drive EM; the others get m from the final
    posteriors, so attributes that family members share (place, citizenship) cannot turn the latent
    class into "same family". For the comparisons in ``census`` (see :class:`Census`), u of the
    census levels is counted in each M step over every pair of a known set (the expected
    non-matches among its candidates at the level, over its expected non-matches), and the other
    levels share the rest in the proportions of ``u``: agreements far rarer than any sample of
    random pairs could show are then measured over all pairs; at the other levels u is at least
    what the set's candidates show. Comparisons without a census take all pairs as their set, with
    no level sure: u from random pairs never falls below the share the candidates show (a sample
    that missed a rare level would make it weigh too much). Pairs at
    level 0 of the ``anchor`` comparison (a shared document number) are taken as matches in every E
    step: they tie the latent class to "same person", where common full names would otherwise let
    EM settle on "same name". Finally the
    weights are made to fall with the level (pool-adjacent-violators), so a closer agreement never
    counts less than a looser one.
    """
    comparisons = tuple(comparisons)
    patterns, weights = _histogram(lv, counts)
    total, cap = _bounds(lv, comparisons, pairs, max_prior, int(weights.sum()))
    names = [c.field for c in comparisons]
    keep = np.zeros(len(comparisons), np.bool_)
    keep[[names.index(f) for f in core] if core is not None else slice(None)] = True
    base_u = [np.asarray(x, np.float64) for x in u] if u is not None else []
    m = [_initial_m(c.levels) for c in comparisons]
    fixed = u is not None
    counted = {names.index(f): c for f, c in (census or {}).items()}
    if fixed:
        counted = {k: counted.get(k, Census((), total)) for k in range(len(comparisons))}
    u_now = list(base_u) if fixed else _maximisation(patterns, weights, comparisons, pseudo_count)
    p = min(cap / 2, 0.05) if prior is None else min(prior, cap)
    iterations, converged = 0, False
    for iterations in range(1, max_iterations + 1):  # noqa: B007 -- the count is reported
        g = _expectation(patterns, m, u_now, p, keep)
        if anchor is not None:
            g[patterns[:, names.index(anchor)] == 0] = 1.0
        new_m = _maximisation(patterns, weights * g, comparisons, pseudo_count)
        new_u = (
            list(base_u) if fixed else _maximisation(patterns, weights * (1 - g), comparisons, pseudo_count)
        )
        new_p = float(np.clip((weights * g).sum() / total, _FLOOR / total, cap))
        for k, c in counted.items():
            new_u[k] = c.u(patterns[:, k], (weights if c.counts is None else c.counts) * (1 - g), base_u[k], 1 - new_p, pseudo_count)  # fmt: skip
        moved = max([abs(new_p - p) / p] + [float(np.abs(x - y).max()) for x, y in zip(new_m + new_u, m + u_now, strict=True)])  # fmt: skip
        m, u_now, p = new_m, new_u, new_p
        if moved < tolerance:
            converged = True
            break
    if not fixed and _switched(m, u_now):
        m, u_now, p = u_now, m, 1.0 - p
    m = [_monotone(mk, uk) for mk, uk in zip(m, u_now, strict=True)]
    return FellegiSunter(comparisons, tuple(m), tuple(u_now), p, iterations, converged)


def _histogram(lv: NDArray[np.int8], counts: NDArray[np.int64] | None) -> tuple[NDArray[np.int8], NDArray[np.float64]]:  # fmt: skip
    """Distinct level patterns and how many pairs each stands for."""
    if counts is None:
        if lv.ndim != 2 or lv.shape[0] == 0:
            return lv, np.zeros(0)
        patterns, found = np.unique(lv, axis=0, return_counts=True)
        return patterns, found.astype(np.float64)
    if counts.shape != lv.shape[:1] or np.any(counts < 0):
        raise InvalidRequestError("counts need one non-negative entry per pattern", code="encoding_bad_model")
    return lv, counts.astype(np.float64)


def _bounds(lv: NDArray[np.int8], comparisons: tuple[Comparison, ...], pairs: int | None, max_prior: float | None, given: int) -> tuple[int, float]:  # fmt: skip
    """The number of pairs the share of matches is over, and its cap; raises InvalidRequestError."""
    if lv.ndim != 2 or lv.shape[1] != len(comparisons) or given == 0:
        raise InvalidRequestError(
            "levels must have rows and one column per comparison", code="encoding_bad_model"
        )
    total = given if pairs is None else pairs
    cap = 0.5 if max_prior is None else max_prior
    if total < given or not 0.0 < cap < 1.0:
        raise InvalidRequestError(
            "pairs must cover the candidates; max_prior in (0, 1)", code="encoding_bad_model"
        )
    return total, cap


def _monotone(m: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """m adjusted so that m / u falls with the level: adjacent violators are pooled, and within a
    pool m is shared out in proportion to u (the pool keeps its total m)."""
    pools: list[list[int]] = []
    for level in range(m.shape[0]):
        pools.append([level])
        while len(pools) > 1 and _ratio(m, u, pools[-1]) > _ratio(m, u, pools[-2]):
            last = pools.pop()
            pools[-1] += last
    out = m.copy()
    for pool in pools:
        out[pool] = u[pool] * _ratio(m, u, pool)
    return out


def _ratio(m: NDArray[np.float64], u: NDArray[np.float64], pool: list[int]) -> float:
    return float(m[pool].sum() / u[pool].sum())


def _initial_m(n_levels: int) -> NDArray[np.float64]:
    m = 0.5 ** (2.0 * np.arange(n_levels))  # 1, 1/4, 1/16, ...: matches mostly agree
    return np.asarray(m / m.sum(), np.float64)


def _expectation(patterns: NDArray[np.int8], m: list[NDArray[np.float64]], u: list[NDArray[np.float64]], p: float, keep: NDArray[np.bool_]) -> NDArray[np.float64]:  # fmt: skip
    log_m = np.full(patterns.shape[0], np.log(p))
    log_u = np.full(patterns.shape[0], np.log(1.0 - p))
    for k in np.flatnonzero(keep):
        column = patterns[:, k]
        known = column >= 0
        log_m[known] += np.log(m[k][column[known]])
        log_u[known] += np.log(u[k][column[known]])
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700))), np.float64)


def _maximisation(patterns: NDArray[np.int8], weight: NDArray[np.float64], comparisons: tuple[Comparison, ...], pseudo: float) -> list[NDArray[np.float64]]:  # fmt: skip
    out = []
    for k, c in enumerate(comparisons):
        column = patterns[:, k]
        known = column >= 0
        totals = np.bincount(column[known], weights=weight[known], minlength=c.levels) + pseudo
        out.append(np.clip(totals / totals.sum(), _FLOOR, 1.0))
    return out


def _switched(m: list[NDArray[np.float64]], u: list[NDArray[np.float64]]) -> bool:
    """True when most fields' closest level is likelier under "u" than under "m" (labels swapped)."""
    return sum(bool(mk[0] < uk[0]) for mk, uk in zip(m, u, strict=True)) > len(m) / 2


def u_from_levels(lv: NDArray[np.int8], comparisons: Sequence[Comparison], *, pseudo_count: float = 0.5) -> list[NDArray[np.float64]]:  # fmt: skip
    """Level frequencies per comparison: u estimated from pairs that are nearly all non-matches
    (random pairs, or all candidates as an EM starting point)."""
    return _maximisation(lv, np.ones(lv.shape[0]), tuple(comparisons), pseudo_count)


@dataclass(frozen=True)
class Bands:
    """Posterior thresholds of the bands (SPEC-encoding 6.3)."""

    likely: float = 0.99
    possible: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.possible <= self.likely < 1.0:
            raise InvalidRequestError("expected 0 < possible <= likely < 1", code="encoding_bad_model")

    def assign(self, posterior: NDArray[np.float64]) -> NDArray[np.str_]:
        """The band of each pair: "likely", "possible" or "unlikely"."""
        out = np.full(posterior.shape, UNLIKELY, dtype="<U8")
        out[posterior >= self.possible] = POSSIBLE
        out[posterior >= self.likely] = LIKELY
        return out


def one_to_one(ia: Index, ib: Index, weights: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Greedy one-to-one assignment: pairs taken by falling weight while both persons are free.

    Returns a mask of the kept pairs. Optional: it hides the weakness of a poor score on data where
    everyone has a partner, and it drops true pairs when a register holds one person twice.
    """
    keep = np.zeros(ia.shape[0], np.bool_)
    used_a: set[int] = set()
    used_b: set[int] = set()
    for p in np.argsort(-weights, kind="stable"):
        x, y = int(ia[p]), int(ib[p])
        if x not in used_a and y not in used_b:
            keep[p] = True
            used_a.add(x)
            used_b.add(y)
    return keep


def frequency_adjusted(
    model: FellegiSunter,
    lv: NDArray[np.int8],
    ia: Index,
    ib: Index,
    *,
    sizes: tuple[int, int],
    fields: Sequence[str] = ("given", "family"),
) -> NDArray[np.float64]:
    """Match weights with term-frequency adjustment of the closest level of ``fields``.

    A common name agreeing says less than a rare one. Here the frequency of a person's name is
    read off the encodings themselves: the share of persons of the other side whose filter
    agrees with it at level 0 among the candidate pairs (which holds every close pair). The
    weight of the level becomes log2(m / u_tf) with u_tf the larger of the two shares (at least
    one person), in place of log2(m / u) with u the average over all values.
    """
    weights = model.weights(lv)
    names = [c.field for c in model.comparisons]
    for name in fields:
        k = names.index(name)
        close = lv[:, k] == 0
        share_b = np.bincount(ia[close], minlength=int(ia.max(initial=0)) + 1)[ia] / sizes[1]
        share_a = np.bincount(ib[close], minlength=int(ib.max(initial=0)) + 1)[ib] / sizes[0]
        u_tf = np.maximum(np.maximum(share_a, share_b), 1.0 / max(sizes))
        weights[close] += np.log2(model.u[k][0] / u_tf[close])
    return weights
