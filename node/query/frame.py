"""The query frame: the case records as numpy arrays, in the shape joint queries count from.

Counting a query (:mod:`node.query.count`) needs, per ``case_persons`` row, every value any
dimension of ``protocol.query.codebook`` reads. Reading them from SQL per query would take seconds
at a national node's size (about a million persons); the frame holds them once, as codes into the
codebook's own categories, so that a query is a few vectorised passes.

Layout (every row is one person in one case; rows sorted by person, then case id):

* ``row_person``, ``row_case``: indexes into ``person_ids`` and ``case_ids`` (``persons.id`` and
  ``cases.id``, ascending); ``row_role``: 0 victim, 1 perpetrator, 2 anything else (never counted).
* ``fields[dimension]``, one :class:`Field` per dimension, at the level the value lives on: the year
  on the case, sex and citizenship on the person, the rest on the row. A single-valued dimension is
  one code per item; a multi-valued one with few categories a bitmask per item; citizenship and the
  route countries a CSR list (``offsets`` + codes). Codes index ``DIMENSIONS[d].categories``.
* Every item has at least one value: a missing or empty field is ``unknown`` (``other_unknown`` for
  sex), and so is any stored value outside the dimension's categories (defensive: ingest checks
  values). A route event with no country stands for an unknown country; a row without events of a
  type has the unknown country for it. An exploitation type outside the codebook has an unknown
  group. The year is the raw registration year, 0 when missing.

At a million persons the frame takes some 64 MB, is built from the database in 7-9 s (every table
read in one snapshot, in id order, through the driver's cursor) and loads from disk in under 0.1 s.
It is built once per data version and kept in the process (``node.cache``) and on disk,
``HOME/cache/query-frame-<version>.npz`` (mode 0600: it holds per-person attributes, pseudonymous
by database id), written to a temporary file and renamed, older frames removed. The version is a
digest of FORMAT, the database and a few aggregates read by one small query (rows and last id of
``case_persons``, last id and update of ``persons``, last ingest load and its end): only ingest
changes records (node.services.ingest), and every load adds an ``ingest_loads`` row, so a load that
replaces or removes rows changes the version too. A change made by hand in the database may not;
``prepare_frame(node, force=True)`` rebuilds regardless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, String, Table, cast, func, select
from sqlalchemy.engine import make_url

from node.matching.gcpause import gc_paused
from node.services.records import CASES, EVENTS, LINKS, PERSONS
from node.storage.db import READ_ONLY
from node.storage.models.records import IngestLoad
from protocol.query.codebook import (
    DIMENSIONS,
    EXPLOITATION_GROUP_OF,
    UNKNOWN,
    age_band_of,
    age_group_of,
    sex_of,
)

if TYPE_CHECKING:
    from node.context import NodeContext

FORMAT = 1  # bump when the layout or the reading of values changes: old files are then ignored
MEMORY_KEY = "query_frame"
CACHE_DIR, PREFIX, SUFFIX = "cache", "query-frame-", ".npz"
STREAM_ROWS = 50_000
ROLE_CODES = {"victim": 0, "perpetrator": 1}
OTHER_ROLE = 2
EVENT_FIELDS = {"Recruitment": "recruitment_country", "Transit": "transit_country", "Exploitation": "exploitation_country"}  # fmt: skip
# dimension -> (level, kind); kinds: code (one per item), mask (bits), list (CSR), year (raw year)
LAYOUT: Mapping[str, tuple[str, str]] = {
    "year": ("case", "year"), "sex": ("person", "code"), "age_group": ("row", "code"),
    "age_band": ("row", "code"), "citizenship": ("person", "list"),
    **{name: ("row", "list") for name in EVENT_FIELDS.values()},
    "exploitation_type": ("row", "mask"), "exploitation_group": ("row", "mask"), "sector": ("row", "code"),
    "means_of_control": ("row", "mask"), "recruitment_method": ("row", "mask"),
    "recruiter_relationship": ("row", "code"), "perpetrator_role": ("row", "mask"),
}  # fmt: skip
# case_persons columns read, each with the dimensions it feeds (a JSON list for the mask kinds)
ROW_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("age_when_trafficked", ("age_group", "age_band")), ("forced_labour_industry", ("sector",)),
    ("relationship_to_trafficker", ("recruiter_relationship",)),
    ("type_of_exploitation", ("exploitation_type", "exploitation_group")),
    ("methods_of_control", ("means_of_control",)), ("method_of_recruitment", ("recruitment_method",)),
    ("role_in_process", ("perpetrator_role",)),
)  # fmt: skip
ARRAYS = ("person_ids", "case_ids", "row_person", "row_case", "row_role")
ROW_DIMENSIONS = tuple(d for _, dims in ROW_COLUMNS for d in dims)
_build_lock = threading.Lock()
log = logging.getLogger("palermo.query")
_INDEX = {name: {c: i for i, c in enumerate(d.categories)} for name, d in DIMENSIONS.items()}


def unknown_code(dimension: str) -> int:
    """The code of the category a missing value takes (sex has ``other_unknown``)."""
    return DIMENSIONS[dimension].categories.index("other_unknown" if dimension == "sex" else UNKNOWN)


@dataclass(frozen=True)
class Field:
    """One dimension's values: per item a code, a bitmask, or (``offsets``) a list of codes."""

    level: str  # row | person | case
    kind: str  # code | mask | list | year
    values: np.ndarray
    offsets: np.ndarray | None = None  # list: item i holds values[offsets[i]:offsets[i + 1]]


@dataclass(frozen=True)
class QueryFrame:
    """The case records as arrays (see the module docstring). Immutable: arrays are read-only."""

    version: str
    person_ids: np.ndarray
    case_ids: np.ndarray
    row_person: np.ndarray
    row_case: np.ndarray
    row_role: np.ndarray
    fields: Mapping[str, Field]

    @property
    def rows(self) -> int:
        return len(self.row_person)

    @property
    def persons(self) -> int:
        return len(self.person_ids)

    @property
    def cases(self) -> int:
        return len(self.case_ids)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by a flat name, as stored on disk."""
        out = {name: getattr(self, name) for name in ARRAYS}
        for name, field in self.fields.items():
            out[name] = field.values
            if field.offsets is not None:
                out[f"{name}.offsets"] = field.offsets
        return out

    @classmethod
    def from_arrays(cls, version: str, arrays: Mapping[str, np.ndarray]) -> QueryFrame:
        """The frame of :meth:`arrays`, made read-only; raises KeyError when one is missing."""
        for array in arrays.values():
            array.flags.writeable = False
        fields = {
            name: Field(level, kind, arrays[name], arrays[f"{name}.offsets"] if kind == "list" else None)
            for name, (level, kind) in LAYOUT.items()
        }
        person_ids, case_ids, row_person, row_case, row_role = (arrays[name] for name in ARRAYS)
        return cls(version, person_ids, case_ids, row_person, row_case, row_role, MappingProxyType(fields))


# ---- values -----------------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """A JSON list column as stored: text (SQLite, or cast on PostgreSQL), a list, or NULL."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [None]  # unreadable: one unknown value
    return list(value) if isinstance(value, list | tuple) else [value]


def _codes(dimension: str, values: list[Any]) -> tuple[int, ...]:
    """The distinct codes of stored values, ascending; unknown for a stranger or for none."""
    index = _INDEX[dimension]
    if dimension == "exploitation_group":
        values = [EXPLOITATION_GROUP_OF.get(v, UNKNOWN) if isinstance(v, str) else None for v in values]
    unknown = unknown_code(dimension)
    found = {index.get(v, unknown) if isinstance(v, str) else unknown for v in values}
    return tuple(sorted(found)) or (unknown,)


def _dtype(bits: int) -> type[np.unsignedinteger[Any]]:
    """The narrowest unsigned type with ``bits`` bits."""
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if bits <= 8 * np.dtype(t).itemsize)


def _item_dtype(dimension: str) -> type[np.unsignedinteger[Any]]:
    """A code (its index) or a mask (one bit a category) of the dimension's categories."""
    count = len(DIMENSIONS[dimension].categories)
    return _dtype(count) if LAYOUT[dimension][1] == "mask" else _dtype(max(1, (count - 1).bit_length()))


class _Converter:
    """Stored values of one column to per-item results, each distinct value converted once."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert, self.memo = convert, dict[Any, Any]()

    def __call__(self, values: Sequence[Any]) -> list[Any]:
        memo = self.memo
        try:
            return [memo[v] for v in values]
        except (KeyError, TypeError):
            pass
        try:
            return [memo[v] if v in memo else self.one(v) for v in values]
        except TypeError:  # lists, from a driver that parses JSON
            return [self.one(v) for v in values]

    def one(self, value: Any) -> Any:
        key = tuple(value) if isinstance(value, list) else value
        if key not in self.memo:
            self.memo[key] = self.convert(value)
        return self.memo[key]


def _converter(dimension: str) -> _Converter:
    """Stored value -> code or mask of a row or person dimension."""
    if dimension == "sex":
        return _Converter(lambda g: _codes("sex", [sex_of(g if isinstance(g, str) else None)])[0])
    if dimension in ("age_group", "age_band"):
        group = age_group_of if dimension == "age_group" else age_band_of
        return _Converter(lambda a: _codes(dimension, [group(_age(a))])[0])
    if LAYOUT[dimension][1] == "mask":
        return _Converter(lambda v: sum(1 << c for c in _codes(dimension, _items(v))))
    return _Converter(lambda v: _codes(dimension, [v])[0])


class FrameBuilder:
    """Assembles a :class:`QueryFrame` from the tuples the database gives, in non-empty batches (no I/O).

    Persons ``(id, gender, citizenship)``, cases ``(id, registration_year)`` and rows ``(id,
    case_id, person_id, role, *ROW_COLUMNS)`` come in ascending id; events ``(case_person_id,
    type, country)`` in any order. JSON lists may come as text or as lists. Rows whose person or
    case is not there, and events whose row is not, are left out (a consistent snapshot has none).
    """

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}
        self.convert = {d: _converter(d) for d in ("sex", *ROW_DIMENSIONS)}
        self.citizenship = _Converter(lambda v: _codes("citizenship", _items(v)))
        self.country = _Converter(lambda c: _codes("exploitation_country", [c])[0])  # every route field's
        self.role = _Converter(lambda r: ROLE_CODES.get(r, OTHER_ROLE))
        self.event = _Converter(lambda t: [*EVENT_FIELDS, t].index(t))  # 3: another type, never read

    def _add(self, name: str, values: Sequence[Any], dtype: Any) -> None:
        self.parts.setdefault(name, []).append(np.array(values, dtype=dtype))

    def add_persons(self, batch: Sequence[Sequence[Any]]) -> None:
        ids, genders, citizenships = zip(*batch, strict=True)
        self._add("person_ids", ids, np.int64)
        self._add("sex", self.convert["sex"](genders), _item_dtype("sex"))
        found: list[tuple[int, ...]] = self.citizenship(citizenships)
        self._add("citizenship.counts", [len(codes) for codes in found], np.uint8)
        self._add("citizenship", list(chain.from_iterable(found)), _item_dtype("citizenship"))

    def add_cases(self, batch: Sequence[Sequence[Any]]) -> None:
        ids, years = zip(*batch, strict=True)
        self._add("case_ids", ids, np.int64)
        self._add("year", [y if isinstance(y, int) and 0 < y < 32768 else 0 for y in years], np.int16)

    def add_rows(self, batch: Sequence[Sequence[Any]]) -> None:
        ids, cases, persons, roles, *columns = zip(*batch, strict=True)
        for name, values in (("row_ids", ids), ("row_case_ids", cases), ("row_person_ids", persons)):
            self._add(name, values, np.int64)
        self._add("row_role", self.role(roles), np.uint8)
        for (_, dimensions), values in zip(ROW_COLUMNS, columns, strict=True):
            for name in dimensions:
                self._add(name, self.convert[name](values), _item_dtype(name))

    def add_events(self, batch: Sequence[Sequence[Any]]) -> None:
        rows, types, countries = zip(*batch, strict=True)
        self._add("event_rows", rows, np.int64)
        self._add("event_types", self.event(types), np.uint8)
        self._add("event_countries", self.country(countries), _item_dtype("exploitation_country"))

    def _take(self, name: str, dtype: Any = np.int64) -> np.ndarray:
        parts = self.parts.pop(name, None)  # freed as taken: a build holds each array about once
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    def finish(self, version: str) -> QueryFrame:
        """The frame; raises ValueError when persons, cases or rows did not come in ascending id."""
        person_ids, case_ids, row_ids = (self._take(n) for n in ("person_ids", "case_ids", "row_ids"))
        if any(np.any(np.diff(ids) <= 0) for ids in (person_ids, case_ids, row_ids)):
            raise ValueError("the query frame needs persons, cases and rows in ascending id")
        person, person_ok = _index(person_ids, self._take("row_person_ids"))
        case, case_ok = _index(case_ids, self._take("row_case_ids"))
        kept = np.flatnonzero(person_ok & case_ok)
        order = kept[np.lexsort((case[kept], person[kept]))]  # by person, then case id
        position = np.full(len(row_ids), -1, np.int64)
        position[order] = np.arange(len(order))
        arrays = {"person_ids": person_ids, "case_ids": case_ids, "year": self._take("year", np.int16)}
        arrays.update(row_person=person[order].astype(np.int32), row_case=case[order].astype(np.int32))
        arrays["row_role"] = self._take("row_role", np.uint8)[order]
        for name in ("sex", "citizenship", *ROW_DIMENSIONS):
            values = self._take(name, _item_dtype(name))
            arrays[name] = values if LAYOUT[name][0] == "person" else values[order]
        arrays["citizenship.offsets"] = _offsets(self._take("citizenship.counts"))
        at, found = _index(row_ids, self._take("event_rows"))
        at = np.where(found, position[np.where(found, at, 0)], -1)
        types, countries = self._take("event_types", np.uint8), self._take("event_countries")
        for t, name in enumerate(EVENT_FIELDS.values()):
            mine = (types == t) & (at >= 0)
            arrays[name], arrays[f"{name}.offsets"] = _csr(at[mine], countries[mine], len(order), name)
        return QueryFrame.from_arrays(version, arrays)


def _age(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _index(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``wanted`` in the ascending ``ids``, and whether each is there."""
    at = np.searchsorted(ids, wanted)
    found = at < len(ids)
    found[found] = ids[at[found]] == wanted[found]
    return at, found


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets.astype(np.uint32) if offsets[-1] < 2**32 else offsets


def _csr(items: np.ndarray, codes: np.ndarray, count: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Each item's distinct codes, ascending, as (values, offsets); an item without any gets unknown."""
    size = len(DIMENSIONS[name].categories)
    empty = np.flatnonzero(np.bincount(items, minlength=count) == 0)
    keys = np.sort(np.concatenate([items * size + codes, empty * size + unknown_code(name)]))
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys  # distinct
    return (keys % size).astype(_item_dtype(name)), _offsets(np.bincount(keys // size, minlength=count))


# ---- the database -----------------------------------------------------------------------------


def _version_query() -> Any:
    loads = IngestLoad.__table__
    assert isinstance(loads, Table)
    return select(
        select(func.count()).select_from(LINKS).scalar_subquery(),
        select(func.max(LINKS.c.id)).scalar_subquery(),
        select(func.max(PERSONS.c.id)).scalar_subquery(),
        select(func.max(PERSONS.c.updated_at)).scalar_subquery(),
        select(func.max(loads.c.id)).scalar_subquery(),
        select(func.max(loads.c.finished_at)).scalar_subquery(),
    )


def data_version(connection: Connection) -> str:
    """The version of the records the connection sees: FORMAT, the database, and the aggregates."""
    aggregates = tuple(connection.execute(_version_query()).one())
    where = make_url(str(connection.engine.url)).render_as_string(hide_password=True)
    digest = hashlib.sha256(repr((where, aggregates)).encode()).hexdigest()[:20]
    return f"{FORMAT}-{digest}"


@contextmanager
def _snapshot(node: NodeContext, *, repeatable: bool) -> Iterator[Connection]:
    """A read-only transaction; ``repeatable`` gives every statement the same snapshot on
    PostgreSQL (SQLite's read transactions always do)."""
    options: dict[str, Any] = {READ_ONLY: True}
    if repeatable and not node.db.is_sqlite:
        options["isolation_level"] = "REPEATABLE READ"
    with node.db.engine.connect() as connection:
        connection.execution_options(**options)
        with connection.begin():
            yield connection


def _stream(connection: Connection, query: Any, add: Callable[[Sequence[Any]], None]) -> None:
    """Run a select without parameters and pass its rows on in batches of plain tuples, read with
    the driver's cursor (server-side on PostgreSQL): SQLAlchemy's result rows took a fifth of a build."""
    compiled = query.compile(dialect=connection.dialect)
    assert not compiled.params, "a frame query has no parameters"
    driver = connection.connection.driver_connection
    assert driver is not None
    sqlite = connection.dialect.name == "sqlite"
    cursor = driver.cursor() if sqlite else driver.cursor(name="query_frame")
    try:
        cursor.execute(str(compiled))
        while batch := cursor.fetchmany(STREAM_ROWS):
            add(batch)
    finally:
        cursor.close()


def build_frame(node: NodeContext) -> QueryFrame:
    """Read every record in one snapshot and build the frame (seconds a million rows)."""
    builder = FrameBuilder()
    json_columns = {"type_of_exploitation", "methods_of_control", "method_of_recruitment", "role_in_process"}
    # JSON lists as their text on both databases: one json.loads a distinct text, not one a row
    columns = [cast(LINKS.c[n], String) if n in json_columns else LINKS.c[n] for n, _ in ROW_COLUMNS]
    with gc_paused(), _snapshot(node, repeatable=True) as connection:
        version = data_version(connection)
        persons = select(PERSONS.c.id, PERSONS.c.gender, cast(PERSONS.c.citizenship, String))
        _stream(connection, persons.order_by(PERSONS.c.id), builder.add_persons)
        cases = select(CASES.c.id, CASES.c.registration_year).order_by(CASES.c.id)
        _stream(connection, cases, builder.add_cases)
        rows = select(LINKS.c.id, LINKS.c.case_id, LINKS.c.person_id, LINKS.c.role, *columns)
        _stream(connection, rows.order_by(LINKS.c.id), builder.add_rows)
        events = select(EVENTS.c.case_person_id, EVENTS.c.type, EVENTS.c.country)
        _stream(connection, events, builder.add_events)
        return builder.finish(version)


# ---- caches -----------------------------------------------------------------------------------


def _folder(node: NodeContext) -> Path:
    return Path(node.settings.home) / CACHE_DIR


def _load(path: Path, version: str) -> QueryFrame | None:
    """The frame stored at ``path``, or None when there is none or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return QueryFrame.from_arrays(version, {name: stored[name] for name in stored.files})
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _store(node: NodeContext, frame: QueryFrame) -> None:
    """Write the frame atomically (temporary file, then rename) and remove older frames."""
    folder = _folder(node)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"{PREFIX}{frame.version}{SUFFIX}"
    handle, temporary = tempfile.mkstemp(prefix=f".{PREFIX}", suffix=".tmp", dir=folder)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, allow_pickle=False, **frame.arrays())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    for old in folder.glob(f"{PREFIX}*{SUFFIX}"):
        if old != target:
            old.unlink(missing_ok=True)


def _current(node: NodeContext, *, force: bool) -> tuple[QueryFrame, bool]:
    """The frame of the records now, and whether it was built from the database. One build at a
    time in the process; a frame that cannot be written to disk is still used."""
    with _snapshot(node, repeatable=False) as connection:
        version = data_version(connection)
    with _build_lock:
        held = node.cache.get(MEMORY_KEY)
        if not force and isinstance(held, QueryFrame) and held.version == version:
            return held, False
        frame = None if force else _load(_folder(node) / f"{PREFIX}{version}{SUFFIX}", version)
        built = frame is None
        if frame is None:
            frame = build_frame(node)
            try:
                _store(node, frame)
            except OSError as e:
                log.warning("query frame not written to %s: %s", _folder(node), e.strerror)
        node.cache[MEMORY_KEY] = frame
        return frame, built


def current_frame(node: NodeContext) -> QueryFrame:
    """The frame of the records now: from memory when nothing changed, else from disk, else built."""
    return _current(node, force=False)[0]


def prepare_frame(node: NodeContext, *, force: bool = False) -> dict[str, Any]:
    """Make the current frame ready (built only when the records changed, or ``force``); its figures."""
    started = time.perf_counter()
    frame, rebuilt = _current(node, force=force)
    seconds = round(time.perf_counter() - started, 3)
    figures = {"rows": frame.rows, "persons": frame.persons, "cases": frame.cases, "version": frame.version}
    return {**figures, "seconds": seconds, "rebuilt": rebuilt}
