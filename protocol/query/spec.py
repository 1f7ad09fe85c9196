"""A joint query's specification: parsing and validation, its canonical form and hash, its cells.

A query is JSON, never code. A node builds its measurement from a :class:`QuerySpec` it parsed
itself; nothing in a specification is executed. Everything not listed here is refused with a
clear error (code ``invalid_query``).

    {"measure": "victims",
     "dimensions": ["citizenship", "exploitation_country"],
     "filters": {"exploitation_group": ["forced_labour"], "sex": ["female"]},
     "years": [2019, 2024],
     "privacy": {"rho": "0.05"},                    # or {"epsilon": 1.0, "delta": 1e-7}
     "bounds": {"cells_per_unit": 5},               # optional; "cases_per_person" for cases
     "title": "Flows of women into forced labour"}  # optional, stays on the analyst's node

The wire form (:meth:`QuerySpec.to_wire`) is canonical: filters in codebook order, a filter that
keeps every category dropped, rho as a decimal string, bounds explicit, no title. Its SHA-256 is
the query's hash: the same question gets the same hash, so a node's release cache can answer it
again without fresh noise; a title never changes it.

Contributions are bounded per privacy unit, the person (SPEC 13.3):

* victims, perpetrators: a person adds 1 to each of at most ``cells_per_unit`` distinct cells,
  so the L2 sensitivity is sqrt(cells_per_unit);
* cases: a person counts in at most ``cases_per_person`` cases, and a case adds 1 to at most
  ``cells_per_unit`` cells; removing a person can move each of its cases from one set of cells to
  another, so the L2 sensitivity is cases_per_person * sqrt(2 * cells_per_unit).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from protocol.canonical import canonical_json, sha256_hex
from protocol.errors import MalformedError
from protocol.query.codebook import DIMENSIONS, MEASURES
from protocol.query.privacy import InvalidLoss, format_rho, parse_rho, rho_from_epsilon

SPEC_VERSION = 1
MAX_DIMENSIONS = 3
MAX_CELLS = 100_000  # a larger table is refused: restrict a dimension with a filter
YEAR_RANGE = (1900, 2100)
MAX_YEAR_SPAN = 50
MAX_CELLS_PER_UNIT = 32
MAX_CASES_PER_PERSON = 8
MAX_TITLE = 200
_KEYS = {"version", "measure", "dimensions", "filters", "years", "privacy", "bounds", "title"}
_WIRE_KEYS = {"version", "measure", "dimensions", "filters", "years", "privacy", "bounds"}


class InvalidQuery(MalformedError):
    code = "invalid_query"


@dataclass(frozen=True)
class QuerySpec:
    """A validated query. Build it with :func:`parse_spec` (from a file or an API) or :func:`parse_wire`."""

    measure: str
    dimensions: tuple[str, ...]
    filters: Mapping[str, tuple[str, ...]]  # dimension -> the categories kept, in codebook order
    years: tuple[int, int] | None
    rho_nano: int
    cells_per_unit: int
    cases_per_person: int  # 1 except for the cases measure
    title: str = ""
    _categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    # ---- cells ----

    def categories(self, dimension: str) -> tuple[str, ...]:
        """The categories of ``dimension`` in this query's table: the codebook's, or the years, kept by filters."""
        found = self._categories.get(dimension)
        if found is None:
            found = _categories_of(dimension, self.filters, self.years)
        return found

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.categories(d)) for d in self.dimensions)

    @property
    def cells(self) -> int:
        return math.prod(self.shape)

    def cell_labels(self) -> Iterator[tuple[str, ...]]:
        """Each cell's categories, in release order (row-major over the dimensions as given)."""
        return product(*(self.categories(d) for d in self.dimensions))

    # ---- privacy ----

    @property
    def l2_sensitivity(self) -> float:
        if self.measure == "cases":
            return self.cases_per_person * math.sqrt(2 * self.cells_per_unit)
        return math.sqrt(self.cells_per_unit)

    @property
    def rho(self) -> str:
        return format_rho(self.rho_nano)

    # ---- forms ----

    def to_wire(self) -> dict[str, Any]:
        """The canonical specification that travels to peers and that the hash covers (no title)."""
        bounds: dict[str, int] = {"cells_per_unit": self.cells_per_unit}
        if self.measure == "cases":
            bounds["cases_per_person"] = self.cases_per_person
        return {
            "version": SPEC_VERSION,
            "measure": self.measure,
            "dimensions": list(self.dimensions),
            "filters": {name: list(values) for name, values in sorted(self.filters.items())},
            "years": list(self.years) if self.years else None,
            "privacy": {"rho": self.rho},
            "bounds": bounds,
        }

    def to_dict(self) -> dict[str, Any]:
        """The wire form plus the title: what the analyst's node stores."""
        return {**self.to_wire(), "title": self.title}

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_json(self.to_wire()))

    def describe(self) -> str:
        """One line for people: "victims by citizenship x exploitation_country, 2019-2024, rho 0.05"."""
        by = " x ".join(self.dimensions) or "total"
        years = f", {self.years[0]}-{self.years[1]}" if self.years else ""
        filters = "".join(f", {k} in {{{','.join(v)}}}" for k, v in sorted(self.filters.items()))
        return f"{self.measure} by {by}{years}{filters}, rho {self.rho}"


def _categories_of(
    dimension: str, filters: Mapping[str, tuple[str, ...]], years: tuple[int, int] | None
) -> tuple[str, ...]:
    if dimension == "year":
        assert years is not None, "a query with a year dimension has a year range"
        return tuple(str(y) for y in range(years[0], years[1] + 1))
    kept = filters.get(dimension)
    return kept if kept is not None else DIMENSIONS[dimension].categories


def default_cells_per_unit(measure: str, dimensions: tuple[str, ...]) -> int:
    """1 for a total; else 1 + 2 per dimension in which one unit may hold several values.

    For the cases measure every dimension but the year may (a case's persons differ).
    """
    multi = sum(1 for d in dimensions if DIMENSIONS[d].multi or (measure == "cases" and d != "year"))
    return min(MAX_CELLS_PER_UNIT, 1 + 2 * multi)


def _fail(message: str) -> InvalidQuery:
    return InvalidQuery(message)


def parse_spec(obj: Any, *, default_delta: float = 1e-7) -> QuerySpec:
    """Validate a specification written by an analyst (a file, the REST API).

    Accepts rho as a decimal string or number, or epsilon with delta (converted to rho), and
    bounds left out (defaults). Raises InvalidQuery naming the first thing wrong.
    """
    if not isinstance(obj, Mapping):
        raise _fail("a query specification is a JSON object")
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise _fail(
            f"unknown field(s) {', '.join(map(str, unknown))[:200]}; a query has {', '.join(sorted(_KEYS))}"
        )
    version = obj.get("version", SPEC_VERSION)
    if version != SPEC_VERSION or isinstance(version, bool):
        raise _fail(f"version: this node reads version {SPEC_VERSION}")
    measure = obj.get("measure")
    if measure not in MEASURES:
        raise _fail(f"measure: expected one of {', '.join(MEASURES)}")
    dimensions = _dimensions(obj.get("dimensions", []), measure)
    years = _years(obj.get("years"), dimensions)
    filters = _filters(obj.get("filters", {}), measure)
    rho_nano = _privacy(obj.get("privacy"), default_delta)
    cells_per_unit, cases_per_person = _bounds(obj.get("bounds", {}), measure, dimensions)
    title = obj.get("title", "")
    if not isinstance(title, str) or len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
        raise _fail(f"title: expected one line of text, at most {MAX_TITLE} characters")
    categories = {d: _categories_of(d, filters, years) for d in dimensions}
    for name, values in categories.items():
        if not values:
            raise _fail(f"dimension {name}: the filters keep none of its categories")
    cells = math.prod(len(v) for v in categories.values())
    if cells > MAX_CELLS:
        raise _fail(
            f"the table would have {cells:,} cells (at most {MAX_CELLS:,}); keep fewer categories with a filter"
        )
    return QuerySpec(
        measure, dimensions, filters, years, rho_nano, cells_per_unit, cases_per_person, title, categories
    )


def parse_wire(obj: Any) -> QuerySpec:
    """Validate a specification received from a peer: it must be exactly the canonical wire form."""
    if not isinstance(obj, Mapping) or set(obj) != _WIRE_KEYS:
        raise _fail(f"a query on the wire has exactly the fields {', '.join(sorted(_WIRE_KEYS))}")
    if not isinstance(obj.get("privacy"), Mapping) or set(obj["privacy"]) != {"rho"}:
        raise _fail("privacy: on the wire a query names rho only")
    if not isinstance(obj["privacy"]["rho"], str):
        raise _fail("privacy.rho: on the wire rho is a decimal string")
    spec = parse_spec(obj)
    if spec.to_wire() != dict(obj):
        raise _fail("the specification is not in canonical form (order filters as the codebook does)")
    return spec


def _dimensions(value: Any, measure: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise _fail("dimensions: expected a list of dimension names")
    if len(value) > MAX_DIMENSIONS:
        raise _fail(f"dimensions: at most {MAX_DIMENSIONS}, got {len(value)}")
    if len(set(value)) != len(value):
        raise _fail("dimensions: a dimension is named twice")
    for name in value:
        _check_dimension(name, measure, "dimensions")
    return tuple(value)


def _check_dimension(name: str, measure: str, where: str) -> None:
    dimension = DIMENSIONS.get(name)
    if dimension is None:
        raise _fail(f"{where}: unknown dimension {name[:40]!r}; see docs/queries.md for the codebooks")
    if measure not in dimension.measures:
        raise _fail(
            f"{where}: {name} does not apply to {measure} (it applies to {', '.join(sorted(dimension.measures))})"
        )


def _years(value: Any, dimensions: tuple[str, ...]) -> tuple[int, int] | None:
    if value is None:
        if "year" in dimensions:
            raise _fail('years: a query by year needs a year range, e.g. "years": [2019, 2024]')
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(y, int) and not isinstance(y, bool) for y in value)
    ):
        raise _fail("years: expected [first, last], two whole years")
    first, last = value
    if not (YEAR_RANGE[0] <= first <= last <= YEAR_RANGE[1]):
        raise _fail(f"years: expected {YEAR_RANGE[0]} <= first <= last <= {YEAR_RANGE[1]}")
    if last - first + 1 > MAX_YEAR_SPAN:
        raise _fail(f"years: at most {MAX_YEAR_SPAN} years")
    return first, last


def _filters(value: Any, measure: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise _fail("filters: expected an object of dimension -> list of categories")
    filters: dict[str, tuple[str, ...]] = {}
    for name, wanted in value.items():
        if not isinstance(name, str):
            raise _fail("filters: keys are dimension names")
        if name == "year":
            raise _fail('filters: filter years with "years": [first, last]')
        _check_dimension(name, measure, "filters")
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list) or not wanted or not all(isinstance(v, str) for v in wanted):
            raise _fail(f"filters.{name}: expected a non-empty list of categories")
        categories = DIMENSIONS[name].categories
        unknown = [v for v in wanted if v not in categories]
        if unknown:
            raise _fail(f"filters.{name}: {unknown[0][:40]!r} is not one of its categories (docs/queries.md)")
        kept = tuple(c for c in categories if c in set(wanted))
        if len(kept) < len(categories):  # a filter that keeps everything is no filter
            filters[name] = kept
    return filters


def _privacy(value: Any, default_delta: float) -> int:
    if not isinstance(value, Mapping):
        raise _fail('privacy: expected {"rho": "0.05"} or {"epsilon": 1.0, "delta": 1e-7}')
    try:
        if set(value) == {"rho"}:
            return parse_rho(value["rho"], what="privacy.rho")
        if set(value) in ({"epsilon"}, {"epsilon", "delta"}):
            epsilon, delta = value["epsilon"], value.get("delta", default_delta)
            if isinstance(epsilon, bool) or isinstance(delta, bool):
                raise InvalidLoss("privacy: epsilon and delta are numbers")
            return rho_from_epsilon(epsilon, delta)
    except InvalidLoss as e:
        raise _fail(e.message) from e
    raise _fail('privacy: expected {"rho": "0.05"} or {"epsilon": 1.0, "delta": 1e-7}')


def _bounds(value: Any, measure: str, dimensions: tuple[str, ...]) -> tuple[int, int]:
    if not isinstance(value, Mapping):
        raise _fail("bounds: expected an object")
    allowed = {"cells_per_unit", "cases_per_person"} if measure == "cases" else {"cells_per_unit"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"bounds: unknown field(s) {', '.join(map(str, unknown))[:100]} for {measure}")
    cells = value.get("cells_per_unit", default_cells_per_unit(measure, dimensions))
    cases = value.get("cases_per_person", 1)
    for name, number, top in (
        ("cells_per_unit", cells, MAX_CELLS_PER_UNIT),
        ("cases_per_person", cases, MAX_CASES_PER_PERSON),
    ):
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= top:
            raise _fail(f"bounds.{name}: expected a whole number from 1 to {top}")
    if not dimensions and cells != 1:
        raise _fail("bounds.cells_per_unit: a total has one cell, so the bound is 1")
    return cells, cases
