"""The counting engine on a hand-made frame (no database): counts worked out by hand, and its parts."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from node.query import count
from node.query.count import count_cells, unit_cell_order
from node.query.frame import FrameBuilder, QueryFrame
from protocol.query.spec import QuerySpec, parse_spec

PERSONS = [
    (1, "Feminine", '["NLD", "ROU"]'),
    (2, "Masculine", None),
    (3, None, ["UKR"]),
    (4, "Feminine", '["NLD"]'),
]
CASES = [(10, 2020), (11, 2021), (12, None)]
# id, case, person, role, age, sector, relationship, exploitation types, control, recruitment, role in process
ROWS = [
    (100, 10, 1, "victim", 16, None, "Familial", '["ForcedLabour", "SexualExploitation"]', '["DebtBondage"]', None, None),
    (101, 11, 1, "victim", 17, "F_Construction", None, '["ForcedLabour"]', None, None, None),
    (102, 10, 2, "perpetrator", None, None, None, None, None, None, '["Exploiter", "Transporter"]'),
    (103, 12, 3, "victim", 30, None, None, None, None, None, None),
    (104, 11, 4, "victim", None, None, None, '["Bogus"]', None, None, None),
    (105, 11, 99, "victim", 20, None, None, None, None, None, None),  # no such person: left out
]  # fmt: skip
EVENTS = [
    (100, "Exploitation", "DEU"), (100, "Recruitment", "ROU"), (101, "Exploitation", "DEU"),
    (101, "Exploitation", "FRA"), (102, "Transit", None), (999, "Exploitation", "ITA"),
]  # fmt: skip


def build(persons: list[Any] = PERSONS, rows: list[Any] = ROWS, events: list[Any] = EVENTS) -> QueryFrame:
    builder = FrameBuilder()
    builder.add_persons(persons[:2])
    builder.add_persons(persons[2:])
    builder.add_cases(CASES)
    builder.add_rows(rows)
    builder.add_events(events)
    return builder.finish("test")


def spec(measure: str, dimensions: list[str], **extra: Any) -> QuerySpec:
    return parse_spec({"measure": measure, "dimensions": dimensions, "privacy": {"rho": "0.05"}, **extra})


def counted(frame: QueryFrame, query: QuerySpec) -> dict[tuple[str, ...], int]:
    """The cells that are not zero, by their labels."""
    counts = count_cells(frame, query)
    assert counts.dtype == np.int64 and counts.shape == (query.cells,)
    return {label: int(n) for label, n in zip(query.cell_labels(), counts, strict=True) if n}


@pytest.fixture(scope="module")
def frame() -> QueryFrame:
    return build()


def test_the_frame_holds_rows_by_person_then_case_read_only(frame: QueryFrame) -> None:
    assert (frame.rows, frame.persons, frame.cases) == (5, 4, 3)
    assert frame.person_ids[frame.row_person].tolist() == [1, 1, 2, 3, 4]
    assert frame.case_ids[frame.row_case].tolist() == [10, 11, 10, 12, 11]
    for array in frame.arrays().values():
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        frame.row_role[0] = 1


def test_victims_count_persons_once_per_distinct_cell(frame: QueryFrame) -> None:
    assert counted(frame, spec("victims", ["citizenship"])) == {("NLD",): 2, ("ROU",): 1, ("UKR",): 1}
    assert counted(frame, spec("victims", ["exploitation_country"])) == {
        ("DEU",): 1, ("FRA",): 1, ("unknown",): 2,
    }  # fmt: skip
    assert counted(frame, spec("victims", ["exploitation_group"])) == {
        ("sexual_exploitation",): 1, ("forced_labour",): 1, ("unknown",): 2,  # "Bogus" has no group
    }  # fmt: skip
    assert counted(frame, spec("victims", ["age_group"])) == {("child",): 1, ("adult",): 1, ("unknown",): 1}
    sector = spec("victims", ["sector"], bounds={"cells_per_unit": 2})  # single-valued: k is 1 by default
    assert counted(frame, sector) == {("F_Construction",): 1, ("unknown",): 3}
    assert counted(frame, spec("perpetrators", ["perpetrator_role"])) == {
        ("Transporter",): 1,
        ("Exploiter",): 1,
    }
    assert counted(frame, spec("perpetrators", ["recruitment_country", "transit_country"])) == {
        ("unknown", "unknown"): 1,  # no recruitment event; a transit event without a country
    }


def test_years_and_filters_drop_rows(frame: QueryFrame) -> None:
    assert counted(frame, spec("victims", [])) == {(): 3}
    assert counted(frame, spec("victims", [], years=[2020, 2021])) == {(): 2}  # case 12 has no year
    assert counted(frame, spec("victims", ["year"], years=[2021, 2025])) == {("2021",): 2}
    female = spec("victims", ["citizenship"], filters={"sex": ["female"]})
    assert counted(frame, female) == {("NLD",): 2, ("ROU",): 1}
    assert counted(frame, spec("victims", ["sex"], filters={"citizenship": ["ROU"]})) == {("female",): 1}
    kept = spec("victims", ["citizenship"], filters={"citizenship": ["ROU", "UKR"]})
    assert count_cells(frame, kept).tolist() == [1, 1] and [c for (c,) in kept.cell_labels()] == [
        "ROU",
        "UKR",
    ]


def test_a_unit_over_its_bound_keeps_the_cells_first_in_the_fixed_order(frame: QueryFrame) -> None:
    query = spec("victims", ["exploitation_type"], bounds={"cells_per_unit": 1})
    labels = [c for (c,) in query.cell_labels()]
    held = [labels.index("ForcedLabour"), labels.index("SexualExploitation")]
    first = min(held, key=lambda c: int(unit_cell_order(np.array([1]), np.array([c]))[0]))
    assert counted(frame, query) == {(labels[first],): 1, ("unknown",): 2}


def test_cases_unite_their_rows_by_role_after_the_cases_per_person_cut(frame: QueryFrame) -> None:
    by_sex = spec("cases", ["sex"])
    assert counted(frame, by_sex) == {("female",): 2, ("male",): 1, ("other_unknown",): 1}
    one, two = ({"cells_per_unit": 3, "cases_per_person": c} for c in (1, 2))
    # person 1 is in cases 10 and 11; with one case a person, case 11 holds only person 4
    assert counted(frame, spec("cases", ["sector"], bounds=one)) == {("unknown",): 3}
    assert counted(frame, spec("cases", ["sector"], bounds=two)) == {("F_Construction",): 1, ("unknown",): 3}
    assert counted(frame, spec("cases", ["perpetrator_role"])) == {
        ("Transporter",): 1, ("Exploiter",): 1, ("unknown",): 2,  # no perpetrator: unknown
    }  # fmt: skip
    assert counted(frame, spec("cases", ["age_group"])) == {("child",): 1, ("adult",): 1, ("unknown",): 1}
    deu = spec("cases", ["sex"], filters={"exploitation_country": ["DEU"]})
    assert counted(frame, deu) == {("female",): 1, ("male",): 1}  # case 10: {DEU, unknown} ∩ {DEU}
    assert counted(frame, spec("cases", [], years=[2021, 2021])) == {(): 1}


def test_stored_values_as_text_or_lists_and_strangers_read_alike() -> None:
    as_lists = [(*r[:7], *(None if v is None else json.loads(v) for v in r[7:])) for r in ROWS]
    a, b = build(), build(rows=as_lists)
    for name, array in a.arrays().items():
        assert np.array_equal(b.arrays()[name], array), name
    odd = build(
        persons=[(1, "Weird", '["ZZZ", 5]'), *PERSONS[1:]], rows=[(*ROWS[0][:7], "not json", *ROWS[0][8:])]
    )
    assert counted(odd, spec("victims", ["citizenship"])) == {("unknown",): 1}
    assert counted(odd, spec("victims", ["sex", "exploitation_type"])) == {("other_unknown", "unknown"): 1}


def test_the_builder_refuses_rows_out_of_id_order() -> None:
    builder = FrameBuilder()
    builder.add_persons(PERSONS)
    builder.add_cases(CASES)
    builder.add_rows([ROWS[1], ROWS[0]])
    with pytest.raises(ValueError, match="ascending id"):
        builder.finish("test")


def test_an_empty_frame_counts_zero() -> None:
    frame = FrameBuilder().finish("empty")
    assert count_cells(frame, spec("cases", ["citizenship", "year"], years=[2020, 2021])).sum() == 0
    assert count_cells(frame, spec("victims", [])).tolist() == [0]


# ---- parts ------------------------------------------------------------------------------------


def test_the_order_is_fixed_a_bijection_of_the_cell_and_favours_no_cell() -> None:
    cells = np.arange(100_000)
    keys = unit_cell_order(np.full(len(cells), 7), cells)
    assert keys.dtype == np.uint64 and len(np.unique(keys)) == len(cells)
    assert np.array_equal(keys[:3], [unit_cell_order(np.array([7]), np.array([c]))[0] for c in range(3)])
    assert not np.array_equal(keys[:50], unit_cell_order(np.full(50, 8), cells[:50]))
    units = np.repeat(np.arange(1, 30_001), 10)  # 30,000 units holding cells 0..9 keep 3 each
    kept = count._smallest(unit_cell_order(units, np.tile(np.arange(10), 30_000)), units - 1, 3)
    share = np.bincount(kept % 10, minlength=10) / 9_000
    assert np.all(np.abs(share - 1) < 0.05)


@pytest.mark.parametrize("shuffle", [False, True])
def test_smallest_keys_per_unit_match_a_sort(shuffle: bool) -> None:
    rng = np.random.default_rng(5)
    sizes = np.concatenate([rng.integers(4, 9, 300), [40, 63, 64, 65, 300]])
    units = np.repeat(np.arange(len(sizes)), sizes)
    keys = unit_cell_order(units, np.arange(len(units)))
    if shuffle:  # a unit's pairs apart: the sorting fallback
        order = rng.permutation(len(units))
        units, keys = units[order], keys[order]
    chosen = count._smallest(keys, units, 3)
    expected = {
        int(u): sorted(keys[units == u].tolist())[:3] for u in np.unique(units)
    }  # every unit has more than 3
    got: dict[int, list[int]] = {}
    for position in chosen:
        got.setdefault(int(units[position]), []).append(int(keys[position]))
    assert {u: sorted(v) for u, v in got.items()} == expected


def test_bits_decode_multiword_masks_in_code_order() -> None:
    rng = np.random.default_rng(2)
    codes = [sorted(rng.choice(200, rng.integers(0, 6), replace=False).tolist()) for _ in range(500)]
    masks = np.zeros((500, 4), np.uint64)
    for i, held in enumerate(codes):
        for c in held:
            masks[i, c // 64] |= np.uint64(1 << (c % 64))
    lookup = np.where(np.arange(256) % 3 == 0, np.arange(256) // 3, -1)  # keeps every third code
    sets = count._bits(masks, lookup)
    expected = [(i, c // 3) for i, held in enumerate(codes) for c in held if c % 3 == 0]
    assert list(zip(sets.item.tolist(), sets.value.tolist(), strict=True)) == expected
