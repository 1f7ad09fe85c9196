"""Fellegi-Sunter scoring: levels, EM on simulated agreement vectors, weights, bands, one-to-one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import DEFAULT_LAYOUT, Encoder, keys, scoring
from protocol.encoding.scoring import Bands, Comparison, FellegiSunter
from protocol.errors import InvalidRequestError

COMPARISONS = (Comparison("given"), Comparison("family"), Comparison("birth", (0.9, 0.5)))
TRUE_M = [
    np.array([0.80, 0.10, 0.06, 0.04]),
    np.array([0.85, 0.08, 0.04, 0.03]),
    np.array([0.90, 0.07, 0.03]),
]
TRUE_U = [
    np.array([0.01, 0.03, 0.10, 0.86]),
    np.array([0.005, 0.02, 0.075, 0.90]),
    np.array([0.002, 0.05, 0.948]),
]


def simulate(n: int, p: float, seed: int, missing: float = 0.05) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """Levels drawn from the true m (matches) or u (non-matches), with some fields missing."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < p
    lv = np.empty((n, len(COMPARISONS)), np.int8)
    for k in range(len(COMPARISONS)):
        lv[is_match, k] = rng.choice(len(TRUE_M[k]), size=is_match.sum(), p=TRUE_M[k])
        lv[~is_match, k] = rng.choice(len(TRUE_U[k]), size=(~is_match).sum(), p=TRUE_U[k])
        lv[rng.random(n) < missing, k] = scoring.MISSING
    return lv, is_match


def test_em_recovers_known_m_and_u() -> None:
    lv, is_match = simulate(200_000, 0.05, seed=1)
    model = scoring.estimate(lv, COMPARISONS)
    assert model.converged
    assert abs(model.prior - is_match.mean()) < 0.005
    for k in range(len(COMPARISONS)):
        np.testing.assert_allclose(model.m[k], TRUE_M[k], atol=0.02)
        np.testing.assert_allclose(model.u[k], TRUE_U[k], atol=0.01)


def test_em_with_fixed_u_over_all_pairs() -> None:
    """u from random pairs and the number of all pairs: m and the population share come back,
    even though only the pairs blocking kept (all matches, few non-matches) are given."""
    lv, is_match = simulate(400_000, 0.01, seed=2)
    kept = is_match | (lv[:, 0] <= 1) | (lv[:, 1] <= 1)  # "blocking": names agree, or a match
    random_pairs, _ = simulate(100_000, 0.0, seed=3)
    u = scoring.u_from_levels(random_pairs, COMPARISONS)
    model = scoring.estimate(lv[kept], COMPARISONS, u=u, pairs=lv.shape[0], max_prior=0.05)
    assert abs(model.prior - is_match.mean()) < 0.001
    for k in range(len(COMPARISONS)):
        np.testing.assert_allclose(model.m[k], TRUE_M[k], atol=0.03)


def test_a_histogram_of_patterns_gives_the_same_model() -> None:
    lv, _ = simulate(50_000, 0.05, seed=5)
    patterns, counts = np.unique(lv, axis=0, return_counts=True)
    u = scoring.u_from_levels(simulate(20_000, 0.0, seed=6)[0], COMPARISONS)
    whole = scoring.estimate(lv, COMPARISONS, u=u, pairs=200_000, max_prior=0.1)
    histogram = scoring.estimate(patterns, COMPARISONS, u=u, pairs=200_000, max_prior=0.1, counts=counts)
    assert histogram.prior == pytest.approx(whole.prior)
    for x, y in zip(whole.m, histogram.m, strict=True):
        np.testing.assert_allclose(x, y)


def test_census_counts_a_rare_agreement_over_all_pairs() -> None:
    """Blocking keeps every pair whose given name agrees; u of that level is counted over all pairs,
    not taken from a (here deliberately wrong) sample."""
    lv, is_match = simulate(400_000, 0.01, seed=7, missing=0.0)
    kept = is_match | (lv[:, 0] == 0)
    wrong_u = [np.full(4, 0.25), *scoring.u_from_levels(simulate(100_000, 0.0, seed=8)[0], COMPARISONS)[1:]]
    census = {"given": scoring.Census((0,), lv.shape[0])}
    model = scoring.estimate(
        lv[kept], COMPARISONS, u=wrong_u, pairs=lv.shape[0], max_prior=0.05, census=census
    )
    truth = ((lv[:, 0] == 0) & ~is_match).sum() / (~is_match).sum()
    assert model.u[0][0] == pytest.approx(truth, rel=0.1)
    assert model.u[0][1:].sum() == pytest.approx(1 - model.u[0][0])
    assert abs(model.prior - is_match.mean()) < 0.002


def test_labelled_comparisons_count_their_levels() -> None:
    assert Comparison("name", (), labels=("same", "close", "other")).levels == 3
    for bad in (
        lambda: Comparison("x", (0.5,), labels=("a", "b")),
        lambda: Comparison("x", (), labels=("a",)),
    ):
        with pytest.raises(InvalidRequestError):
            bad()


def test_em_puts_the_classes_back_when_started_upside_down() -> None:
    lv, _ = simulate(100_000, 0.1, seed=4)
    model = scoring.estimate(lv, COMPARISONS, prior=0.95, max_prior=0.99)
    assert all(m[0] > u[0] for m, u in zip(model.m, model.u, strict=True))
    assert model.prior < 0.2


def test_em_on_degenerate_input_stays_finite() -> None:
    lv = np.zeros((50, 3), np.int8)
    model = scoring.estimate(lv, COMPARISONS)
    for m, u in zip(model.m, model.u, strict=True):
        assert np.all((m > 0) & (m <= 1)) and np.all((u > 0) & (u <= 1))
    assert np.all(np.isfinite(model.weights(lv)))
    assert np.all(np.isfinite(scoring.estimate(np.full((5, 3), -1, np.int8), COMPARISONS).weights(lv)))


def test_weights_fall_with_the_level() -> None:
    """Pool-adjacent-violators: an estimate where a looser level weighs more is evened out."""
    m = np.array([0.5, 0.3, 0.15, 0.05])
    u = np.array([0.01, 0.002, 0.1, 0.888])  # level 1 would weigh more than level 0
    pooled = scoring._monotone(m, u)
    w = np.log2(pooled / u)
    assert np.all(np.diff(w) <= 1e-12)
    assert pooled.sum() == pytest.approx(m.sum())
    assert w[0] == pytest.approx(w[1])


def test_levels_and_missing() -> None:
    sims = np.array([[1.0, 0.9, np.nan], [0.86, 0.2, 0.95], [0.7, 0.85, 0.5]], np.float32)
    lv = scoring.levels(sims, COMPARISONS)
    assert lv.tolist() == [[0, 1, -1], [1, 3, 0], [2, 1, 1]]


def model(weights: list[list[float]], prior: float = 0.01) -> FellegiSunter:
    u = tuple(np.full(len(w), 1 / len(w)) for w in weights)
    m = tuple(uk * np.exp2(np.asarray(w)) for uk, w in zip(u, weights, strict=True))
    return FellegiSunter(COMPARISONS[: len(weights)], m, u, prior, 1, True)


def test_weights_sum_log_ratios_and_skip_missing() -> None:
    fs = model([[3.0, 1.0, -1.0, -4.0], [5.0, 2.0, 0.0, -3.0]])
    lv = np.array([[0, 0], [3, -1], [-1, -1]], np.int8)
    assert fs.weights(lv).tolist() == [8.0, -4.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-40, 40), min_size=2, max_size=50),
    st.floats(1e-6, 0.5),
    st.floats(0.01, 0.99).flatmap(lambda p: st.tuples(st.just(p), st.floats(p, 0.999))),
)
def test_bands_are_monotone_in_weight(
    weights: list[float], prior: float, thresholds: tuple[float, float]
) -> None:
    fs = model([[0.0]], prior)
    ordered = np.sort(np.asarray(weights))
    posterior = fs.posterior(ordered)
    assert np.all(np.diff(posterior) >= 0)
    rank = {scoring.UNLIKELY: 0, scoring.POSSIBLE: 1, scoring.LIKELY: 2}
    bands = Bands(likely=thresholds[1], possible=thresholds[0]).assign(posterior)
    assert np.all(np.diff([rank[str(b)] for b in bands]) >= 0)


def test_swapped_names_score_as_straight_ones() -> None:
    pair_key = bytes(range(32))
    enc = Encoder(DEFAULT_LAYOUT, pair_key=pair_key, noise_key=keys.noise_key(b"s" * 32, pair_key), epoch=1)
    a = enc.encode([{"given": ["olena"], "family": ["kovalenko"], "birth": ["1998-03-07"]}], record_ids=["a"])
    b = enc.encode(
        [
            {"given": ["kovalenko"], "family": ["olena"], "birth": ["1998-03-07"]},
            {"given": ["olena"], "family": ["kovalenko"]},
        ],
        record_ids=["b", "c"],
    )
    comparisons = scoring.DEFAULT_COMPARISONS
    lv = scoring.levels(
        scoring.similarities(a, b, np.array([0, 0]), np.array([0, 1]), comparisons), comparisons
    )
    assert lv[0].tolist()[:3] == [0, 0, 0]
    assert lv[1].tolist() == [0, 0, -1, -1, -1]


def test_one_to_one_keeps_the_heaviest_pairs() -> None:
    ia, ib = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 1])
    keep = scoring.one_to_one(ia, ib, np.array([10.0, 9.0, 8.0, 2.0, 5.0]))
    assert keep.tolist() == [True, False, False, False, True]  # (2, 1) at 5 comes before (1, 1) at 2


def test_frequency_adjustment_favours_rare_names() -> None:
    fs = model([[6.0, 2.0, 0.0, -3.0]])
    # A's person 0 agrees at level 0 with three persons of B (a common name); person 1 with one.
    ia, ib = np.array([0, 0, 0, 1]), np.array([0, 1, 2, 3])
    lv = np.zeros((4, 1), np.int8)
    w = scoring.frequency_adjusted(fs, lv, ia, ib, sizes=(10, 10), fields=("given",))
    assert w[3] > w[0] == w[1] == w[2]


@pytest.mark.parametrize(
    "call",
    [
        lambda: Comparison("given", (0.7, 0.9)),
        lambda: Comparison("given", ()),
        lambda: Comparison("given", (1.5,)),
        lambda: Bands(likely=0.5, possible=0.9),
        lambda: scoring.estimate(np.zeros((3, 2), np.int8), COMPARISONS),
        lambda: scoring.estimate(np.zeros((0, 3), np.int8), COMPARISONS),
        lambda: scoring.estimate(np.zeros((3, 3), np.int8), COMPARISONS, pairs=2),
        lambda: scoring.estimate(np.zeros((3, 3), np.int8), COMPARISONS, max_prior=1.0),
    ],
    ids=["rising_thresholds", "no_thresholds", "threshold_above_one", "bands_reversed", "columns", "no_rows", "pairs_too_few", "cap"],
)  # fmt: skip
def test_bad_model_inputs(call: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call()  # type: ignore[operator]  # each case is a zero-argument callable
    assert info.value.code == "encoding_bad_model"


def test_a_rare_level_a_sample_missed_keeps_what_the_candidates_show() -> None:
    """The sample of random pairs saw "one name close" four times too rarely (a handful of hits in
    500,000 pairs is noise), so that level weighed two bits too much: EM took the namesakes at it
    for matches and settled on "same name", at nine times the true share of matches. The
    candidates, some of all the pairs, show at least as many non-matches at the level."""
    comparisons = (
        Comparison("name", (), labels=("agree", "close", "differ")),
        Comparison("birth", (), labels=("same date", "same year", "years one apart", "other")),
        Comparison("document", (), labels=("shared", "none shared")),
    )
    pairs, matches, with_document = 10**10, 10_000, 0.3
    m = [np.array([0.85, 0.12, 0.03]), np.array([0.75, 0.2, 0.03, 0.02]), np.array([0.999, 0.001])]
    u_name, u_birth = np.array([1e-5, 4e-6, 1.0]), np.array([5e-5, 0.02, 0.04, 0.94])
    patterns, counts = [], []
    for name, birth, document in itertools.product(range(3), range(4), (scoring.MISSING, 0, 1)):
        if document == scoring.MISSING:
            held_m = held_u = 1 - with_document
        else:
            held_m, held_u = with_document * m[2][document], with_document * (document == 1)
        blocked = name < 2 or birth == 0  # names that agree or are close, or the same date
        non_matches = pairs * u_name[name] * u_birth[birth] * held_u if blocked else 0.0
        patterns.append((name, birth, document))
        counts.append(round(matches * m[0][name] * m[1][birth] * held_m + non_matches))
    sampled = [np.array([1e-5, 1e-6, 1 - 1.1e-5]), u_birth, np.array([1e-10, 1 - 1e-10])]
    model = scoring.estimate(
        np.array(patterns, np.int8), comparisons, u=sampled, pairs=pairs, max_prior=1e-5,
        counts=np.array(counts, np.int64), anchor="document", census={"name": scoring.Census((0,), pairs)},
    )  # fmt: skip
    assert model.prior * pairs == pytest.approx(matches, rel=0.05)
    assert model.u[0][1] == pytest.approx(u_name[1], rel=0.05)
    np.testing.assert_allclose(model.m[0], m[0], atol=0.02)


def test_census_levels_are_counted_and_the_others_never_fall_below_the_candidates() -> None:
    census = scoring.Census((0,), pairs=100)
    column = np.array([0, 1, 2], np.int8)
    sampled = np.array([0.25, 0.25, 0.5])  # level 1 seen too seldom: the candidates hold 50 of 100
    u = census.u(column, np.array([10.0, 50.0, 0.0]), sampled, non_match_share=1.0, pseudo=0.5)
    np.testing.assert_allclose(u, [0.105, 0.5, 0.395])
    plenty = census.u(column, np.array([10.0, 5.0, 0.0]), sampled, non_match_share=1.0, pseudo=0.5)
    np.testing.assert_allclose(plenty, [0.105, 0.895 / 3, 0.895 * 2 / 3])
