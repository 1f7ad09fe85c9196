"""Query specifications: what is accepted, what is refused and why, the canonical form and its hash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.query.codebook import (
    DIMENSIONS,
    MEASURES,
    UNKNOWN,
    age_band_of,
    age_group_of,
    exploitation_group_of,
    sex_of,
)
from protocol.query.spec import MAX_CELLS, InvalidQuery, default_cells_per_unit, parse_spec, parse_wire

CONFIG = Path(__file__).resolve().parents[2] / "config" / "queries"


def spec(**fields: object) -> dict[str, object]:
    return {"measure": "victims", "privacy": {"rho": "0.05"}, **fields}


def test_minimal_total() -> None:
    s = parse_spec(spec())
    assert (s.measure, s.dimensions, s.cells, s.cells_per_unit) == ("victims", (), 1, 1)
    assert s.l2_sensitivity == 1.0
    assert list(s.cell_labels()) == [()]


def test_cells_in_row_major_order_with_filters_restricting_categories() -> None:
    s = parse_spec(spec(dimensions=["sex", "age_group"], filters={"age_group": ["adult", "child"]}))
    assert s.categories("age_group") == ("child", "adult")  # codebook order, not the order written
    assert list(s.cell_labels()) == [
        ("female", "child"), ("female", "adult"), ("male", "child"), ("male", "adult"),
        ("other_unknown", "child"), ("other_unknown", "adult"),
    ]  # fmt: skip


def test_year_dimension_needs_a_range_and_takes_its_categories_from_it() -> None:
    with pytest.raises(InvalidQuery, match="year range"):
        parse_spec(spec(dimensions=["year"]))
    s = parse_spec(spec(dimensions=["year"], years=[2019, 2021]))
    assert s.categories("year") == ("2019", "2020", "2021")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"measure": "traffickers"}, "measure"),
        ({"dimensions": ["hair_colour"]}, "unknown dimension"),
        ({"dimensions": ["sex", "age_group", "sector", "citizenship"]}, "at most 3"),
        ({"dimensions": ["sex", "sex"]}, "twice"),
        ({"dimensions": "sex"}, "list"),
        ({"filters": {"sex": ["feminine"]}}, "not one of its categories"),
        ({"filters": {"year": ["2020"]}}, "years"),
        ({"filters": {"sex": []}}, "non-empty"),
        ({"filters": ["sex"]}, "object"),
        ({"years": [2020, 2019]}, "first <= last"),
        ({"years": [1800, 1900]}, "first <= last"),
        ({"years": [1950, 2010]}, "at most 50"),
        ({"years": ["2019", "2020"]}, "two whole years"),
        ({"privacy": {"rho": "-0.1"}}, "negative"),
        ({"privacy": {"rho": "0"}}, "above zero"),
        ({"privacy": {"rho": "1e400"}}, "decimal"),
        ({"privacy": {"rho": 50}}, "absurd"),
        ({"privacy": {"rho": float("nan")}}, "finite"),
        ({"privacy": {"rho": True}}, "boolean"),
        ({"privacy": {"epsilon": -1}}, "epsilon"),
        ({"privacy": {"epsilon": 1, "delta": 0.5}}, "delta"),
        ({"privacy": {}}, "privacy"),
        ({"privacy": {"rho": "0.1", "epsilon": 1}}, "privacy"),
        ({"bounds": {"cells_per_unit": 0}}, "cells_per_unit"),
        ({"bounds": {"cells_per_unit": 99}}, "cells_per_unit"),
        ({"bounds": {"cases_per_person": 2}}, "unknown field"),
        ({"dimensions": ["perpetrator_role"]}, "does not apply to victims"),
        ({"dimensions": ["citizenship", "exploitation_country", "recruitment_country"]}, "cells"),
        ({"plan": "SELECT *"}, "unknown field"),
        ({"version": 2}, "version"),
        ({"title": "a\nb"}, "title"),
    ],
)
def test_refusals_name_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as caught:
        parse_spec(spec(**fields))
    assert caught.value.code == "invalid_query"


def test_not_an_object() -> None:
    with pytest.raises(InvalidQuery):
        parse_spec(["victims"])


def test_epsilon_is_converted_to_rho() -> None:
    s = parse_spec(spec(privacy={"epsilon": 1.0, "delta": 1e-7}))
    rho = s.rho_nano / 1e9
    assert (
        rho + 2 * math.sqrt(rho * math.log(1e7))
        <= 1.0
        < (rho + 1e-6) + 2 * math.sqrt((rho + 1e-6) * math.log(1e7))
    )


def test_hash_ignores_title_and_filter_spelling_but_not_the_question() -> None:
    a = parse_spec(spec(dimensions=["sex"], filters={"age_group": ["adult", "child"]}, title="one"))
    b = parse_spec(spec(dimensions=["sex"], filters={"age_group": ["child", "adult"]}, title="two"))
    assert a.hash == b.hash
    c = parse_spec(spec(dimensions=["sex"], filters={"age_group": ["child"]}))
    assert c.hash != a.hash
    every = parse_spec(spec(dimensions=["sex"], filters={"sex": list(DIMENSIONS["sex"].categories)}))
    assert every.hash == parse_spec(spec(dimensions=["sex"])).hash  # a filter keeping everything is none
    assert parse_spec(spec(privacy={"rho": 0.05})).hash == parse_spec(spec(privacy={"rho": "0.050"})).hash


def test_wire_form_round_trips_and_must_be_canonical() -> None:
    s = parse_spec(spec(dimensions=["exploitation_group"], filters={"sex": "female"}, years=[2020, 2024]))
    wire = s.to_wire()
    assert "title" not in wire and wire["privacy"] == {"rho": "0.05"}
    assert parse_wire(json.loads(json.dumps(wire))).hash == s.hash
    with pytest.raises(InvalidQuery, match="exactly the fields"):
        parse_wire({**wire, "title": "x"})
    with pytest.raises(InvalidQuery, match="decimal string"):
        parse_wire({**wire, "privacy": {"rho": 0.05}})
    reordered = {**wire, "filters": {"sex": ["female"], "age_group": ["adult", "child"]}}
    with pytest.raises(InvalidQuery, match="canonical"):
        parse_wire(reordered)
    with pytest.raises(InvalidQuery, match="canonical"):  # a filter keeping every category is no filter
        parse_wire({**wire, "filters": {"sex": ["female", "male", "other_unknown"]}})
    with pytest.raises(InvalidQuery, match="canonical"):  # bounds are explicit on the wire
        parse_wire({**wire, "bounds": {}})


def test_sensitivity_follows_the_bounds() -> None:
    victims = parse_spec(spec(dimensions=["means_of_control"], bounds={"cells_per_unit": 4}))
    assert victims.l2_sensitivity == 2.0
    cases = parse_spec(
        {
            **spec(dimensions=["sex"]),
            "measure": "cases",
            "bounds": {"cells_per_unit": 2, "cases_per_person": 3},
        }
    )
    assert math.isclose(cases.l2_sensitivity, 3 * math.sqrt(4))
    assert default_cells_per_unit("victims", ("sex", "age_band")) == 1
    assert default_cells_per_unit("victims", ("citizenship", "exploitation_country")) == 5
    assert default_cells_per_unit("cases", ("year", "sex")) == 3


def test_every_ready_specification_is_valid() -> None:
    files = sorted(CONFIG.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        s = parse_spec(json.loads(path.read_text()))
        assert s.title and s.cells <= MAX_CELLS


def test_roll_ups() -> None:
    assert sex_of("Feminine") == "female" and sex_of("Masculine") == "male"
    assert sex_of("TransgenderFeminine") == sex_of(None) == "other_unknown"
    assert [age_band_of(a) for a in (0, 8, 9, 17, 18, 47, 48, 90)] == [
        "0-8",
        "0-8",
        "9-17",
        "9-17",
        "18-20",
        "39-47",
        "48+",
        "48+",
    ]
    assert age_band_of(None) == age_group_of(None) == UNKNOWN
    assert (age_group_of(17), age_group_of(18)) == ("child", "adult")
    assert exploitation_group_of("ForcedCriminality") == "forced_criminality"
    assert exploitation_group_of("ChildLabour") == "forced_labour"
    assert exploitation_group_of("ForcedMarriage") == "other"
    for d in DIMENSIONS.values():
        assert len(set(d.categories)) == len(d.categories)
        assert d.measures <= set(MEASURES)


names = st.sampled_from(sorted(DIMENSIONS))


@settings(max_examples=200, deadline=None)
@given(
    measure=st.sampled_from(MEASURES),
    dims=st.lists(names, max_size=4),
    filters=st.dictionaries(
        names,
        st.lists(st.text(max_size=8) | st.sampled_from(["female", "unknown", "NLD", "child"]), max_size=3),
        max_size=3,
    ),
    rho=st.one_of(st.floats(allow_nan=True), st.text(max_size=12), st.integers()),
)
def test_any_input_is_either_a_valid_query_or_a_clear_refusal(
    measure: str, dims: list[str], filters: dict[str, list[str]], rho: object
) -> None:
    obj = {
        "measure": measure,
        "dimensions": dims,
        "filters": filters,
        "years": [2020, 2022],
        "privacy": {"rho": rho},
    }
    try:
        s = parse_spec(obj)
    except InvalidQuery as e:
        assert e.message
        return
    assert 0 < s.rho_nano <= 10 * 10**9
    assert 1 <= s.cells <= MAX_CELLS
    assert len(s.dimensions) <= 3
    assert parse_wire(s.to_wire()).hash == s.hash
