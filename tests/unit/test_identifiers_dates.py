"""Birth dates: precision, the 1 January placeholder, day/month swaps, agreement levels, windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.identifiers import LEVELS, BirthDate, birth_year_window, date_agreement, parse_birthdate

PARSED = [
    ("1998-03-07", BirthDate(1998, 3, 7)),
    (" 1998-03-07 ", BirthDate(1998, 3, 7)),
    ("1998-03", BirthDate(1998, 3)),
    ("1998", BirthDate(1998)),
    ("1998-01-01", BirthDate(1998, placeholder=True)),  # migration documents' unknown birthday
    ("1998-01", BirthDate(1998, 1)),  # January alone is a real month
    ("1998-00-00", BirthDate(1998)),
    ("1998-03-00", BirthDate(1998, 3)),
    ("1998-00-07", BirthDate(1998)),
    ("2000-02-29", BirthDate(2000, 2, 29)),
    ("1900-06-15", BirthDate(1900, 6, 15)),
]
UNREADABLE = [
    None,
    "",
    "   ",
    "07/03/1998",  # callers validate to ISO first
    "1998-13-01",
    "1998-02-30",
    "1999-02-29",
    "1998-3-7",
    "98-03-07",
    "1899-12-31",  # sentinel years
    "0001-01-01",
    "1998-03-07T00:00",
    "abcd",
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[t for t, _ in PARSED])
def test_parse(text: str, expected: BirthDate) -> None:
    assert parse_birthdate(text) == expected


@pytest.mark.parametrize("text", UNREADABLE, ids=[repr(t) for t in UNREADABLE])
def test_unreadable_dates_are_none(text: str | None) -> None:
    assert parse_birthdate(text) is None


def test_placeholder_keeps_only_its_year() -> None:
    placeholder = parse_birthdate("1990-01-01")
    assert placeholder is not None
    assert (placeholder.month, placeholder.day, placeholder.placeholder, placeholder.is_full) == (
        None,
        None,
        True,
        False,
    )
    assert placeholder.iso() == "1990"


@pytest.mark.parametrize(
    "bad",
    [
        {"year": 1899},
        {"year": 2000, "month": 13},
        {"year": 2001, "month": 2, "day": 29},
        {"year": 2000, "day": 3},
        {"year": 2000, "month": 1, "day": 1, "placeholder": True},
    ],
)
def test_birthdate_refuses_impossible_values(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BirthDate(**bad)  # type: ignore[arg-type]


D = parse_birthdate
AGREEMENT = [
    ("1998-03-07", "1998-03-07", "exact"),
    ("1998-03-07", "1998-07-03", "swap"),
    ("1998-03-07", "1998-03-09", "year_month"),
    ("1998-03-07", "1998-03", "year_month"),
    ("1998-03", "1998-03", "year_month"),
    ("1998-03-07", "1998", "year"),
    ("1998-03-07", "1998-01-01", "year"),  # the placeholder says nothing about day and month
    ("1998-03-07", "1998-11-20", "year"),
    ("1998-03-07", "1999-03-07", "year_close"),
    ("1998-03-07", "1997-12-31", "year_close"),
    ("1998-03-07", "2000-03-07", "none"),
    ("1998-03-07", None, "missing"),
    (None, None, "missing"),
    ("1998-12-25", "1998-12-25", "exact"),
    ("1998-03-13", "1998-13-03", "missing"),  # the swap of a day over 12 is no date
]


@pytest.mark.parametrize(("a", "b", "level"), AGREEMENT, ids=[f"{a}~{b}" for a, b, _ in AGREEMENT])
def test_date_agreement(a: str | None, b: str | None, level: str) -> None:
    assert date_agreement(D(a), D(b)) == level
    assert date_agreement(D(b), D(a)) == level  # symmetric
    assert level in LEVELS


def test_swapped() -> None:
    assert BirthDate(1998, 3, 7).swapped() == BirthDate(1998, 7, 3)
    assert BirthDate(1998, 3, 13).swapped() is None
    assert BirthDate(1998, 5, 5).swapped() is None
    assert BirthDate(1998, 5).swapped() is None


def test_birth_year_window() -> None:
    assert birth_year_window(D("1998-03-07")) == range(1997, 2000)
    assert birth_year_window(D("1998-01-01")) == range(1997, 2000)
    assert birth_year_window(D("1998"), slack=2) == range(1996, 2001)
    assert birth_year_window(None) is None


@given(st.dates())
def test_every_real_date_round_trips(day: object) -> None:
    text = day.isoformat()  # type: ignore[attr-defined]
    parsed = parse_birthdate(text)
    if text < "1900":
        assert parsed is None
    elif text.endswith("-01-01"):
        assert parsed is not None and parsed.placeholder
    else:
        assert parsed is not None and parsed.iso() == text
        assert date_agreement(parsed, parsed) == "exact"


@given(st.text(max_size=12))
def test_parse_never_raises(text: str) -> None:
    parse_birthdate(text)
