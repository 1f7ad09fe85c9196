"""The comparisons of the reference linkage: name, birth-date, presence levels and pattern codes."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.encoding import DEFAULT_LAYOUT, EncodedBatch, Encoder, keys
from protocol.encoding.comparisons import CODEC, COMPARISONS, pair_levels

PAIR_KEY = bytes(range(32))
NAMES = [c.field for c in COMPARISONS]


def encode(records: list[dict[str, list[str]]], side: str, years: list[int | None]) -> EncodedBatch:
    encoder = Encoder(
        DEFAULT_LAYOUT, pair_key=PAIR_KEY, noise_key=keys.noise_key(side.encode() * 16, PAIR_KEY), epoch=1
    )
    return encoder.encode(records, record_ids=[f"{side}{i}" for i in range(len(records))], birth_years=years)


def level(name: str, a: dict[str, list[str]], b: dict[str, list[str]], years: tuple[int | None, int | None] = (None, None), shared: int = 0) -> int:  # fmt: skip
    x, y = encode([a], "a", [years[0]]), encode([b], "b", [years[1]])
    lv = pair_levels(x, y, np.array([0]), np.array([0]), np.array([shared], np.uint8))
    return int(lv[0, NAMES.index(name)])


@pytest.mark.parametrize(
    ("a", "b", "years", "expected"),
    [
        ("1998-03-07", "1998-03-07", (1998, 1998), 0),
        ("1998-03-07", "1998-03", (1998, 1998), 1),  # year and month
        ("1998-03-07", "1998-07-03", (1998, 1998), 1),  # day and month swapped
        ("1998-03-07", "1998", (1998, 1998), 2),  # same year, one side less precise
        ("1998", "1998", (1998, 1998), 2),  # two year-only dates agree on the year only
        ("1998-03-07", "1998-11-21", (1998, 1998), 2),
        ("1998", "1998-05-05", (None, 1998), 2),  # a 1 January placeholder has no year code
        ("1998-03-07", "1999-03-07", (1998, 1999), 3),
        ("1998-03-07", "1975-03-07", (1998, 1975), 4),
        ("1998", "1975-05-05", (None, 1975), 4),
    ],
)
def test_birth_levels_count_shared_date_items(
    a: str, b: str, years: tuple[int | None, int | None], expected: int
) -> None:
    assert level("birth", {"birth": [a]}, {"birth": [b]}, years) == expected


def test_a_missing_date_is_missing() -> None:
    assert level("birth", {"birth": ["1998"]}, {"given": ["ana"]}) == -1


@pytest.mark.parametrize(
    ("b", "expected"),
    [
        ({"given": ["olena"], "family": ["kovalenko"]}, 0),
        ({"given": ["kovalenko"], "family": ["olena"]}, 0),  # swapped by a clerk
        ({"given": ["olena"], "family": ["kovalenkova"]}, 1),
        ({"given": ["olena"], "family": ["shevchenko"]}, 5),  # same given name, another family
        ({"given": ["taras"], "family": ["melnyk"]}, 7),
        ({"given": ["olena"]}, 5),  # a missing part counts as differing
    ],
)
def test_name_levels_take_both_names_together(b: dict[str, list[str]], expected: int) -> None:
    assert level("name", {"given": ["olena"], "family": ["kovalenko"]}, b) == expected


def test_selector_levels_tell_a_conflict_from_a_gap() -> None:
    phone = {"has_phone": ["1"]}
    assert level("phone", phone, phone, shared=0b010) == 0
    assert level("phone", phone, phone) == 1
    assert level("phone", phone, {"given": ["ana"]}) == -1


def test_pattern_codes_round_trip() -> None:
    rng = np.random.default_rng(3)
    lv = np.column_stack([rng.integers(-1, c.levels, 1000) for c in COMPARISONS]).astype(np.int8)
    codes = CODEC.encode(lv)
    assert int(codes.max()) < CODEC.size
    np.testing.assert_array_equal(CODEC.decode(codes.astype(np.int64)), lv)
