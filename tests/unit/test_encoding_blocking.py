"""Hamming LSH blocking with birth-year windows: recall on a planted set, windows, joins."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import DEFAULT_LAYOUT, EncodedBatch, Encoder, keys
from protocol.encoding.blocking import DEFAULT_RULES, BlockingRule, LshScheme, all_candidate_pairs, join
from protocol.errors import InvalidRequestError

PAIR_KEY = bytes(range(32))
SEED = keys.subkey(PAIR_KEY, "blocking")


def encode(
    records: list[dict[str, list[str]]], side: str, years: list[int | None] | None = None
) -> EncodedBatch:
    enc = Encoder(
        DEFAULT_LAYOUT, pair_key=PAIR_KEY, noise_key=keys.noise_key(side.encode() * 16, PAIR_KEY), epoch=1
    )
    return enc.encode(records, record_ids=[f"{side}{i}" for i in range(len(records))], birth_years=years)


def typo(word: str, rng: random.Random) -> str:
    """One keying error: a letter dropped, doubled, replaced or two swapped."""
    i = rng.randrange(len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def planted(n: int, seed: int) -> tuple[list[dict[str, list[str]]], list[dict[str, list[str]]], list[int]]:
    """n people on side A; their copies on side B with a typo in one name, half of them swapped."""
    rng = random.Random(seed)

    def name() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))

    a, b, years = [], [], []
    for _ in range(n):
        given_, family, year = name(), name(), rng.randint(1950, 2010)
        date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        a.append({"given": [given_], "family": [family], "birth": [date]})
        g, f = (typo(given_, rng), family) if rng.random() < 0.5 else (given_, typo(family, rng))
        if rng.random() < 0.5:
            g, f = f, g
        b.append({"given": [g], "family": [f], "birth": [date]})
        years.append(year)
    return a, b, years


def test_blocking_recall_on_a_planted_set() -> None:
    people, copies, years = planted(600, seed=3)
    a, b = encode(people, "a", list(years)), encode(copies, "b", list(years))
    scheme = LshScheme.derive(SEED, DEFAULT_LAYOUT)
    ia, ib = all_candidate_pairs(a, b, scheme, window=1)
    found = set(zip(ia.tolist(), ib.tolist(), strict=True))
    recall = sum((i, i) in found for i in range(600)) / 600
    assert recall >= 0.995
    assert len(found) < 0.01 * 600 * 600  # far from all pairs
    assert np.all(np.diff(ia) >= 0)  # sorted by A, unique
    assert len(found) == ia.size


def test_names_alone_find_swapped_names() -> None:
    """Without dates, the name rule still finds a copy whose given and family names are swapped."""
    people, copies, _ = planted(200, seed=4)
    for p in people:
        del p["birth"]
    for c in copies:
        del c["birth"]
    swapped = [{"given": p["family"], "family": p["given"]} for p in people]
    scheme = LshScheme.derive(SEED, DEFAULT_LAYOUT, DEFAULT_RULES[:1])
    ia, ib = all_candidate_pairs(encode(people, "a"), encode(swapped, "b"), scheme)
    found = set(zip(ia.tolist(), ib.tolist(), strict=True))
    assert sum((i, i) in found for i in range(200)) >= 199


def test_birth_year_window_and_unknown_years() -> None:
    person = {"given": ["alexandra"], "family": ["constantinescu"]}
    a = encode([person] * 4, "a", [1990, 1990, None, 1980])
    b = encode([person] * 3, "b", [1991, None, 1993])
    scheme = LshScheme.derive(SEED, DEFAULT_LAYOUT, DEFAULT_RULES[:1])
    ia, ib = all_candidate_pairs(a, b, scheme, window=1)
    found = set(zip(ia.tolist(), ib.tolist(), strict=True))
    # 1990 meets 1991 (window 1) and the unknown year, not 1993; the unknown year meets everything;
    # 1980 meets only the unknown year.
    assert found == {(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 1)}
    wider = set(zip(*[x.tolist() for x in all_candidate_pairs(a, b, scheme, window=3)], strict=True))
    assert (0, 2) in wider and (3, 0) not in wider


def test_rules_without_years_ignore_them() -> None:
    person = {"given": ["ion"], "family": ["popa"], "birth": ["1990-05-01"]}
    a, b = encode([person], "a", [1990]), encode([person], "b", [1970])
    assert all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, DEFAULT_RULES[:1]))[0].size == 0
    assert all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, DEFAULT_RULES[1:]))[0].size == 1


def test_scheme_is_deterministic_per_seed() -> None:
    first = LshScheme.derive(SEED, DEFAULT_LAYOUT)
    again = LshScheme.derive(SEED, DEFAULT_LAYOUT)
    other = LshScheme.derive(keys.subkey(PAIR_KEY, "other"), DEFAULT_LAYOUT)
    assert all(np.array_equal(x, y) for x, y in zip(first.positions, again.positions, strict=True))
    assert not np.array_equal(first.positions[0], other.positions[0])
    for rule, pos in zip(first.rules, first.positions, strict=True):
        assert pos.shape == (rule.bands, rule.band_bits)
        assert all(len(set(band.tolist())) == rule.band_bits for band in pos)  # distinct positions


def test_together_rule_needs_both_names() -> None:
    """Bands over both names find swapped copies as the per-field rule does, but far fewer
    persons who share only a given name."""
    people, _, _ = planted(300, seed=5)
    swapped = [{"given": p["family"], "family": p["given"]} for p in people]
    decoys, _, _ = planted(300, seed=6)
    for p, d in zip(people, decoys, strict=True):
        d["given"] = p["given"]
    a, b = encode(people, "a"), encode(swapped + decoys, "b")
    found = {}
    for together in (True, False):
        rule = BlockingRule(("given", "family"), bands=12, band_bits=40, together=together, years=False)
        ia, ib = all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, [rule]))
        found[together] = set(zip(ia.tolist(), ib.tolist(), strict=True))
    for pairs in found.values():
        assert sum((i, i) in pairs for i in range(300)) >= 297
    decoy_rate = {t: sum((i, 300 + i) in pairs for i in range(300)) / 300 for t, pairs in found.items()}
    assert decoy_rate[False] > 0.95
    assert decoy_rate[True] < 0.5


def test_joint_field_asks_a_name_and_the_date_at_once() -> None:
    """A name band joined with date bits finds a person written with the same date, not a namesake
    born on another day."""
    people, _, _ = planted(200, seed=8)
    namesakes = [{**p, "birth": ["1901-02-03"]} for p in people]
    a, b = encode(people, "a"), encode(people + namesakes, "b")
    rule = BlockingRule(("given", "family"), bands=8, band_bits=20, years=False, joint="birth", joint_bits=20)
    pairs = set(zip(*(x.tolist() for x in all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, [rule]))), strict=True))  # fmt: skip
    assert sum((i, i) in pairs for i in range(200)) >= 198
    assert sum((i, 200 + i) in pairs for i in range(200)) <= 2


def test_keys_with_few_set_bits_match_nothing() -> None:
    """Sparse filters (year-only dates) agree on nearly every sampled bit; min_ones leaves them out."""
    years = [{"birth": ["1990"]}] * 20
    a, b = encode(years, "a"), encode(years, "b")
    loose = BlockingRule(("birth",), bands=16, band_bits=40, years=False)
    strict = BlockingRule(("birth",), bands=16, band_bits=40, years=False, min_ones=5)
    assert all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, [loose]))[0].size > 0
    assert all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, [strict]))[0].size == 0


def test_unknown_years_meet_every_year_unless_the_rule_says_not() -> None:
    person = [{"given": ["olena"], "family": ["kovalenko"]}]
    a, b = encode(person, "a", [None]), encode(person, "b", [1998])
    for unknown, found in ((True, 1), (False, 0)):
        rule = BlockingRule(("given", "family"), bands=8, band_bits=24, together=True, unknown=unknown)
        assert all_candidate_pairs(a, b, LshScheme.derive(SEED, DEFAULT_LAYOUT, [rule]))[0].size == found


def test_positions_of_a_rule_without_joint_field_are_unchanged() -> None:
    """part 0 of the nonce is the nonce of earlier versions (SPEC-encoding 4.1)."""
    plain = LshScheme.derive(SEED, DEFAULT_LAYOUT, DEFAULT_RULES[:1])
    joint = LshScheme.derive(
        SEED, DEFAULT_LAYOUT, [BlockingRule(("given", "family"), 12, 24, joint="birth", joint_bits=8)]
    )
    assert np.array_equal(plain.positions[0], joint.positions[0])
    assert joint.joint[0].shape == (12, 8) and int(joint.joint[0].max()) < 256


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-1, 5), max_size=30), st.lists(st.integers(-1, 5), max_size=30))
def test_join_equals_naive(keys_a: list[int], keys_b: list[int]) -> None:
    ia, ib = join(np.asarray(keys_a, np.int64), np.asarray(keys_b, np.int64))
    want = {(i, j) for i, x in enumerate(keys_a) for j, y in enumerate(keys_b) if x == y and x >= 0}
    got = list(zip(ia.tolist(), ib.tolist(), strict=True))
    assert set(got) == want and len(got) == len(want)


@pytest.mark.parametrize(
    "call",
    [
        lambda: BlockingRule((), bands=4, band_bits=20),
        lambda: BlockingRule(("given", "family", "birth"), bands=4, band_bits=20),
        lambda: BlockingRule(("given",), bands=0, band_bits=20),
        lambda: BlockingRule(("given",), bands=4, band_bits=48),
        lambda: BlockingRule(("given",), bands=4, band_bits=40, joint="birth", joint_bits=8),
        lambda: BlockingRule(("given",), bands=4, band_bits=20, joint="birth"),
        lambda: BlockingRule(("given",), bands=4, band_bits=20, min_ones=21),
        lambda: LshScheme.derive(b"short", DEFAULT_LAYOUT),
        lambda: LshScheme.derive(SEED, DEFAULT_LAYOUT, [BlockingRule(("given", "birth"), 4, 20)]),
        lambda: LshScheme.derive(SEED, DEFAULT_LAYOUT, [BlockingRule(("nickname",), 4, 20)]),
        lambda: list(all_candidate_pairs(encode([], "a"), encode([], "b"), LshScheme.derive(SEED, DEFAULT_LAYOUT), window=-1)),
    ],
    ids=["no_fields", "three_fields", "no_bands", "wide_band", "joint_too_wide", "joint_no_bits", "min_ones", "short_seed", "lengths_differ", "unknown_field", "bad_window"],
)  # fmt: skip
def test_bad_blocking_inputs(call: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call()  # type: ignore[operator]  # each case is a zero-argument callable
    assert info.value.code in {"encoding_bad_blocking", "encoding_bad_key", "encoding_unknown_field"}
