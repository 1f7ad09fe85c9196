"""node.matching.engine: encode persons, link two encoded batches, bands and evidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import nacl.public
import numpy as np
import pytest

from node.matching.engine import EVIDENCE, Candidate, LinkResult, encode, link
from node.matching.features import Features, features, one_per_person
from node.services.synth import generate_federation
from protocol.encoding import DEFAULT_LAYOUT, EncodedBatch, Encoder, Layout, keys
from protocol.errors import InvalidRequestError

PRIVATE = {side: nacl.public.PrivateKey(bytes([n]) * 32) for side, n in (("ua", 3), ("nl", 5))}
PAIR_KEY = keys.pair_key(
    bytes(PRIVATE["ua"]), bytes(PRIVATE["nl"].public_key), node_ids=("ukr-npu", "nld-police"), epoch=1
)
SEED = keys.subkey(PAIR_KEY, "blocking")
Row = Mapping[str, Any]

# Persons written by clerks on each side: (id, row in Ukraine, row in the Netherlands).
PAIRS: list[tuple[str, Row, Row]] = [
    (
        "cyrillic",
        {
            "prs_FirstName": "Олена",
            "prs_SecondName": "Коваленко",
            "prs_Birthdate": "1998-03-07",
            "prs_Citizenship": ["UKR"],
        },
        {
            "prs_FirstName": "Olena",
            "prs_SecondName": "Kovalenko",
            "prs_Birthdate": "1998-03-07",
            "prs_Citizenship": ["UKR"],
        },
    ),
    (
        "arabic",
        {
            "prs_FirstName": "مريم",
            "prs_SecondName": "الحسيني",
            "prs_Birthdate": "2001-11-23",
            "prs_Citizenship": ["SYR"],
        },
        {
            "prs_FirstName": "Mariam",
            "prs_SecondName": "Al-Husseini",
            "prs_Birthdate": "2001-11-23",
            "prs_Citizenship": ["SYR"],
        },
    ),
    (
        "typo",
        {
            "prs_FirstName": "Svitlana",
            "prs_SecondName": "Yaremchuk",
            "prs_Birthdate": "1987-06-19",
            "prs_Gender": "Feminine",
        },
        {
            "prs_FirstName": "Svitlana",
            "prs_SecondName": "Yaremchku",
            "prs_Birthdate": "1987-06-19",
            "prs_Gender": "Feminine",
        },
    ),
    (
        "recruiter",  # only the phone number is shared; the names have nothing in common
        {"prs_FirstName": "Bohdan", "prs_SecondName": "Tkachuk", "prs_MobilePhone": "+380501112233"},
        {"prs_FirstName": "Ruslan", "prs_SecondName": "Moroz", "prs_MobilePhone": "+380501112233"},
    ),
    (
        "document",
        {
            "prs_FirstName": "Iryna",
            "prs_SecondName": "Savchuk",
            "prs_IdentityNumber": "FE123456",
            "prs_IdentityCountry": "UKR",
        },
        {
            "prs_FirstName": "Irina",
            "prs_SecondName": "Savchuk",
            "prs_IdentityNumber": "FE 123456",
            "prs_IdentityCountry": "UKR",
        },
    ),
]
UNRELATED: tuple[Row, Row] = (
    {"prs_FirstName": "Taras", "prs_SecondName": "Hnatyshyn", "prs_Birthdate": "1969-02-11"},
    {"prs_FirstName": "Willemijn", "prs_SecondName": "Oosterhuis", "prs_Birthdate": "2004-09-30"},
)


def batch(people: Sequence[Row], region: str, side: str) -> tuple[EncodedBatch, list[Features]]:
    found = [features(p, default_region=region) for p in people]
    noise = keys.noise_key(side.encode() * 16, PAIR_KEY)
    encoder = Encoder(DEFAULT_LAYOUT, pair_key=PAIR_KEY, noise_key=noise, epoch=1)
    return encode(found, [f"{side}-{i}" for i in range(len(people))], encoder), found


def exact_pairs(fa: Sequence[Features], fb: Sequence[Features]) -> list[tuple[int, int, str]]:
    """What private set intersection would report: every selector both sides hold."""
    where: dict[bytes, list[int]] = {}
    for j, f in enumerate(fb):
        for s in f.selectors:
            where.setdefault(s.value, []).append(j)
    return sorted(
        {(i, j, s.kind) for i, f in enumerate(fa) for s in f.selectors for j in where.get(s.value, ())}
    )


@cache
def world(size: int = 500) -> tuple[list[Row], list[Row]]:
    """Synthetic registers (the background EM learns from) with the persons above at their end."""
    fed = generate_federation(["UKR", "NLD"], size, seed=7, overlap=0.3, difficulty="scripts")
    ua = [*one_per_person(fed["UKR"]), *(p[1] for p in PAIRS), UNRELATED[0]]
    nl = [*one_per_person(fed["NLD"]), *(p[2] for p in PAIRS), UNRELATED[1]]
    return ua, nl


@cache
def linked(size: int = 500) -> tuple[LinkResult, int, int]:
    ua, nl = world(size)
    (a, fa), (b, fb) = batch(ua, "UKR", "ua"), batch(nl, "NLD", "nl")
    return link(a, b, blocking_seed=SEED, exact=exact_pairs(fa, fb)), len(ua), len(nl)


def candidate(name: str) -> Candidate | None:
    result, na, nb = linked()
    k = [p[0] for p in PAIRS].index(name)
    row_a, row_b = na - len(PAIRS) - 1 + k, nb - len(PAIRS) - 1 + k
    return next((c for c in result.candidates if (c.a, c.b) == (row_a, row_b)), None)


@pytest.mark.parametrize("name", ["cyrillic", "arabic", "typo"])
def test_the_same_person_across_scripts_and_typos_is_likely(name: str) -> None:
    found = candidate(name)
    assert found is not None and found.band == "likely"
    assert found.probability >= 0.99 and found.weight > 0
    assert "birth_date" in found.evidence


def test_cross_script_names_agree() -> None:
    found = candidate("cyrillic")
    assert found is not None and {"name", "name_dob"} <= set(found.evidence)


def test_a_shared_phone_alone_is_a_candidate() -> None:
    found = candidate("recruiter")
    assert found is not None and found.band in ("likely", "possible")
    assert found.evidence == ("phone",)


def test_a_shared_document_with_agreeing_names_is_likely() -> None:
    found = candidate("document")
    assert found is not None and found.band == "likely" and "document" in found.evidence


def test_unrelated_people_are_not_candidates() -> None:
    result, na, nb = linked()
    assert all((c.a, c.b) != (na - 1, nb - 1) for c in result.candidates)
    assert all(c.a != na - 1 for c in result.candidates)


def test_each_person_has_one_partner() -> None:
    result, _, _ = linked()
    assert len({c.a for c in result.candidates}) == len(result.candidates)
    assert len({c.b for c in result.candidates}) == len(result.candidates)


def test_figures_for_the_round_summary() -> None:
    result, na, nb = linked()
    assert 0 < result.pairs_blocked < na * nb and result.comparisons > result.pairs_blocked
    assert 0 < result.prior < 1
    assert {m.name for m in result.model} >= {"name", "birth", "document", "phone", "email"}
    for m in result.model:
        assert len(m.levels) == len(m.m) == len(m.u) and abs(sum(m.m) - 1) < 1e-6 and abs(sum(m.u) - 1) < 1e-6
    assert {"indexing", "candidates", "model", "selecting"} <= set(result.seconds)
    assert result.by_band()["likely"] > 0
    assert all(
        c.evidence == tuple(sorted(c.evidence)) and set(c.evidence) <= set(EVIDENCE)
        for c in result.candidates
    )


def test_linking_is_deterministic() -> None:
    ua, nl = world()
    (a, fa), (b, fb) = batch(ua, "UKR", "ua"), batch(nl, "NLD", "nl")
    again = link(a, b, blocking_seed=SEED, exact=exact_pairs(fa, fb), workers=1)
    result, _, _ = linked()
    assert again.candidates == result.candidates and again.prior == result.prior


def test_small_registers_still_link() -> None:
    """50 persons a side: EM has little to learn from, the pairs are still found."""
    ua, nl = world()
    small_a, small_b = ua[:45] + ua[-6:], nl[:45] + nl[-6:]
    (a, fa), (b, fb) = batch(small_a, "UKR", "ua"), batch(small_b, "NLD", "nl")
    result = link(a, b, blocking_seed=SEED, exact=exact_pairs(fa, fb))
    pairs = {(c.a, c.b): c for c in result.candidates}
    for k in range(5):
        assert (45 + k, 45 + k) in pairs
    assert pairs[(45, 45)].band == "likely"


def test_the_other_sides_duplicates_may_both_be_kept() -> None:
    ua, nl = world()
    twice = [*nl, dict(PAIRS[2][2])]  # the typo person is in the Dutch register twice
    (a, fa), (b, fb) = batch(ua, "UKR", "ua"), batch(twice, "NLD", "nl")
    result = link(a, b, blocking_seed=SEED, exact=exact_pairs(fa, fb))
    row_a = len(ua) - len(PAIRS) - 1 + 2
    partners = {c.b for c in result.candidates if c.a == row_a and c.band == "likely"}
    assert partners == {len(nl) - len(PAIRS) - 1 + 2, len(twice) - 1}


def test_empty_batches_and_no_candidates() -> None:
    empty, _ = batch([], "UKR", "ua")
    one, _ = batch([UNRELATED[1]], "NLD", "nl")
    for a, b in ((empty, one), (one, empty), (empty, empty)):
        result = link(a, b, blocking_seed=SEED)
        assert result.candidates == () and result.pairs_blocked == 0
    other, _ = batch([UNRELATED[0]], "UKR", "ua")
    assert link(other, one, blocking_seed=SEED).candidates == ()


def test_progress_is_reported() -> None:
    ua, nl = world()
    (a, _), (b, _) = batch(ua, "UKR", "ua"), batch(nl, "NLD", "nl")
    seen: list[tuple[str, int, int]] = []
    link(a, b, blocking_seed=SEED, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen and seen[-1][1] == seen[-1][2] == len(a)


def test_bad_input_is_refused_without_personal_data() -> None:
    ua, nl = world()
    (a, _), (b, _) = batch(ua[:10], "UKR", "ua"), batch(nl[:10], "NLD", "nl")
    other = Layout(DEFAULT_LAYOUT.fields, flip=3)
    c = Encoder(other, pair_key=PAIR_KEY, noise_key=keys.noise_key(b"x" * 32, PAIR_KEY), epoch=1).encode(
        [{}], record_ids=["x"]
    )
    cases = [
        (lambda: link(a, c, blocking_seed=SEED), "same layout"),
        (lambda: link(a, b, blocking_seed=SEED, exact=[(10, 0, "phone")]), "out of range"),
        (lambda: link(a, b, blocking_seed=SEED, exact=[(0, 0, "surname")]), "expected a kind"),
        (lambda: link(a, b, blocking_seed=SEED, workers=0), "workers"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidRequestError, match=message) as raised:
            call()
        assert raised.value.code == "matching_bad_input"
        assert "Olena" not in str(raised.value) and "Олена" not in str(raised.value)


def test_encode_keeps_row_order_and_years() -> None:
    b, found = batch([PAIRS[0][2], UNRELATED[1]], "NLD", "nl")
    assert len(b) == 2 and bool(b.present("birth")[0])
    assert np.count_nonzero(b.years) == 2 and found[0].birth_year == 1998
