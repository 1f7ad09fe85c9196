"""Exact counts of a joint query, before noise: what each privacy unit adds to each cell, bounded.

This is the privacy contract of a release (spec.l2_sensitivity relies on it); every step below is
vectorised over the query frame (:mod:`node.query.frame`).

Values. Each case_person row r whose role fits the measure (victims: victim rows; perpetrators:
perpetrator rows; cases: both) has, per dimension d of the query (output and filtered), a value
set V_d(r) read from the frame: the case's registration year, the person's sex and citizenships,
the row's own fields, the countries of the row's route events of each type; missing, empty or
unrecognised values are ``unknown`` (sex: ``other_unknown``). With a year range, rows whose case
year is missing or outside it are left out before anything else (the year belongs to the case,
not to any person, so doing this first changes nothing any other person contributes).

Filters. For a filtered dimension V_d := V_d ∩ spec.filters[d]; an empty result drops the item.
The kept categories are exactly spec.categories(d), so output dimensions are restricted alike.

Victims and perpetrators: the unit is the person (``persons.id``). A row's cells are the product of
its V_d over spec.dimensions (row-major in spec.shape; no dimension: cell 0); a unit's cells are the
union over its rows, so a person in two cases counts once per distinct cell.

Cases: first each person keeps their first ``cases_per_person`` cases (by case id) among the rows
left (all roles); their rows in other cases are dropped. A case's set V_d(c) is the union of its
remaining rows' V_d(r), taken from victim rows only for victim-only dimensions (codebook measures ==
VICTIMS_ONLY), from perpetrator rows only for perpetrator_role, from every row otherwise; an empty
union is {unknown}. Then filters and the product as above, on the case's sets. A case with no
remaining row is not counted. Filters on a case's sets come after the cases-per-person cut on
purpose: a case's sets depend on its other persons, and a cut that looked at them would let one
person change which cases others count in.

Bound. A unit (person, or case) with more than ``cells_per_unit`` = k cells keeps the k whose
:func:`unit_cell_order` keys are smallest: a fixed pseudo-random choice by (unit id, cell) that
favours no category (for one unit the key is a bijection of the cell, so there are no ties). Each
kept (unit, cell) adds 1. Hence L2 sensitivity sqrt(k) for persons and cases_per_person * sqrt(2k)
for cases.

Cost at 1.17 million rows (one core): 15-250 ms a query, about 400 ms for three multi-valued
dimensions of cases; transient memory up to some 200 MB for the largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from node.query.frame import ROLE_CODES, Field, QueryFrame, unknown_code
from protocol.query.codebook import DIMENSIONS, PERPETRATORS_ONLY, VICTIMS_ONLY
from protocol.query.spec import QuerySpec

_GOLDEN, _MIX1, _MIX2 = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
)
_MEASURE_ROLE = {"victims": ROLE_CODES["victim"], "perpetrators": ROLE_CODES["perpetrator"]}


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea and Flood 2014) on uint64, wrapping."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    out: np.ndarray = z ^ (z >> np.uint64(31))
    return out


def unit_cell_order(unit_ids: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The truncation key of each (unit id, cell index) pair, uint64: a unit over its bound keeps
    its cells with the smallest keys. Depends on nothing else (no query, no other unit)."""
    units = np.atleast_1d(np.asarray(unit_ids)).astype(np.uint64)
    return _splitmix64(_splitmix64(units) ^ np.atleast_1d(np.asarray(cells)).astype(np.uint64))


def count_cells(frame: QueryFrame, spec: QuerySpec) -> np.ndarray:
    """The exact count of each cell of ``spec`` (int64, spec.cells long, in spec.cell_labels() order)."""
    if spec.measure == "cases":
        units, ids, cells = _case_cells(frame, spec)
        several = None
    else:
        units, ids, cells, several = _person_cells(frame, spec)
    return _bounded_counts(units, ids, cells, several, k=spec.cells_per_unit, size=spec.cells)


@dataclass(frozen=True)
class _Sets:
    """Per item (row or case) its values in one dimension as (item, kept category index) pairs,
    sorted by item; ``single`` when every item has exactly one (then ``item`` is 0..n-1)."""

    item: np.ndarray
    value: np.ndarray
    single: bool = False


def _lookup(spec: QuerySpec, dimension: str) -> np.ndarray:
    """Codebook code -> index among the query's categories of the dimension, or -1 if filtered out."""
    lookup = np.full(len(DIMENSIONS[dimension].categories), -1, np.int64)
    position = {c: i for i, c in enumerate(DIMENSIONS[dimension].categories)}
    for i, category in enumerate(spec.categories(dimension)):
        lookup[position[category]] = i
    return lookup


def _values(field: Field, items: np.ndarray, lookup: np.ndarray) -> _Sets:
    """The kept values of ``items`` (indexes at the field's level) in a code, mask or list field."""
    n = len(items)
    if field.kind == "code":
        value = lookup[field.values[items]]
        kept = value >= 0
        if kept.all():
            return _Sets(np.arange(n), value, single=True)
        return _Sets(np.flatnonzero(kept), value[kept])
    if field.kind == "mask":
        return _bits(field.values[items].astype(np.uint64)[:, None], lookup)
    assert field.offsets is not None, "a list field has offsets"
    start = field.offsets[items].astype(np.int64)
    counts = field.offsets[items + 1].astype(np.int64) - start
    item = np.repeat(np.arange(n), counts)
    value = lookup[
        field.values[np.arange(len(item)) + np.repeat(start - (np.cumsum(counts) - counts), counts)]
    ]
    kept = value >= 0
    return _Sets(item[kept], value[kept])


def _bits(masks: np.ndarray, lookup: np.ndarray) -> _Sets:
    """The set bits of each row of ``masks`` (n x words, uint64; bit b of word w is code 64w + b)
    that ``lookup`` keeps, in code order. One pass per set bit of the fullest word, each over the
    words with bits left: far cheaper than a boolean matrix of every item and category."""
    n, words = masks.shape
    keep = np.zeros(64 * words, np.uint64)
    keep[np.flatnonzero(lookup >= 0)] = 1
    kept = (keep.reshape(words, 64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    flat = (masks & kept).reshape(-1)  # item-major: an item's words in code order
    counts = np.bitwise_count(flat).astype(np.int64)
    value = np.empty(int(counts.sum()), np.int64)
    nonzero = np.flatnonzero(flat)
    mask, at = flat[nonzero], (np.cumsum(counts) - counts)[nonzero]
    base = 64 * (nonzero % words) if words > 1 else np.zeros(len(nonzero), np.int64)
    while len(mask):
        low = mask & (~mask + np.uint64(1))  # the lowest set bit; its index is popcount(low - 1)
        value[at] = lookup[base + np.bitwise_count(low - np.uint64(1)).astype(np.int64)]
        mask, at = mask ^ low, at + 1
        more = mask != 0
        mask, at, base = mask[more], at[more], base[more]
    total = counts.reshape(n, words).sum(axis=1)
    if (total == 1).all():
        return _Sets(np.arange(n), value, single=True)
    return _Sets(np.repeat(np.arange(n), total), value)


def _row_sets(frame: QueryFrame, spec: QuerySpec, dimension: str, rows: np.ndarray) -> _Sets:
    """V_d of each of ``rows`` (frame row indexes), filtered."""
    if dimension == "year":
        assert spec.years is not None, "a query by year has a year range"
        years = frame.fields["year"].values[frame.row_case[rows]]
        return _Sets(np.arange(len(rows)), years.astype(np.int64) - spec.years[0], single=True)
    field = frame.fields[dimension]
    return _values(field, _at_level(frame, field, rows), _lookup(spec, dimension))


def _at_level(frame: QueryFrame, field: Field, rows: np.ndarray) -> np.ndarray:
    """The items of the field's level (rows, persons or cases) that ``rows`` refer to."""
    found: np.ndarray = {"row": rows, "person": frame.row_person[rows], "case": frame.row_case[rows]}[
        field.level
    ]
    return found


def _has_any(sets: _Sets, n: int) -> np.ndarray:
    has = np.zeros(n, bool)
    has[sets.item] = True
    return has


def _product(
    alive: np.ndarray | None, dimensions: list[tuple[_Sets, int]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(item, cell) for every combination of the values of the n items (those ``alive``, if given)
    over the dimensions, row-major; ascending by item."""
    if not dimensions:
        item = np.arange(n) if alive is None else np.flatnonzero(alive)
        return item, np.zeros(len(item), np.int32)
    # int32 items and cells (cells < MAX_CELLS): the pairs are the largest arrays of a count
    item, cell = dimensions[0][0].item.astype(np.int32), dimensions[0][0].value.astype(np.int32)
    if alive is not None:
        item, cell = item[alive[item]], cell[alive[item]]
    for sets, size in dimensions[1:]:
        if sets.single:
            cell = cell * size + sets.value[item]
            continue
        counts = np.bincount(sets.item, minlength=n)
        repeats = counts[item]
        starts = np.cumsum(counts) - counts  # of each item's values in sets
        shift = starts[item] - (np.cumsum(repeats) - repeats)  # from a pair's first copy to its values
        index = np.arange(int(repeats.sum())) + np.repeat(shift, repeats)
        cell = np.repeat(cell * size, repeats) + sets.value[index]
        item = np.repeat(item, repeats)
    return item, cell


def _in_years(frame: QueryFrame, rows: np.ndarray, spec: QuerySpec) -> np.ndarray:
    if spec.years is None:
        return rows
    years = frame.fields["year"].values[frame.row_case[rows]]
    kept: np.ndarray = rows[(years >= spec.years[0]) & (years <= spec.years[1])]
    return kept


def _filter_only(spec: QuerySpec) -> list[str]:
    return [d for d in spec.filters if d not in spec.dimensions]


def _person_cells(
    frame: QueryFrame, spec: QuerySpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each (person index, cell) of the rows that fit; and which need merging (persons of several rows)."""
    rows = _in_years(frame, np.flatnonzero(frame.row_role == _MEASURE_ROLE[spec.measure]), spec)
    for dimension in _filter_only(spec):
        rows = rows[_has_any(_row_sets(frame, spec, dimension, rows), len(rows))]
    dimensions = [(_row_sets(frame, spec, d, rows), len(spec.categories(d))) for d in spec.dimensions]
    item, cells = _product(None, dimensions, len(rows))
    persons = frame.row_person[rows]
    several = np.bincount(persons, minlength=frame.persons)[persons] > 1
    return persons[item], frame.person_ids, cells, several[item]


def _first_cases(frame: QueryFrame, rows: np.ndarray, limit: int) -> np.ndarray:
    """The rows of each person's first ``limit`` cases (rows are by person, then case id)."""
    persons = frame.row_person[rows]
    first = np.flatnonzero(np.r_[True, persons[1:] != persons[:-1]]) if len(rows) else np.zeros(0, np.int64)
    rank = np.arange(len(rows)) - np.repeat(first, np.diff(np.r_[first, len(rows)]))
    kept: np.ndarray = rows[rank < limit]
    return kept


def _case_sets(
    frame: QueryFrame,
    spec: QuerySpec,
    dimension: str,
    rows: np.ndarray,
    case_of_row: np.ndarray,
    cases: np.ndarray,
) -> _Sets:
    """V_d of each case (``cases`` index the frame's): the union over its rows of the role the
    dimension reads (victim rows for victim-only dimensions, perpetrator rows for perpetrator_role);
    empty: unknown. Values unite as bitmasks (codes and masks have at most 32 categories)."""
    n, lookup = len(cases), None if dimension == "year" else _lookup(spec, dimension)
    if lookup is None:  # every row of a case has the case's year
        assert spec.years is not None, "a query by year has a year range"
        return _Sets(np.arange(n), frame.fields["year"].values[cases].astype(np.int64) - spec.years[0], True)
    measures, roles = DIMENSIONS[dimension].measures, frame.row_role[rows]
    if measures in (VICTIMS_ONLY, PERPETRATORS_ONLY):
        role = ROLE_CODES["victim" if measures == VICTIMS_ONLY else "perpetrator"]
        source = np.flatnonzero(roles == role)
        rows, case_of_row = rows[source], case_of_row[source]
    field, empty = frame.fields[dimension], np.bincount(case_of_row, minlength=n) == 0
    if field.kind != "list":
        raw = field.values[_at_level(frame, field, rows)].astype(np.uint64)
        union = np.zeros(n, np.uint64)
        np.bitwise_or.at(
            union, case_of_row, np.left_shift(np.uint64(1), raw) if field.kind == "code" else raw
        )
        union[empty] = np.uint64(1 << unknown_code(dimension))
        return _bits(union[:, None], lookup)
    # a list (at most 255 categories): unite the kept values ((∪V) ∩ F = ∪(V ∩ F)) as bitmasks
    size, sets = len(spec.categories(dimension)), _values(field, _at_level(frame, field, rows), lookup)
    words = (size + 63) // 64
    union = np.zeros(n * words, np.uint64)
    at = case_of_row[sets.item] * words + sets.value // 64
    np.bitwise_or.at(union, at, np.left_shift(np.uint64(1), (sets.value % 64).astype(np.uint64)))
    unknown = lookup[unknown_code(dimension)]
    if unknown >= 0:
        union[np.flatnonzero(empty) * words + unknown // 64] |= np.uint64(1 << int(unknown % 64))
    return _bits(union.reshape(n, words), np.arange(64 * words))


def _case_cells(frame: QueryFrame, spec: QuerySpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (case, cell) after the cases-per-person cut, cases as indexes into the ids returned."""
    rows = _first_cases(frame, _in_years(frame, np.arange(frame.rows), spec), spec.cases_per_person)
    present = np.zeros(frame.cases, bool)
    present[frame.row_case[rows]] = True
    cases = np.flatnonzero(present)  # the cases left, numbered 0..n-1 in id order
    case_of_row = (np.cumsum(present) - 1)[frame.row_case[rows]]
    needed = (*spec.dimensions, *_filter_only(spec))
    sets = {d: _case_sets(frame, spec, d, rows, case_of_row, cases) for d in needed}
    alive = np.ones(len(cases), bool)
    for dimension in _filter_only(spec):
        alive &= _has_any(sets[dimension], len(cases))
    dimensions = [(sets[d], len(spec.categories(d))) for d in spec.dimensions]
    item, cells = _product(alive, dimensions, len(cases))
    return item, frame.case_ids[cases], cells


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (np.unique's hash path is slower on large int64 arrays)."""
    keys = np.sort(keys)
    distinct: np.ndarray = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return distinct


def _bounded_counts(
    units: np.ndarray, ids: np.ndarray, cells: np.ndarray, several: np.ndarray | None, *, k: int, size: int
) -> np.ndarray:
    """Count each distinct (unit, cell) once, at most k cells a unit by unit_cell_order.

    ``units`` index ``ids``; ``several`` marks the pairs that may repeat (units of several rows),
    the only ones that need the sort that finds distinct pairs."""
    if several is not None and several.any():
        merged = _distinct(units[several].astype(np.int64) * size + cells[several])
        units = np.concatenate([units[~several], merged // size])
        cells = np.concatenate([cells[~several], merged % size])
    over = np.bincount(units, minlength=len(ids))[units] > k
    kept = [cells[~over]]
    if over.any():
        unit, cell = units[over], cells[over]
        kept.append(cell[_smallest(unit_cell_order(ids[unit], cell), unit, k)])
    return np.bincount(np.concatenate(kept), minlength=size).astype(np.int64)


def _smallest(keys: np.ndarray, units: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys of each unit (each unit has more than k, all distinct:
    unit_cell_order is a bijection of the cell for a fixed unit, so no tie needs breaking).

    A unit's keys go in one row of a table as wide as the next power of two (padded with the
    largest key, never among the k smallest), one table per width; np.argpartition picks per row.
    Far faster than sorting by (unit, key) with np.lexsort."""
    starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
    if len(starts) != np.count_nonzero(np.bincount(units)):  # a unit's pairs are not together
        order = np.argsort(units, kind="stable")
        chosen: np.ndarray = order[_smallest(keys[order], units[order], k)]
        return chosen
    sizes = np.diff(np.r_[starts, len(units)])
    group, width = np.repeat(np.arange(len(starts)), sizes), 1 << np.ceil(np.log2(sizes)).astype(np.int64)
    column = np.arange(len(units)) - np.repeat(starts, sizes)
    found = []
    for w in np.unique(width):
        groups = np.flatnonzero(width == w)
        row = np.zeros(len(starts), np.int64)
        row[groups] = np.arange(len(groups))
        mine = np.flatnonzero(width[group] == w)
        table = np.full((len(groups), int(w)), np.iinfo(np.uint64).max, np.uint64)
        table[row[group[mine]], column[mine]] = keys[mine]
        found.append((starts[groups][:, None] + np.argpartition(table, k - 1, axis=1)[:, :k]).ravel())
    return np.concatenate(found)
