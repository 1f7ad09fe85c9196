"""zCDP arithmetic, the answer check a requester makes, and combining countries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedError
from protocol.messages import check_payload
from protocol.query.combine import Z95, CountryAnswer, ci95_half_width, combine
from protocol.query.messages import AnswerMismatch, scale_text, verify_answer
from protocol.query.privacy import (
    NANO,
    InvalidLoss,
    discrete_gaussian_variance,
    epsilon_bound,
    format_rho,
    gaussian_scale,
    parse_rho,
    rho_from_epsilon,
)
from protocol.query.spec import parse_spec

QUERY_ID = "ab" * 16


def test_rho_decimals_are_exact() -> None:
    assert parse_rho("0.05") == parse_rho(0.05) == 50_000_000
    assert parse_rho("1") == NANO and parse_rho(1) == NANO
    assert parse_rho("0.000000001") == 1
    assert format_rho(50_000_000) == "0.05" and format_rho(NANO) == "1" and format_rho(0) == "0"
    for bad in ("0.0000000001", "1e-3", " ", "0x10", "--1", "1.", ".5"):
        with pytest.raises(InvalidLoss):
            parse_rho(bad)


@given(st.integers(min_value=1, max_value=10 * NANO))
def test_format_and_parse_are_inverse(nano: int) -> None:
    assert parse_rho(format_rho(nano)) == nano


def test_epsilon_conversion_is_the_largest_rho_within_epsilon() -> None:
    for epsilon in (0.1, 1.0, 5.0):
        nano = rho_from_epsilon(epsilon, 1e-7)
        assert epsilon_bound(nano, 1e-7) <= epsilon < epsilon_bound(nano + 10, 1e-7)


def test_scale_spends_exactly_rho() -> None:
    for l2, rho in ((1.0, 50_000_000), (math.sqrt(5), 10_000_000), (6.0, NANO)):
        scale = gaussian_scale(l2, rho)
        spent = l2**2 / (2 * scale**2)
        assert spent <= rho / NANO and math.isclose(spent, rho / NANO, rel_tol=1e-8)


def test_discrete_gaussian_variance() -> None:
    assert math.isclose(discrete_gaussian_variance(3.0), 9.0, rel_tol=1e-12)
    assert discrete_gaussian_variance(0.3) < 0.09  # below scale**2 at small scales
    assert discrete_gaussian_variance(0.0) == 0.0
    assert discrete_gaussian_variance(20.0) == 400.0


def _answer(spec_dict: dict[str, object], **changes: object) -> tuple[object, dict[str, object]]:
    spec = parse_spec(spec_dict)
    answer: dict[str, object] = {
        "query_id": QUERY_ID,
        "spec_hash": spec.hash,
        "period": "2026-11",
        "mechanism": "discrete_gaussian",
        "rho": spec.rho,
        "scale": scale_text(gaussian_scale(spec.l2_sensitivity, spec.rho_nano)),
        "l2_sensitivity": scale_text(spec.l2_sensitivity),
        "cells": [0] * spec.cells,
        "cached": False,
        "released_at": 1,
    }
    answer.update(changes)
    return spec, check_payload("query.answer", answer)


SPEC = {"measure": "victims", "dimensions": ["sex"], "privacy": {"rho": "0.05"}}


def test_a_fitting_answer_passes() -> None:
    spec, answer = _answer(SPEC)
    verify_answer(spec, QUERY_ID, answer)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"query_id": "cd" * 16}, "another query"),
        ({"spec_hash": "00" * 32}, "another specification"),
        ({"rho": "0.5"}, "charged rho"),
        ({"scale": "1.0"}, "noise scale"),
        ({"l2_sensitivity": "2"}, "sensitivity"),
        ({"cells": [1, 2]}, "cells"),
    ],
)
def test_an_answer_that_does_not_fit_is_a_mismatch(changes: dict[str, object], message: str) -> None:
    spec, answer = _answer(SPEC, **changes)
    with pytest.raises(AnswerMismatch, match=message) as caught:
        verify_answer(spec, QUERY_ID, answer)  # type: ignore[arg-type]
    assert caught.value.code == "answer_mismatch"


@pytest.mark.parametrize(
    "changes",
    [
        {"mechanism": "laplace"},
        {"cells": [1.5, 2, 3]},
        {"cells": []},
        {"rho": 0.05},
        {"period": "soon"},
        {"cached": "no"},
        {"scale": "-1"},
    ],
)
def test_malformed_answers_are_refused_by_shape(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedError):
        _answer(SPEC, **changes)


def test_combine_totals_errors_and_intervals() -> None:
    spec = parse_spec(SPEC)
    answers = [CountryAnswer("nl", "NLD", 2.0, [10, 5, 1]), CountryAnswer("ro", "ROU", 3.0, [4, -1, 0])]
    table = combine(spec, answers)
    assert [c["total"] for c in table["cells"]] == [14, 4, 1]
    assert [c["values"] for c in table["cells"]] == [[10, 4], [5, -1], [1, 0]]
    se = math.sqrt(discrete_gaussian_variance(2.0) + discrete_gaussian_variance(3.0))
    assert math.isclose(table["total_se"], se, rel_tol=1e-3)
    low, high = table["cells"][0]["ci95"]
    assert high - low == 2 * ci95_half_width([2.0, 3.0])
    assert [c["country"] for c in table["countries"]] == ["NLD", "ROU"]
    assert combine(spec, [])["cells"][0]["total"] == 0


def test_intervals_are_exact_for_small_noise_and_normal_above() -> None:
    # at scale 1, P(|X| <= 1) = 0.883 and P(|X| <= 2) = 0.991: the 95 % half width is 2, not 1.96
    assert ci95_half_width([1.0]) == 2.0
    weights = {x: math.exp(-(x * x) / 2) for x in range(-30, 31)}
    total = sum(weights.values())
    assert (
        sum(w for x, w in weights.items() if abs(x) <= 1) / total
        < 0.95
        <= sum(w for x, w in weights.items() if abs(x) <= 2) / total
    )
    assert ci95_half_width([0.5, 0.5]) >= 1.0
    assert ci95_half_width([10.0]) == pytest.approx(Z95 * 10.0)
    assert ci95_half_width([]) == 0.0
