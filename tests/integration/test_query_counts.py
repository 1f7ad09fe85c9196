"""Exact query counts (node.query.count) against a brute-force reference, on SQLite and PostgreSQL.

The reference below reads the records through the ORM and applies the semantics of
node.query.count's docstring one row at a time, in plain Python: sets of category names, the
cell index from spec.cell_labels(), the truncation order from count.unit_cell_order. The records are
synthetic, plus hand-made oddities: persons in several cases as victims, values outside the
codebooks, empty lists, events without a country, a case without a year, persons in no case.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update

from node.context import NodeContext, open_node
from node.query import frame as frame_module
from node.query.count import count_cells, unit_cell_order
from node.query.frame import MEMORY_KEY, current_frame, prepare_frame
from node.services.ingest import ingest_file
from node.services.synth import generate_federation, write_rows
from node.storage.models.records import Case, CasePerson, Person, TraffickingEvent
from protocol.htcds_values import EXPLOITATION
from protocol.query.codebook import (
    DIMENSIONS,
    PERPETRATORS_ONLY,
    UNKNOWN,
    VICTIMS_ONLY,
    age_band_of,
    age_group_of,
    exploitation_group_of,
    sex_of,
)
from protocol.query.spec import QuerySpec, parse_spec

ROLE_OF = {"victims": "victim", "perpetrators": "perpetrator"}
EVENT_OF = {
    "recruitment_country": "Recruitment",
    "transit_country": "Transit",
    "exploitation_country": "Exploitation",
}
ROW_FIELDS = {
    "sector": "forced_labour_industry",
    "recruiter_relationship": "relationship_to_trafficker",
    "means_of_control": "methods_of_control",
    "recruitment_method": "method_of_recruitment",
    "perpetrator_role": "role_in_process",
}


# ---- the reference ----------------------------------------------------------------------------


@dataclass
class Records:
    persons: dict[int, Person]
    years: dict[int, int | None]
    rows: list[CasePerson]
    events: dict[int, list[TraffickingEvent]]


def read_records(node: NodeContext) -> Records:
    with node.db.read() as session:
        persons = {p.id: p for p in session.scalars(select(Person))}
        years = {c.id: c.registration_year for c in session.scalars(select(Case))}
        rows = list(session.scalars(select(CasePerson)))
        events: dict[int, list[TraffickingEvent]] = defaultdict(list)
        for event in session.scalars(select(TraffickingEvent)):
            events[event.case_person_id].append(event)
        session.expunge_all()
    return Records(persons, years, rows, events)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def values(records: Records, dimension: str, row: CasePerson) -> set[str]:
    """V_d(r): the row's categories in one dimension, before filters."""
    categories = DIMENSIONS[dimension].categories
    unknown = "other_unknown" if dimension == "sex" else UNKNOWN
    person = records.persons[row.person_id]
    if dimension == "year":
        return {str(records.years[row.case_id])}
    if dimension == "sex":
        raw: list[Any] = [sex_of(person.gender)]
    elif dimension == "age_group":
        raw = [age_group_of(row.age_when_trafficked)]
    elif dimension == "age_band":
        raw = [age_band_of(row.age_when_trafficked)]
    elif dimension == "citizenship":
        raw = _as_list(person.citizenship)
    elif dimension in EVENT_OF:
        raw = [e.country for e in records.events[row.id] if e.type == EVENT_OF[dimension]]
    elif dimension == "exploitation_type":
        raw = _as_list(row.type_of_exploitation)
    elif dimension == "exploitation_group":
        types = _as_list(row.type_of_exploitation)
        raw = [exploitation_group_of(t) if t in EXPLOITATION else UNKNOWN for t in types]
    else:
        raw = _as_list(getattr(row, ROW_FIELDS[dimension]))
    return {v if v in categories else unknown for v in raw} or {unknown}


def _truncated(unit_id: int, cells: set[int], k: int) -> list[int]:
    if len(cells) <= k:
        return list(cells)
    key = {c: int(unit_cell_order(np.array([unit_id]), np.array([c]))[0]) for c in cells}
    return sorted(cells, key=lambda c: (key[c], c))[:k]


def _cells(spec: QuerySpec, sets: dict[str, set[str]], index: dict[tuple[str, ...], int]) -> set[int] | None:
    """The cells of one row or case; None when a filter leaves a dimension empty."""
    for name, kept in spec.filters.items():
        sets[name] &= set(kept)
        if not sets[name]:
            return None
    return {index[combination] for combination in product(*(sets[d] for d in spec.dimensions))}


def reference_counts(records: Records, spec: QuerySpec) -> list[int]:
    index = {label: i for i, label in enumerate(spec.cell_labels())}
    needed = [*spec.dimensions, *(d for d in spec.filters if d not in spec.dimensions)]

    def in_years(row: CasePerson) -> bool:
        year = records.years[row.case_id]
        return spec.years is None or (year is not None and spec.years[0] <= year <= spec.years[1])

    units: dict[int, set[int]] = defaultdict(set)
    if spec.measure != "cases":
        for row in records.rows:
            if row.role == ROLE_OF[spec.measure] and in_years(row):
                cells = _cells(spec, {d: values(records, d, row) for d in needed}, index)
                units[row.person_id] |= cells or set()
    else:
        by_person: dict[int, list[CasePerson]] = defaultdict(list)
        for row in records.rows:
            if in_years(row):
                by_person[row.person_id].append(row)
        by_case: dict[int, list[CasePerson]] = defaultdict(list)
        for rows in by_person.values():
            for row in sorted(rows, key=lambda r: r.case_id)[: spec.cases_per_person]:
                by_case[row.case_id].append(row)
        for case_id, rows in by_case.items():
            sets = {}
            for d in needed:
                measures = DIMENSIONS[d].measures
                role = (
                    "victim"
                    if measures == VICTIMS_ONLY
                    else "perpetrator"
                    if measures == PERPETRATORS_ONLY
                    else None
                )
                found = set().union(*(values(records, d, r) for r in rows if role in (None, r.role)))
                sets[d] = found or {"other_unknown" if d == "sex" else UNKNOWN}
            units[case_id] |= _cells(spec, sets, index) or set()
    counts = [0] * spec.cells
    for unit_id, cells in units.items():
        for cell in _truncated(unit_id, cells, spec.cells_per_unit):
            counts[cell] += 1
    return counts


# ---- the records ------------------------------------------------------------------------------


def _plant_oddities(node: NodeContext) -> None:
    """Values ingest would refuse or never writes, and victims in several cases."""
    with node.db.transaction() as session:
        rows = list(session.scalars(select(CasePerson).order_by(CasePerson.id)))
        victims = [r for r in rows if r.role == "victim"]
        persons = sorted({r.person_id for r in rows})
        for pid, citizenship in zip(
            persons[:4], (["NLD", "ZZZ"], ["XXA", "NLD", "ROU"], [], ["unknown"]), strict=True
        ):
            session.execute(
                update(Person).where(Person.id == pid).values(citizenship=citizenship, gender="Weird")
            )
        for row, changes in zip(
            victims[:6],
            (
                {"type_of_exploitation": ["Bogus", "ForcedLabour"], "age_when_trafficked": -5},
                {"type_of_exploitation": [], "methods_of_control": [], "forced_labour_industry": "Q_Bogus"},
                {"relationship_to_trafficker": "Stranger", "method_of_recruitment": ["AtWork", "Nope"]},
                {
                    "age_when_trafficked": 200,
                    "type_of_exploitation": ["ChildLabour", "Servitude", "ForcedLabour"],
                },
                {"methods_of_control": ["DebtBondage", "DebtBondage"]},
                {"role_in_process": ["Smuggler"]},  # perpetrator context on a victim row: never read
            ),
            strict=True,
        ):
            session.execute(update(CasePerson).where(CasePerson.id == row.id).values(**changes))
        session.add_all(
            [
                TraffickingEvent(case_person_id=victims[0].id, position=9, type="Transit", country=None),
                TraffickingEvent(case_person_id=victims[1].id, position=9, type="Transit", country="QQQ"),
                TraffickingEvent(
                    case_person_id=victims[2].id, position=9, type="Exploitation", country="ROU"
                ),
            ]
        )
        session.execute(update(Case).where(Case.id == rows[7].case_id).values(registration_year=None))
        # Victims in several cases: later victim rows moved to earlier victims (orphans stay as persons).
        taken = {(r.case_id, r.person_id) for r in rows}
        for a, b in zip(victims[10:200:2], victims[11:200:2], strict=True):
            if (b.case_id, a.person_id) not in taken:
                taken.add((b.case_id, a.person_id))
                session.execute(update(CasePerson).where(CasePerson.id == b.id).values(person_id=a.person_id))
        perpetrators = [r for r in rows if r.role == "perpetrator"]
        for a, b in zip(
            victims[200:230], perpetrators[:30], strict=True
        ):  # victims who are perpetrators elsewhere
            if (b.case_id, a.person_id) not in taken:
                taken.add((b.case_id, a.person_id))
                session.execute(update(CasePerson).where(CasePerson.id == b.id).values(person_id=a.person_id))


@pytest.fixture
def node(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Iterator[NodeContext]:
    ctx = open_node(make_home("nld", "NLD", database_url=database_url))
    rows = generate_federation(["NLD", "ROU", "UKR"], 2500, seed=11, overlap=0.3)["NLD"]
    write_rows(rows, tmp_path / "nld.csv")
    ingest_file(ctx, tmp_path / "nld.csv")
    _plant_oddities(ctx)
    yield ctx
    ctx.close()


# ---- the specifications -----------------------------------------------------------------------


def _spec(measure: str, dimensions: list[str], **extra: Any) -> QuerySpec:
    obj: dict[str, Any] = {"measure": measure, "dimensions": dimensions, "privacy": {"rho": "0.05"}, **extra}
    if "year" in dimensions and "years" not in obj:
        obj["years"] = [2019, 2024]
    return parse_spec(obj)


def _applicable(measure: str) -> list[str]:
    return [name for name, d in DIMENSIONS.items() if measure in d.measures]


def hand_specs() -> list[QuerySpec]:
    specs = []
    for measure in ("victims", "perpetrators", "cases"):
        specs += [_spec(measure, []), _spec(measure, [], years=[2020, 2022])]
        for dimension in _applicable(measure):
            specs.append(_spec(measure, [dimension]))
            specs.append(_spec(measure, [dimension], bounds={"cells_per_unit": 1}))
            if measure == "cases":
                specs.append(_spec(measure, [dimension], bounds={"cells_per_unit": 2, "cases_per_person": 2}))
    specs += [
        _spec("victims", ["citizenship", "exploitation_country"], bounds={"cells_per_unit": 5}),
        _spec("cases", ["year", "exploitation_group"]),
        _spec("victims", ["means_of_control", "exploitation_type"]),
        _spec("victims", ["means_of_control", "exploitation_type"], bounds={"cells_per_unit": 2}),
        _spec("victims", ["year", "sex", "exploitation_group"], years=[2000, 2030]),
        _spec(
            "cases",
            ["means_of_control", "recruitment_method", "exploitation_group"],
            bounds={"cells_per_unit": 3},
        ),
        _spec("perpetrators", ["perpetrator_role", "citizenship"], bounds={"cells_per_unit": 4}),
        _spec("cases", ["perpetrator_role", "exploitation_group"], bounds={"cases_per_person": 2}),
        _spec(
            "victims", ["citizenship"], filters={"exploitation_group": ["forced_labour"], "sex": ["female"]}
        ),
        _spec("victims", ["sex"], filters={"sex": ["female", "male"]}),
        _spec("victims", ["exploitation_country"], filters={"citizenship": ["NLD", "ROU", "UKR", "unknown"]}),
        _spec(
            "victims", ["age_band", "transit_country"], filters={"transit_country": ["unknown", "DEU", "POL"]}
        ),
        _spec("cases", ["citizenship"], filters={"exploitation_country": ["NLD"], "age_group": ["child"]}),
        _spec("cases", ["sex", "age_group"], filters={"age_group": ["unknown"]}),
        _spec("cases", [], filters={"perpetrator_role": ["RecruiterOrIntermediary"]}, years=[2021, 2023]),
        _spec("perpetrators", ["year"], filters={"citizenship": ["unknown", "NLD"]}, years=[2018, 2026]),
        _spec("victims", ["exploitation_type"], filters={"exploitation_type": ["ForcedLabour", "unknown"]}),
    ]
    return specs


def random_specs(records: Records, count: int, seed: int) -> list[QuerySpec]:
    """Random queries whose filters keep categories the records hold (and some they do not)."""
    rng, specs = random.Random(seed), []
    held: dict[str, set[str]] = defaultdict(set)
    for row in records.rows[:600]:
        for name in DIMENSIONS:
            if name != "year":
                held[name] |= values(records, name, row)
    while len(specs) < count:
        measure = rng.choice(["victims", "perpetrators", "cases"])
        names = _applicable(measure)
        dimensions = rng.sample(names, rng.choice([0, 1, 1, 2, 2, 2, 3]))
        filters = {}
        for name in rng.sample([n for n in names if n != "year"], rng.choice([0, 0, 1, 2])):
            pool = sorted(held[name] | set(rng.sample(DIMENSIONS[name].categories, 2)))
            filters[name] = rng.sample(pool, rng.randint(1, min(4, len(pool))))
        extra: dict[str, Any] = {"filters": filters}
        if "year" in dimensions or rng.random() < 0.3:
            first = rng.randint(2015, 2024)
            extra["years"] = [first, first + rng.randint(0, 6)]
        bounds = {"cells_per_unit": rng.randint(1, 6) if dimensions else 1}
        if measure == "cases":
            bounds["cases_per_person"] = rng.randint(1, 3)
        try:
            specs.append(_spec(measure, dimensions, bounds=bounds, **extra))
        except Exception:  # too many cells: draw again
            continue
    return specs


# ---- tests ------------------------------------------------------------------------------------


def _mismatches(node: NodeContext, specs: list[QuerySpec]) -> list[str]:
    records, frame = read_records(node), current_frame(node)
    wrong = []
    for spec in specs:
        counts = count_cells(frame, spec)
        assert counts.dtype == np.int64 and counts.shape == (spec.cells,)
        expected = reference_counts(records, spec)
        if counts.tolist() != expected:
            wrong.append(f"{spec.describe()} k={spec.cells_per_unit} C={spec.cases_per_person}")
    return wrong


def test_counts_equal_the_reference(node: NodeContext) -> None:
    records = read_records(node)
    specs = hand_specs() + random_specs(records, 120, seed=3)
    assert _mismatches(node, specs) == []
    # the oddities and bounds are exercised, not just present
    frame = current_frame(node)
    several = np.bincount(frame.row_person[frame.row_role == 0], minlength=frame.persons)
    assert (several > 1).sum() >= 20
    truncated = _spec("victims", ["means_of_control", "exploitation_type"], bounds={"cells_per_unit": 1})
    untruncated = _spec("victims", ["means_of_control", "exploitation_type"], bounds={"cells_per_unit": 32})
    assert count_cells(frame, truncated).sum() < count_cells(frame, untruncated).sum()
    one, two = (_spec("cases", ["sex"], bounds={"cells_per_unit": 3, "cases_per_person": c}) for c in (1, 2))
    assert count_cells(frame, one).sum() < count_cells(frame, two).sum()


def _rewrite_case(source: Path, target: Path) -> str:
    """The rows of the first case with three or more victims, its first victim left out and every
    exploitation country set to GRC: loading it replaces the case and removes that person."""
    with source.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_case: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_case[row["cas_CaseId"]].append(row)
    case_rows = next(r for r in by_case.values() if sum(x["role"] == "victim" for x in r) >= 3)
    dropped = next(r for r in case_rows if r["role"] == "victim")
    kept = [dict(r, hte_ExploitationCountry="GRC") for r in case_rows if r is not dropped]
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return dropped["prs_PersonId"]


def test_an_ingest_changes_the_version_and_the_counts(node: NodeContext, tmp_path: Path) -> None:
    before = prepare_frame(node)
    spec = _spec("victims", ["exploitation_country"], filters={"exploitation_country": ["GRC"]})
    grc_before = int(count_cells(current_frame(node), spec)[0])
    removed = _rewrite_case(tmp_path / "nld.csv", tmp_path / "change.csv")
    report = ingest_file(node, tmp_path / "change.csv")
    assert report.cases_updated == 1
    after = prepare_frame(node)
    assert after["rebuilt"] and after["version"] != before["version"]
    frame = current_frame(node)
    assert frame.version == after["version"] and frame.rows < before["rows"]
    assert int(count_cells(frame, spec)[0]) > grc_before
    with node.db.read() as session:
        assert session.scalar(select(Person.id).where(Person.person_id == removed)) is None
    assert _mismatches(node, [*hand_specs()[:40], spec]) == []
    assert len(list((node.settings.home / "cache").glob("query-frame-*.npz"))) == 1


def test_the_frame_is_kept_in_memory_and_on_disk(node: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    first = prepare_frame(node)
    assert first["rebuilt"] and first["rows"] > 0
    frame = current_frame(node)
    assert current_frame(node) is frame  # memory: same object
    stored = node.settings.home / "cache" / f"query-frame-{first['version']}.npz"
    assert stored.exists() and stored.stat().st_mode & 0o777 == 0o600

    def no_build(_node: NodeContext) -> None:
        raise AssertionError("the frame was built again")

    monkeypatch.setattr(frame_module, "build_frame", no_build)
    node.cache.pop(MEMORY_KEY)
    again = current_frame(node)
    assert again is not frame and again.version == frame.version
    for name, array in frame.arrays().items():
        assert np.array_equal(again.arrays()[name], array) and not again.arrays()[name].flags.writeable
    node.cache.pop(MEMORY_KEY)
    assert prepare_frame(node)["rebuilt"] is False
    stored.write_bytes(b"not a zip file")  # a damaged file is built again, not trusted
    node.cache.pop(MEMORY_KEY)
    with pytest.raises(AssertionError, match="built again"):
        current_frame(node)


def test_an_empty_store_counts_zero(make_home: Callable[..., Path], database_url: str | None) -> None:
    ctx = open_node(make_home("est", "EST", database_url=database_url))
    try:
        frame = current_frame(ctx)
        assert (frame.rows, frame.persons, frame.cases) == (0, 0, 0)
        for spec in hand_specs()[::7]:
            assert count_cells(frame, spec).tolist() == [0] * spec.cells
    finally:
        ctx.close()
