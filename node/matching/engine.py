"""Linkage of two encoded batches: blocking, comparison, Fellegi-Sunter scoring with EM, bands.

The comparing party may be either node of a pair (direct mode) or a third member that holds no key
(linkage-unit mode), so :func:`link` takes only encoded batches, the blocking seed and the pairs
that private set intersection found; it never sees a name. Nothing it raises or logs carries row
content: batches hold none, and messages name only counts and codes.

The pipeline (protocol/SPEC.md sections 11.4 and 11.6):

1. Candidates: Hamming-LSH blocking, with rules that grow stricter with |A| x |B| (:data:`TIERS`),
   plus every pair that shares an exact selector; blocked and compared one chunk of A's rows at a
   time, in threads. Each pair becomes a level pattern (protocol.encoding.comparisons); the model
   needs only the histogram of patterns, and beyond :data:`KEEP_ALL` pairs only the pairs of
   plausible patterns are kept (a dropped pattern that reaches a band after all is fetched again).
2. Model (protocol.encoding.model): m and the share of matches by EM over the histogram; u of rare
   agreements counted over all pairs, of the rest from random pairs; corrections for attributes
   that come with the names.
3. Bands from the posterior: "likely" and "possible"; a pair that shares an exact selector which
   the model counts as strong evidence is at least "possible", whatever its names say (a
   recruiter's phone in two countries' files).
4. One partner per person, by falling weight; a losing pair stays only if it is itself likely and
   the two records it competes for look like one person written twice (the other side's duplicate).
"""

from __future__ import annotations

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
from protocol.encoding.comparisons import CODEC, COMPARISONS, EXACT_KINDS, FIELDS, NAME_AGREES, pair_levels
from protocol.encoding.model import RANDOM_PAIRS, SELECTOR_KINDS, LinkModel, SelectorPairs, fit
from protocol.encoding.scoring import LIKELY, MISSING, POSSIBLE, Bands, Comparison
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
Progress = Callable[[str, int, int], None]

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
    ``interactions``: (attribute, name level, bits) added to the weight of pairs at that name level
    whose attribute agrees (protocol.encoding.model.LinkModel);
    ``seconds``: wall-clock time per stage (indexing B's band keys; candidates: blocking and
    comparing A's rows, in parallel; model; selecting).
    """

    candidates: tuple[Candidate, ...]
    pairs_blocked: int
    comparisons: int
    model: tuple[ComparisonModel, ...]
    prior: float
    rules: tuple[BlockingRule, ...]
    interactions: tuple[tuple[str, int, float], ...] = ()
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
    selectors = SelectorPairs.of(exact, len(a), len(b))
    rules = blocking_rules(len(a), len(b))
    scheme = LshScheme.derive(blocking_seed, a.layout, rules)
    keep = _plausible(len(a) * len(b))
    compared = _compare_candidates(a, b, scheme, selectors, keep, workers, clock, progress)
    if compared.size == 0:
        return LinkResult((), 0, 0, (), 0.0, rules, (), clock.seconds)
    clock.start("model")
    name_census = NAME_AGREES if rules == WIDE else (0,)  # both names at once: only "both agree" is sure
    model = fit(a, b, compared.counts, compared.meeting, selectors, seed=blocking_seed, name_census=name_census, window=WINDOW)  # fmt: skip
    missed = _missed(compared, keep, model)
    if missed.any():  # a pattern thought hopeless reaches a band after all: fetch its pairs
        compared = compared.plus(_compare_candidates(a, b, scheme, selectors, missed, workers, clock, None))
    candidates = _select(a, b, compared, model, clock)
    compared_pairs = compared.size + min(RANDOM_PAIRS, len(a) * len(b))
    summary = tuple(
        ComparisonModel(c.field, _labels(c), tuple(map(float, m)), tuple(map(float, u)))
        for c, m, u in zip(model.model.comparisons, model.model.m, model.model.u, strict=True)
    )
    interactions = tuple((name, level, bits) for (name, level), bits in sorted(model.bits.items()))
    return LinkResult(
        candidates,
        compared.size,
        compared_pairs,
        summary,
        model.model.prior,
        rules,
        interactions,
        clock.seconds,
    )


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
    selectors: SelectorPairs,
    keep: NDArray[np.bool_],
    workers: int,
    clock: _Clock,
    progress: Progress | None,
) -> _Compared:
    """Block and compare, one chunk of A's rows per task, ``workers`` tasks at a time (numpy leaves
    the interpreter lock inside its sorts, searches and bit counts); keep the pairs whose pattern
    ``keep`` marks."""
    clock.start("indexing")
    index = CandidateIndex(b, scheme, window=WINDOW, workers=workers)
    clock.start("candidates")
    starts = range(0, len(a), CHUNK_ROWS)
    parts: list[_Compared] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tasks = pool.map(lambda start: _chunk(a, b, start, index, selectors, keep), starts)
        for start, part in zip(starts, tasks, strict=True):
            parts.append(part)
            if progress is not None:
                progress("comparing", min(len(a), start + CHUNK_ROWS), len(a))
    clock.stop()
    return _joined(parts or [_compare_codes(a, b, np.zeros(0, np.int64), selectors, keep)])


def _chunk(
    a: EncodedBatch,
    b: EncodedBatch,
    start: int,
    index: CandidateIndex,
    selectors: SelectorPairs,
    keep: NDArray[np.bool_],
) -> _Compared:
    """The candidates of rows start to start + CHUNK_ROWS of A (LSH pairs and selector pairs),
    compared a slice at a time so that the gathered rows stay small."""
    stop = min(len(a), start + CHUNK_ROWS)
    ia, ib = index.pairs(rows(a, start, stop))
    nb = max(1, len(b))
    codes = np.union1d((ia.astype(np.int64) + start) * nb + ib, selectors.within(start, stop))
    slices = range(0, max(1, codes.shape[0]), _SUBCHUNK)
    return _joined([_compare_codes(a, b, codes[s : s + _SUBCHUNK], selectors, keep) for s in slices])


def _joined(parts: Sequence[_Compared]) -> _Compared:
    """One of several (at least one): the pairs one after the other, the histograms added."""
    ia, ib, pattern, exact = (np.concatenate([p.arrays()[k] for p in parts]) for k in range(4))
    counts = np.sum([p.counts for p in parts], axis=0)
    return _Compared(ia, ib, pattern, exact, counts, np.sum([p.meeting for p in parts], axis=0))


def _compare_codes(
    a: EncodedBatch,
    b: EncodedBatch,
    codes: NDArray[np.int64],
    selectors: SelectorPairs,
    keep: NDArray[np.bool_],
) -> _Compared:
    """Levels of the pairs with codes a * |B| + b; the pairs ``keep`` marks, and the histograms."""
    nb = max(1, len(b))
    ia, ib = (codes // nb).astype(np.intp), (codes % nb).astype(np.intp)
    exact = selectors.lookup(codes)
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


def _missed(compared: _Compared, keep: NDArray[np.bool_], model: LinkModel) -> NDArray[np.bool_]:
    """The patterns whose pairs were not kept but which the model puts in a band."""
    dropped = np.flatnonzero((compared.counts > 0) & ~keep)
    out = np.zeros(CODEC.size, np.bool_)
    if dropped.size:
        posterior = model.posterior(model.weights(CODEC.decode(dropped.astype(np.int64))))
        out[dropped[posterior >= BANDS.possible]] = True
    return out


def _select(
    a: EncodedBatch, b: EncodedBatch, compared: _Compared, model: LinkModel, clock: _Clock
) -> tuple[Candidate, ...]:
    """Pairs in a band, one partner per person (the other side's duplicates excepted)."""
    clock.start("selecting")
    present = np.unique(compared.pattern)
    by_pattern = np.zeros(CODEC.size)
    by_pattern[present] = model.weights(CODEC.decode(present.astype(np.int64)))
    weight = by_pattern[compared.pattern]
    posterior = model.posterior(weight)
    strong = np.zeros(CODEC.size, np.bool_)
    strong[present] = model.strong_selector(CODEC.decode(present.astype(np.int64)))
    keep = np.flatnonzero((posterior >= BANDS.possible) | strong[compared.pattern])
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
    model: LinkModel,
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
    model: LinkModel,
) -> list[int]:
    """The losing pairs whose rival record (the partner already taken) is likely the same person."""
    out: list[int] = []
    for side, batch in (("b", b), ("a", a)):
        pairs = [p for p in losers if (int(ia[p]) in partner_a) == (side == "b")]
        if not pairs:
            continue
        if side == "b":
            x = np.asarray([partner_a[int(ia[p])] for p in pairs], np.intp)
            y = ib[pairs]
        else:
            x = np.asarray([partner_b[int(ib[p])] for p in pairs], np.intp)
            y = ia[pairs]
        lv = pair_levels(batch, batch, x, y, np.zeros(len(pairs), np.uint8))
        lv[:, [_NAMES.index(k) for k in EXACT_KINDS]] = MISSING  # no PSI ran within one side
        same = model.posterior(model.weights(lv)) >= BANDS.likely
        out.extend(p for p, s in zip(pairs, same.tolist(), strict=True) if s)
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
