"""Linkage of two encoded batches: blocking, comparison, Fellegi-Sunter scoring with EM, bands.

The comparing party may be either node of a pair (direct mode) or a third member that holds no key
(linkage-unit mode), so :func:`link` takes only encoded batches, the blocking seed and the pairs
that private set intersection found; it never sees a name. Nothing it raises or logs carries row
content: batches hold none, and messages name only counts and codes.

The pipeline (protocol/SPEC.md section 11.6):

1. Candidates: Hamming-LSH blocking on the name, phonetic and date filters, plus every pair that
   shares an exact selector.
2. Levels: per comparison, the Dice similarity of the two filters becomes an agreement level; the
   exact selector kinds are two-level comparisons (shared or not).
3. Model: u of the fuzzy comparisons from random pairs, m and the share of matches by EM over the
   histogram of level patterns (the pairs blocking left out count as non-matches), u of the exact
   kinds over all pairs (a pair outside the candidates shares no selector). Then u is estimated
   again from the random pairs without the ones the model takes for matches, and EM runs once more:
   on small registers random pairs are nearly all pairs, matches included.
4. Bands from the posterior: "likely" and "possible"; a pair that shares an exact selector is at
   least "possible", whatever its names say (a recruiter's phone in two countries' files).
5. One partner per person, by falling weight; a losing pair stays only if it is itself likely and
   the two records it competes for look like one person written twice (the other side's duplicate).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from node.matching.features import Features
from protocol.encoding import EncodedBatch, Encoder
from protocol.encoding.blocking import BlockingRule, CandidateIndex, LshScheme, rows
from protocol.encoding.comparisons import (
    CODEC,
    COMPARISONS,
    EXACT_KINDS,
    FIELDS,
    NAME_AGREES,
    PRESENCE,
    pair_levels,
)
from protocol.encoding.scoring import (
    LIKELY,
    MISSING,
    POSSIBLE,
    Bands,
    Census,
    Comparison,
    FellegiSunter,
    estimate,
)
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
Progress = Callable[[str, int, int], None]

# name_dob is evidence and a source of candidates, not a comparison: it repeats names and birth date.
SELECTOR_KINDS = (*EXACT_KINDS, "name_dob")
CORE = ("name", "birth", *EXACT_KINDS)  # household attributes (place, citizenship) do not drive EM
ANCHOR = "document"  # a shared document number is a match while EM learns what matches look like
EVIDENCE = ("birth_date", "document", "email", "name", "name_dob", "phone")
# Blocking by register size: the more pairs, the stricter the rules, so that the candidates stay
# within what one machine compares in minutes. The Fellegi-Sunter prior falls with the size too, so
# the weak pairs only the wider rules find would not reach a band at that size anyway.
# Wide: each name alone within the birth-year window, or the same date. Medium and strict: both
# names at once (moderate bits within the window; more bits for rows of unknown year, which meet
# every year), or the same full date (keys of sparse filters, such as year-only dates, left out).
WIDE = (
    BlockingRule(("given", "family"), bands=12, band_bits=24),
    BlockingRule(("birth",), bands=16, band_bits=40, years=False),
)
MEDIUM = (
    BlockingRule(("given", "family"), bands=24, band_bits=28, together=True, min_ones=6, unknown=False),
    BlockingRule(("given", "family"), bands=24, band_bits=32, together=True, min_ones=6),
    BlockingRule(("birth",), bands=16, band_bits=40, years=False, min_ones=5),
)
STRICT = (
    BlockingRule(("given", "family"), bands=16, band_bits=32, together=True, min_ones=6, unknown=False),
    BlockingRule(("given", "family"), bands=16, band_bits=40, together=True, min_ones=6),
    BlockingRule(("birth",), bands=16, band_bits=47, years=False, min_ones=6),
)
TIERS = ((10**8, WIDE), (10**11, MEDIUM), (None, STRICT))  # up to that many pairs |A| x |B|
BANDS = Bands(likely=0.99, possible=0.5)
WINDOW = 1  # the birth-year window of the name rule (blocking.candidate_pairs' default)
RANDOM_PAIRS = 500_000
KEEP_ALL = 10**9  # registers of up to this many pairs keep every compared pair
CHUNK_ROWS = 32_768  # rows of A per blocking chunk: few numpy calls, and a chunk's band pairs fit in memory
_SUBCHUNK = 262_144  # pairs compared at a time (their two rows are gathered whole)
_NAMES = [c.field for c in COMPARISONS]


@dataclass(frozen=True)
class Candidate:
    """A pair of rows (``a`` in batch a, ``b`` in batch b) that may be one person.

    ``weight`` is the Fellegi-Sunter match weight (log2 Bayes factor) after all evidence,
    ``probability`` the posterior, ``band`` "likely" or "possible", ``evidence`` the sorted kinds of
    agreement (birth_date, document, email, name, name_dob, phone).
    """

    a: int
    b: int
    weight: float
    probability: float
    band: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class ComparisonModel:
    """The estimated model of one comparison: its levels, closest first, and m and u per level."""

    name: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]


@dataclass(frozen=True)
class LinkResult:
    """Candidates and the figures of a round summary.

    ``pairs_blocked``: candidate pairs after blocking (exact-selector pairs included);
    ``comparisons``: pairs compared field by field (candidates and random pairs); ``prior``: the
    estimated share of matches among all pairs; ``rules``: the blocking rules used (by size);
    ``seconds``: wall-clock time per stage (indexing B's band keys; candidates: blocking and
    comparing A's rows, in parallel; model; selecting).
    """

    candidates: tuple[Candidate, ...]
    pairs_blocked: int
    comparisons: int
    model: tuple[ComparisonModel, ...]
    prior: float
    rules: tuple[BlockingRule, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def by_band(self) -> dict[str, int]:
        """The number of candidates in each band."""
        return {band: sum(c.band == band for c in self.candidates) for band in (LIKELY, POSSIBLE)}


def blocking_rules(na: int, nb: int) -> tuple[BlockingRule, ...]:
    """The blocking rules for registers of ``na`` and ``nb`` persons (see :data:`TIERS`)."""
    return next(rules for most, rules in TIERS if most is None or na * nb <= most)


def encode(features: Sequence[Features], record_ids: Sequence[str], encoder: Encoder) -> EncodedBatch:
    """Encode persons (one row each, in order) for one peer; raises InvalidRequestError for bad input."""
    return encoder.encode(
        [f.fields for f in features],
        record_ids=record_ids,
        birth_years=[f.birth_year for f in features],
    )


def link(
    a: EncodedBatch,
    b: EncodedBatch,
    *,
    blocking_seed: bytes,
    exact: Sequence[tuple[int, int, str]] = (),
    workers: int = 2,
    progress: Progress | None = None,
) -> LinkResult:
    """Link batch ``a`` with batch ``b`` (same layout and epoch) and return the candidates.

    ``exact`` holds (row in a, row in b, selector kind) for each exact selector the two sides share
    (private set intersection), kinds "document", "phone", "email" and "name_dob". ``progress`` is
    called as ``progress(stage, done, total)``. Deterministic for the same inputs. Raises
    InvalidRequestError (``matching_bad_input``) for batches that do not fit together, a row index
    out of range, an unknown kind or fewer than one worker.
    """
    _check(a, b, workers)
    clock = _Clock()
    table = _ExactTable.of(exact, len(a), len(b))
    rules = blocking_rules(len(a), len(b))
    scheme = LshScheme.derive(blocking_seed, a.layout, rules)
    keep = _plausible(len(a) * len(b))
    compared = _compare_candidates(a, b, scheme, table, keep, workers, clock, progress)
    if compared.size == 0:
        return LinkResult((), 0, 0, (), 0.0, rules, clock.seconds)
    model = _fit(a, b, compared, table, blocking_seed, rules, clock)
    missed = _missed(compared, keep, model)
    if missed.any():  # a pattern thought hopeless reaches a band after all: fetch its pairs
        compared = compared.plus(_compare_candidates(a, b, scheme, table, missed, workers, clock, None))
    candidates = _select(a, b, compared, model, clock)
    summary = tuple(
        ComparisonModel(c.field, _labels(c), tuple(map(float, m)), tuple(map(float, u)))
        for c, m, u in zip(model.comparisons, model.m, model.u, strict=True)
    )
    compared_pairs = compared.size + _random_count(a, b)
    return LinkResult(candidates, compared.size, compared_pairs, summary, model.prior, rules, clock.seconds)


def _check(a: EncodedBatch, b: EncodedBatch, workers: int) -> None:
    if a.layout != b.layout or a.epoch != b.epoch:
        raise InvalidRequestError(
            "the two batches must have the same layout and key epoch", code="matching_bad_input"
        )
    missing = sorted(FIELDS - {f.name for f in a.layout.fields})
    if missing:
        raise InvalidRequestError(
            f"the layout lacks the fields {', '.join(missing)} that matching compares",
            code="matching_bad_input",
        )
    if not isinstance(workers, int) or workers < 1:
        raise InvalidRequestError("workers must be at least 1", code="matching_bad_input")


class _Clock:
    """Seconds spent per stage, added up over the chunks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage, self._start = "", 0.0

    def start(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stage:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + now - self._start
        self._stage, self._start = stage, now

    def stop(self) -> None:
        self.start("")


@dataclass(frozen=True)
class _ExactTable:
    """The pairs that share exact selectors, as sorted codes a * |B| + b with a bit per kind."""

    codes: NDArray[np.int64]
    masks: NDArray[np.uint8]
    nb: int

    @classmethod
    def of(cls, exact: Sequence[tuple[int, int, str]], na: int, nb: int) -> _ExactTable:
        bits = {kind: 1 << k for k, kind in enumerate(SELECTOR_KINDS)}
        codes = np.zeros(len(exact), np.int64)
        masks = np.zeros(len(exact), np.uint8)
        for n, (i, j, kind) in enumerate(exact):
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
class _Compared:
    """What comparing the candidates left: the pairs kept (rows, level pattern code, exact-selector
    bits), and the histograms of the patterns of all candidates (``counts``) and of those whose
    birth years the name rules let meet (``meeting``), which is all the model needs."""

    ia: NDArray[np.int32]
    ib: NDArray[np.int32]
    pattern: NDArray[np.uint32]
    exact: NDArray[np.uint8]
    counts: NDArray[np.int64]
    meeting: NDArray[np.int64]

    @property
    def size(self) -> int:
        """The number of candidates compared (kept or not)."""
        return int(self.counts.sum())

    def plus(self, more: _Compared) -> _Compared:
        """These pairs and ``more`` (the histograms are this one's: ``more`` was counted here too)."""
        arrays = (np.concatenate([x, y]) for x, y in zip(self.arrays(), more.arrays(), strict=True))
        ia, ib, pattern, exact = arrays
        return _Compared(ia, ib, pattern, exact, self.counts, self.meeting)

    def arrays(self) -> tuple[NDArray[Any], ...]:
        return self.ia, self.ib, self.pattern, self.exact


def _compare_candidates(
    a: EncodedBatch,
    b: EncodedBatch,
    scheme: LshScheme,
    table: _ExactTable,
    keep: NDArray[np.bool_],
    workers: int,
    clock: _Clock,
    progress: Progress | None,
) -> _Compared:
    """Block and compare, one chunk of A's rows per task, ``workers`` tasks at a time (numpy leaves
    the interpreter lock inside its sorts, searches and bit counts); keep the pairs whose pattern
    ``keep`` marks."""
    clock.start("indexing")
    index = CandidateIndex(b, scheme, window=WINDOW)
    clock.start("candidates")
    starts = range(0, len(a), CHUNK_ROWS)
    parts: list[_Compared] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tasks = pool.map(lambda start: _chunk(a, b, start, index, table, keep), starts)
        for start, part in zip(starts, tasks, strict=True):
            parts.append(part)
            if progress is not None:
                progress("comparing", min(len(a), start + CHUNK_ROWS), len(a))
    clock.stop()
    empty = _compare_codes(a, b, np.zeros(0, np.int64), table, keep)
    ia, ib, pattern, exact = (np.concatenate([x.arrays()[k] for x in [empty, *parts]]) for k in range(4))
    counts = np.sum([p.counts for p in [empty, *parts]], axis=0)
    meeting = np.sum([p.meeting for p in [empty, *parts]], axis=0)
    return _Compared(ia, ib, pattern, exact, counts, meeting)


def _chunk(
    a: EncodedBatch,
    b: EncodedBatch,
    start: int,
    index: CandidateIndex,
    table: _ExactTable,
    keep: NDArray[np.bool_],
) -> _Compared:
    """The candidates of rows start to start + CHUNK_ROWS of A (LSH pairs and selector pairs),
    compared a slice at a time so that the gathered rows stay small."""
    stop = min(len(a), start + CHUNK_ROWS)
    ia, ib = index.pairs(rows(a, start, stop))
    nb = max(1, len(b))
    codes = np.union1d((ia.astype(np.int64) + start) * nb + ib, table.within(start, stop))
    parts = [_compare_codes(a, b, codes[s : s + _SUBCHUNK], table, keep) for s in range(0, codes.shape[0], _SUBCHUNK)]  # fmt: skip
    if not parts:
        return _compare_codes(a, b, codes, table, keep)
    ia_, ib_, pattern, exact = (np.concatenate([x.arrays()[k] for x in parts]) for k in range(4))
    return _Compared(ia_, ib_, pattern, exact, np.sum([p.counts for p in parts], axis=0), np.sum([p.meeting for p in parts], axis=0))  # fmt: skip


def _compare_codes(
    a: EncodedBatch, b: EncodedBatch, codes: NDArray[np.int64], table: _ExactTable, keep: NDArray[np.bool_]
) -> _Compared:
    """Levels of the pairs with codes a * |B| + b; the pairs ``keep`` marks, and the histograms."""
    nb = max(1, len(b))
    ia, ib = (codes // nb).astype(np.intp), (codes % nb).astype(np.intp)
    exact = table.lookup(codes)
    pattern = CODEC.encode(pair_levels(a, b, ia, ib, exact))
    ya, yb = a.years[ia].astype(np.int32), b.years[ib].astype(np.int32)
    meet = (ya == 0) | (yb == 0) | (np.abs(ya - yb) <= WINDOW)
    counts = np.bincount(pattern, minlength=CODEC.size)
    meeting = np.bincount(pattern[meet], minlength=CODEC.size)
    kept = keep[pattern]
    return _Compared(
        ia[kept].astype(np.int32), ib[kept].astype(np.int32), pattern[kept], exact[kept], counts, meeting
    )


def _plausible(pairs: int) -> NDArray[np.bool_]:
    """The level patterns worth keeping the pairs of, while comparing: all of them for registers of
    up to :data:`KEEP_ALL` pairs; beyond, those with some name agreement (not "one name differs" or
    worse), a shared date (or two date items) or a shared selector. The others would need weak
    household agreements to outweigh a prior of about one in the register size; :func:`_missed`
    checks that against the fitted model."""
    if pairs <= KEEP_ALL:
        return np.ones(CODEC.size, np.bool_)
    lv = CODEC.decode(np.arange(CODEC.size, dtype=np.int64))
    name, birth = lv[:, _NAMES.index("name")], lv[:, _NAMES.index("birth")]
    exact = (lv[:, [_NAMES.index(k) for k in EXACT_KINDS]] == 0).any(axis=1)
    return np.asarray(((name >= 0) & (name <= 4)) | ((birth >= 0) & (birth <= 1)) | exact, np.bool_)


def _missed(compared: _Compared, keep: NDArray[np.bool_], model: FellegiSunter) -> NDArray[np.bool_]:
    """The patterns whose pairs were not kept but which the model puts in a band."""
    dropped = np.flatnonzero((compared.counts > 0) & ~keep)
    out = np.zeros(CODEC.size, np.bool_)
    if dropped.size:
        posterior = model.posterior(model.weights(CODEC.decode(dropped.astype(np.int64))))
        out[dropped[posterior >= BANDS.possible]] = True
    return out


def _random_count(a: EncodedBatch, b: EncodedBatch) -> int:
    return min(RANDOM_PAIRS, len(a) * len(b))


def _random_pairs(a: EncodedBatch, b: EncodedBatch, seed: bytes) -> tuple[Index, Index]:
    """Pairs to estimate u from: all pairs of small batches, else a sample drawn from the seed."""
    na, nb = len(a), len(b)
    if na * nb <= RANDOM_PAIRS:
        codes = np.arange(na * nb, dtype=np.int64)
    else:
        rng = np.random.default_rng(np.frombuffer(_digest(seed, b"random pairs"), np.uint64))
        codes = rng.integers(0, na * nb, RANDOM_PAIRS, dtype=np.int64)
    return (codes // nb).astype(np.intp), (codes % nb).astype(np.intp)


def _digest(seed: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(purpose, key=seed, digest_size=32).digest()


def _fit(
    a: EncodedBatch,
    b: EncodedBatch,
    compared: _Compared,
    table: _ExactTable,
    seed: bytes,
    rules: tuple[BlockingRule, ...],
    clock: _Clock,
) -> FellegiSunter:
    """EM over the histogram of the candidates' level patterns. u of rare agreements is counted
    over all pairs (:func:`_census`), of the rest taken from random pairs, twice: the second time
    without the random pairs that the first model takes for matches."""
    clock.start("model")
    na, nb = len(a), len(b)
    present = np.flatnonzero(compared.counts)
    lv, counts = CODEC.decode(present), compared.counts[present]
    census = _census(a, b, compared.meeting[present].astype(np.float64), rules)
    ra, rb = _random_pairs(a, b, seed)
    random_lv = pair_levels(a, b, ra, rb, table.lookup(ra.astype(np.int64) * nb + rb))

    def fit(weights: NDArray[np.float64]) -> FellegiSunter:
        return estimate(
            lv,
            COMPARISONS,
            u=_level_shares(random_lv, weights),
            pairs=na * nb,
            max_prior=min(0.5, min(na, nb) / (na * nb)),
            core=CORE,
            census=census,
            counts=counts,
            anchor=ANCHOR,
        )

    first = fit(np.ones(ra.shape[0]))
    model = fit(1.0 - first.posterior(first.weights(random_lv)))
    clock.stop()
    return model


def _census(a: EncodedBatch, b: EncodedBatch, meeting: NDArray[np.float64], rules: tuple[BlockingRule, ...]) -> dict[str, Census]:  # fmt: skip
    """The agreements that blocking never misses, and among which pairs: a shared selector among the
    pairs where both hold one of its kind; the same full date among the pairs where both have a date
    (the date rule has no year window); one name agreeing (wide rules) or both (the others) among
    the pairs whose birth years the name rules let meet (within the window, or unknown): ``meeting``
    counts those among the candidates of each pattern."""
    out = {kind: Census((0,), _known_pairs(a, b, PRESENCE[kind])) for kind in EXACT_KINDS}
    out["birth"] = Census((0,), _known_pairs(a, b, "birth"))
    levels = NAME_AGREES if rules == WIDE else (0,)  # both names at once: only "both agree" is sure
    out["name"] = Census(levels, int(_meeting(a.years, b.years).sum()), meeting)
    return out


def _known_pairs(a: EncodedBatch, b: EncodedBatch, name: str) -> int:
    return int(a.present(name).sum()) * int(b.present(name).sum())


def _meeting(years: NDArray[np.uint16], other: NDArray[np.uint16]) -> NDArray[np.float64]:
    """For each row, the rows of the other side whose birth year it may meet: within the window, or
    unknown (all of them when its own year is unknown)."""
    hist = np.bincount(other.astype(np.int64), minlength=1 << 16).astype(np.float64)
    unknown, hist[0] = hist[0], 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(hist)])
    code = years.astype(np.int64)
    low, high = np.clip(code - WINDOW, 0, 1 << 16), np.clip(code + WINDOW + 1, 0, 1 << 16)
    return np.where(code == 0, float(other.shape[0]), cumulative[high] - cumulative[low] + unknown)


def _level_shares(lv: NDArray[np.int8], weights: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Weighted level frequencies per comparison, half a pair added to each level."""
    out = []
    for k, c in enumerate(COMPARISONS):
        known = lv[:, k] >= 0
        counts = np.bincount(lv[known, k], weights=weights[known], minlength=c.levels) + 0.5
        out.append(counts / counts.sum())
    return out


def _select(
    a: EncodedBatch, b: EncodedBatch, compared: _Compared, model: FellegiSunter, clock: _Clock
) -> tuple[Candidate, ...]:
    """Pairs in a band, one partner per person (the other side's duplicates excepted)."""
    clock.start("selecting")
    present = np.unique(compared.pattern)
    table = np.zeros(CODEC.size)
    table[present] = model.weights(CODEC.decode(present.astype(np.int64)))
    weight = table[compared.pattern]
    posterior = model.posterior(weight)
    keep = np.flatnonzero((posterior >= BANDS.possible) | (compared.exact != 0))
    ia, ib = compared.ia[keep].astype(np.intp), compared.ib[keep].astype(np.intp)
    weight, posterior = weight[keep], posterior[keep]
    chosen = _one_partner(a, b, ia, ib, weight, posterior, model)
    lv = CODEC.decode(compared.pattern[keep][chosen].astype(np.int64))
    exact = compared.exact[keep][chosen]
    out = [
        Candidate(
            a=int(ia[p]),
            b=int(ib[p]),
            weight=float(weight[p]),
            probability=float(posterior[p]),
            band=LIKELY if posterior[p] >= BANDS.likely else POSSIBLE,
            evidence=_evidence(lv[n], int(exact[n])),
        )
        for n, p in enumerate(chosen)
    ]
    clock.stop()
    return tuple(sorted(out, key=lambda c: (c.a, c.b)))


def _one_partner(
    a: EncodedBatch,
    b: EncodedBatch,
    ia: Index,
    ib: Index,
    weight: NDArray[np.float64],
    posterior: NDArray[np.float64],
    model: FellegiSunter,
) -> Index:
    """Indexes of the pairs kept: greedy one-to-one by falling weight; a losing pair that is itself
    likely stays when the two records of one side that it competes for are likely one person."""
    partner_a: dict[int, int] = {}
    partner_b: dict[int, int] = {}
    losers: list[int] = []
    kept: list[int] = []
    for p in np.argsort(-weight, kind="stable").tolist():
        x, y = int(ia[p]), int(ib[p])
        if x not in partner_a and y not in partner_b:
            partner_a[x], partner_b[y] = y, x
            kept.append(p)
        elif posterior[p] >= BANDS.likely and (x in partner_a) != (y in partner_b):
            losers.append(p)
    if losers:
        kept.extend(_duplicates(a, b, ia, ib, losers, partner_a, partner_b, model))
    return np.asarray(sorted(kept), np.intp)


def _duplicates(
    a: EncodedBatch,
    b: EncodedBatch,
    ia: Index,
    ib: Index,
    losers: list[int],
    partner_a: dict[int, int],
    partner_b: dict[int, int],
    model: FellegiSunter,
) -> list[int]:
    """The losing pairs whose rival record (the partner already taken) is likely the same person."""
    out: list[int] = []
    for side, batch in (("b", b), ("a", a)):
        rows = [p for p in losers if (int(ia[p]) in partner_a) == (side == "b")]
        if not rows:
            continue
        if side == "b":
            x = np.asarray([partner_a[int(ia[p])] for p in rows], np.intp)
            y = ib[rows]
        else:
            x = np.asarray([partner_b[int(ib[p])] for p in rows], np.intp)
            y = ia[rows]
        lv = pair_levels(batch, batch, x, y, np.zeros(len(rows), np.uint8))
        lv[:, [_NAMES.index(k) for k in EXACT_KINDS]] = MISSING  # no PSI ran within one side
        same = model.posterior(model.weights(lv)) >= BANDS.likely
        out.extend(p for p, s in zip(rows, same.tolist(), strict=True) if s)
    return out


def _evidence(lv: NDArray[np.int8], exact: int) -> tuple[str, ...]:
    found = {kind for k, kind in enumerate(SELECTOR_KINDS) if exact >> k & 1}
    if lv[_NAMES.index("name")] == 0:
        found.add("name")
    if lv[_NAMES.index("birth")] == 0:
        found.add("birth_date")
    return tuple(sorted(found))


def _labels(c: Comparison) -> tuple[str, ...]:
    """Level names: the labels, or "Dice >= t" per threshold and "lower"."""
    return c.labels or (*(f"Dice >= {t}" for t in c.thresholds), "lower")
