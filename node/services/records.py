"""The case-record store: bulk writes of checked records (for ingest) and counts of what is held.

Checked records are first encoded into the tuples the database driver takes (:class:`RowEncoder`,
run wherever rows are checked), then written one ``executemany`` per table and batch with SQL built
once (:class:`RecordWriter`): SQLAlchemy's per-row parameter processing cost more than the database.
Ids of new rows are taken before inserting, so children refer to them without reading them back:
on SQLite from ``max(id)`` (the load's transaction holds the write lock from ``BEGIN IMMEDIATE``,
so no other writer can take the same ids), on PostgreSQL from the table's sequence.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from node.storage.models import Base
from node.storage.models.records import Case, CasePerson, IngestLoad, Person, TraffickingEvent
from protocol.htcds import (
    CASE_ATTRS,
    FIELDS,
    MEMO_LIMIT,
    PERPETRATOR_ATTRS,
    PERSON_ATTRS,
    VICTIM_ATTRS,
    Record,
    content_hash,
)

if TYPE_CHECKING:
    from node.context import NodeContext


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PERSONS, CASES, LINKS, EVENTS = (_table(model) for model in (Person, Case, CasePerson, TraffickingEvent))
CONTEXT_ATTRS = VICTIM_ATTRS + PERPETRATOR_ATTRS
CHUNK = 1000
# Encoded values first (as RowEncoder makes them), then what the writer adds.
CASE_COLUMNS = (*CASE_ATTRS, "registration_year", "updated_at", "id", "case_id", "created_at")
PERSON_COLUMNS = (*PERSON_ATTRS, "content_hash", "updated_at", "id", "person_id", "created_at")
LINK_COLUMNS = (*CONTEXT_ATTRS, "role", "matchable", "handling_code", "grading", "free_text", "synth_true_id",
                "id", "case_id", "person_id", "load_id")  # fmt: skip
EVENT_COLUMNS = ("case_person_id", "position", "type", "country", "city", "date")
Row = tuple[Any, ...]


# One checked row as the driver takes it, without database ids: (row number, case id, person id,
# case, person, link, events). A plain tuple: it crosses from the checking process by pickle.
# ``case`` (CASE_ATTRS and registration_year) and ``person`` (PERSON_ATTRS and content_hash) are set
# only on the row whose fields the load stores (the first with any, see node.services.ingest).
# ``link``: CONTEXT_ATTRS, role, sharing controls, free text, synth_true_id. Each event:
# (position, type, country, city, date).
EncodedRow = tuple[int, str, str, Row | None, Row | None, Row, tuple[Row, ...]]
# What an encoder gives for one record: (case id, person id, case, person, link, events).
Encoded = tuple[str, str, Row, Row, Row, tuple[Row, ...]]


def _special(attrs: Sequence[str], group: str) -> list[int]:
    """Positions of the attributes whose values are arrays or booleans, which need encoding."""
    specs = {(spec.group, spec.attr): spec for spec in FIELDS.values()}
    return [
        i for i, attr in enumerate(attrs) if specs[group, attr].multi or specs[group, attr].kind == "bool"
    ]


class RowEncoder:
    """Encodes checked records for one driver: NULL, JSON text for arrays and objects, booleans.

    sqlite3 binds None and bool through its slow adaptation path (about 0.3 and 0.6 µs a value on
    CPython 3.11, more than a string): for SQLite a NULL travels as '' and the SQL's
    ``NULLIF(?, '')`` turns it back, and booleans travel as 0/1. No stored value is '': checked
    values are never empty. ``node.services.ingest_readers.CellEncoder`` gives the same for CSV
    cells, faster.
    """

    def __init__(self, *, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.null: str | None = "" if sqlite else None
        self._json: dict[Any, str] = {}
        self.empty_case: Row = (self.null,) * (len(CASE_ATTRS) + 1)
        self.empty_hash = content_hash({})
        self.empty_person: Row = (*(self.null,) * len(PERSON_ATTRS), self.empty_hash)
        self._person = _special(PERSON_ATTRS, "person")
        self._context = _special(VICTIM_ATTRS, "victim") + [
            len(VICTIM_ATTRS) + i for i in _special(PERPETRATOR_ATTRS, "perpetrator")
        ]

    def value(self, value: Any) -> Any:
        """One value as stored: JSON as SQLAlchemy's JSON type writes it (``json.dumps`` defaults)."""
        if value is None:
            return self.null
        if type(value) is tuple:
            text = self._json.get(value)
            if text is None:
                if len(self._json) >= MEMO_LIMIT:
                    self._json.clear()
                text = self._json[value] = json.dumps(value)
            return text
        if type(value) is dict:
            return json.dumps(value)
        return int(value) if self.sqlite and type(value) is bool else value

    def encode(self, record: Record) -> Encoded:
        null, value, sharing = self.null, self.value, record.sharing
        case = [record.case.get(attr, null) for attr in CASE_ATTRS]
        registered = record.case.get("registration_date")
        case.append(int(str(registered)[:4]) if registered else null)
        person = self._encode([record.person.get(attr, null) for attr in PERSON_ATTRS], self._person)
        link = self._encode([record.context.get(attr, null) for attr in CONTEXT_ATTRS], self._context)
        link += (record.role, value(sharing.matchable), sharing.handling_code, value(sharing.grading))
        link += (value(dict(record.free_text) or None), value(record.synth_true_id))
        events = tuple(
            (i, e.type, value(e.country), value(e.city), value(e.date)) for i, e in enumerate(record.events)
        )
        return (
            record.case_id,
            record.person_id,
            tuple(case),
            (*person, content_hash(record.person)),
            link,
            events,
        )

    def _encode(self, values: list[Any], special: Sequence[int]) -> Row:
        """The values, those at ``special`` (arrays, booleans) encoded; the others are text or numbers."""
        for i in special:
            if values[i] is not self.null:
                values[i] = self.value(values[i])
        return tuple(values)


class BulkSql:
    """Statements built once for one connection's driver, run with rows as tuples (see RowEncoder):
    ``executemany`` on SQLite, COPY on PostgreSQL (psycopg's executemany spends some 40 µs of
    Python a row; COPY writes rows in C). Table and column names come from the models, never from
    input; every value is a parameter or COPY data."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.value = "NULLIF(?, '')" if self.sqlite else "%s"
        self.sequences: dict[str, str] = {}  # PostgreSQL: table -> its id sequence

    def insert(self, table: Table, columns: Sequence[str]) -> str:
        names = ", ".join(columns)
        if not self.sqlite:
            return f"COPY {table.name} ({names}) FROM STDIN"
        values = ", ".join([self.value] * len(columns))
        return f"INSERT INTO {table.name} ({names}) VALUES ({values})"  # noqa: S608 - names from the models

    def update(self, table: Table, columns: Sequence[str]) -> str:
        """Sets each column but the last, where id is the last."""
        sets = ", ".join(f"{name} = {self.value}" for name in columns[:-1])
        return f"UPDATE {table.name} SET {sets} WHERE id = {self.value}"  # noqa: S608 - names from the models

    def run(self, statement: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if not statement.startswith("COPY"):
            self.connection.exec_driver_sql(statement, list(rows))
            return
        driver = self.connection.connection.driver_connection
        assert driver is not None
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except self.connection.dialect.dbapi.IntegrityError as e:  # type: ignore[union-attr]  # psycopg's
            raise IntegrityError(statement, None, e) from e

    def select_in(self, key: Any, keys: Sequence[str], *columns: Any) -> list[Row]:
        """``columns`` of the rows whose ``key`` is in ``keys``, in chunks of CHUNK."""
        found: list[Row] = []
        for start in range(0, len(keys), CHUNK):
            query = select(*columns).where(key.in_(keys[start : start + CHUNK]))
            found += [tuple(row) for row in self.connection.execute(query)]
        return found

    def next_ids(self, table: Table, count: int, cache: dict[str, int]) -> list[int]:
        """Ids for ``count`` new rows: SQLite from max(id), read once per load; else the sequence."""
        if count == 0:
            return []
        if self.sqlite:
            start = cache.get(table.name) or self.first_id(table)
            cache[table.name] = start + count
            return list(range(start, start + count))
        sequence = self.sequences.get(table.name)
        if sequence is None:
            query = "SELECT pg_get_serial_sequence(%s, 'id')"
            sequence = self.sequences[table.name] = self.connection.exec_driver_sql(
                query, (table.name,)
            ).scalar_one()
        query = "SELECT nextval(%s::regclass) FROM generate_series(1, %s)"
        return [int(i) for (i,) in self.connection.exec_driver_sql(query, (sequence, count))]

    def first_id(self, table: Table) -> int:
        query = select(func.coalesce(func.max(table.c.id), 0) + 1)
        return int(self.connection.execute(query).scalar_one())

    def take_turns(self) -> bool:
        """Make other loads wait for this transaction's end, as SQLite's BEGIN IMMEDIATE does (readers
        do not wait). Then the rows there at the start are all there are but this load's. True if
        the lock was taken (PostgreSQL), False on SQLite, where the transaction holds it already."""
        if not self.sqlite:
            tables = ", ".join(table.name for table in (CASES, PERSONS, LINKS, EVENTS))
            self.connection.exec_driver_sql(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        return not self.sqlite

    def empty(self, table: Table) -> bool:
        return self.connection.execute(select(table.c.id).limit(1)).first() is None


class RecordWriter:
    """Writes batches of encoded rows, in file order, inside one transaction (``session``).

    A case or person met for the first time in the load is created, or if it exists, replaced:
    its fields become those of the row that carries them (see EncodedRow); an existing one
    whose rows carry none is emptied at :meth:`finish`, which also detaches everyone the case held
    before the load except ``kept_links``. ``counts`` holds what was created, updated and removed.
    """

    def __init__(self, session: Session, *, now: int, load_id: int, encoder: RowEncoder) -> None:
        self.session, self.now, self.load_id, self.encoder = session, now, load_id, encoder
        self.sql = sql = BulkSql(session.connection())
        self.next_id: dict[str, int] = {}
        self.cases: dict[str, int] = {}  # every case met in this load -> its id
        self.replaced: dict[str, int] = {}  # cases that existed before this load
        self.persons: dict[str, tuple[int, str]] = {}  # every person met -> (id, content hash)
        self.created_persons: set[int] = set()
        self.pending: dict[str, dict[str, int]] = {"cases": {}, "persons": {}}  # existing, no fields yet
        self.counts = dict.fromkeys(
            ("cases_created", "cases_updated", "persons_created", "persons_updated", "persons_removed"), 0
        )
        # A table empty at the start holds only this load's rows: nothing to look up in it.
        sql.take_turns()
        self.look_up = {t.name: not sql.empty(t) for t in (CASES, PERSONS)}
        self.statements = {
            "case": sql.insert(CASES, CASE_COLUMNS),
            "case_update": sql.update(CASES, CASE_COLUMNS[:-2]),
            "person": sql.insert(PERSONS, PERSON_COLUMNS),
            "person_update": sql.update(PERSONS, PERSON_COLUMNS[:-2]),
            "link": sql.insert(LINKS, LINK_COLUMNS),
            "event": sql.insert(EVENTS, EVENT_COLUMNS),
        }

    def write(self, batch: Sequence[EncodedRow]) -> None:
        """Store a batch: cases, persons, their links and events."""
        if batch:
            self._cases(batch)
            self._persons(batch)
            self._links(batch)

    def finish(self, kept_links: dict[str, set[str]]) -> None:
        """Detach old links of replaced cases (except ``kept_links``: case id -> person ids whose
        rows were all rejected), empty cases and persons no row gave fields, remove orphans."""
        detached = self._detach_old_links(kept_links)
        now, empty_case, empty_person = self.now, self.encoder.empty_case, self.encoder.empty_person
        self.sql.run(
            self.statements["case_update"], [(*empty_case, now, i) for i in self.pending["cases"].values()]
        )
        emptied = [i for k, i in self.pending["persons"].items() if self.persons[k][1] != empty_person[-1]]
        self.sql.run(self.statements["person_update"], [(*empty_person, now, i) for i in emptied])
        self.counts["persons_updated"] += len(emptied)
        for start in range(0, len(detached), CHUNK):
            orphan = ~exists().where(LINKS.c.person_id == PERSONS.c.id)
            result = self.sql.connection.execute(
                delete(PERSONS).where(PERSONS.c.id.in_(detached[start : start + CHUNK]), orphan)
            )
            self.counts["persons_removed"] += result.rowcount

    def _cases(self, batch: Sequence[EncodedRow]) -> None:
        known, pending, now = self.cases, self.pending["cases"], self.now
        new = list(dict.fromkeys(r[1] for r in batch if r[1] not in known))
        if new and self.look_up["cases"]:
            existing: dict[str, int] = dict(
                self.sql.select_in(CASES.c.case_id, new, CASES.c.case_id, CASES.c.id)
            )
            known.update(existing)
            self.replaced.update(existing)
            pending.update(existing)
            self.counts["cases_updated"] += len(existing)
        created = [k for k in new if k not in known]
        fresh = dict(zip(created, self.sql.next_ids(CASES, len(created), self.next_id), strict=True))
        known.update(fresh)
        self.counts["cases_created"] += len(fresh)
        inserts, updates, empty = [], [], self.encoder.empty_case
        for _, key, _, case, _, _, _ in batch:
            if case is None:
                continue
            if key in fresh:
                inserts.append((*case, now, fresh.pop(key), key, now))
            elif not (case == empty and key in pending):
                pending.pop(key, None)
                updates.append((*case, now, known[key]))
        self.sql.run(self.statements["case"], inserts)
        self.sql.run(self.statements["case_update"], updates)

    def _persons(self, batch: Sequence[EncodedRow]) -> None:
        known, pending, now = self.persons, self.pending["persons"], self.now
        new = list(dict.fromkeys(r[2] for r in batch if r[2] not in known))
        if new and self.look_up["persons"]:
            columns = (PERSONS.c.person_id, PERSONS.c.id, PERSONS.c.content_hash)
            for key, db_id, digest in self.sql.select_in(PERSONS.c.person_id, new, *columns):
                known[key] = (db_id, digest)
                pending[key] = db_id
        created = [k for k in new if k not in known]
        fresh = dict(zip(created, self.sql.next_ids(PERSONS, len(created), self.next_id), strict=True))
        self.created_persons.update(fresh.values())
        self.counts["persons_created"] += len(fresh)
        inserts, updates, empty = [], [], self.encoder.empty_hash
        for _, _, key, _, person, _, _ in batch:
            if person is None:
                continue
            digest = person[-1]
            if key in fresh:
                db_id = fresh.pop(key)
                inserts.append((*person, now, db_id, key, now))
                known[key] = (db_id, digest)
                continue
            if digest == empty and key in pending:
                continue
            pending.pop(key, None)
            db_id, stored = known[key]
            if digest != stored:
                updates.append((*person, now, db_id))
                known[key] = (db_id, digest)
                self.counts["persons_updated"] += db_id not in self.created_persons
        self.sql.run(self.statements["person"], inserts)
        self.sql.run(self.statements["person_update"], updates)

    def _links(self, batch: Sequence[EncodedRow]) -> None:
        cases, persons, load_id = self.cases, self.persons, self.load_id
        link_ids = self.sql.next_ids(LINKS, len(batch), self.next_id)
        rows, events = [], []
        for (_, case_id, person_id, _, _, link, row_events), link_id in zip(batch, link_ids, strict=True):
            rows.append((*link, link_id, cases[case_id], persons[person_id][0], load_id))
            events += [(link_id, *event) for event in row_events]
        if self.replaced:
            self._drop_replaced_pairs(rows)
        self.sql.run(self.statements["link"], rows)
        self.sql.run(self.statements["event"], events)

    def _drop_replaced_pairs(self, rows: list[Row]) -> None:
        """A person's link to a replaced case from an earlier load gives way to the new row."""
        replaced, created = set(self.replaced.values()), self.created_persons
        at = len(LINK_COLUMNS) - 3  # case_id, person_id, load_id
        pairs = [
            {"case": row[at], "person": row[at + 1], "load": row[at + 2]}
            for row in rows
            if row[at] in replaced and row[at + 1] not in created
        ]
        if pairs:
            old = and_(
                LINKS.c.case_id == bindparam("case"),
                LINKS.c.person_id == bindparam("person"),
                LINKS.c.load_id != bindparam("load"),
            )
            self.session.execute(
                delete(EVENTS).where(EVENTS.c.case_person_id.in_(select(LINKS.c.id).where(old))), pairs
            )
            self.session.execute(delete(LINKS).where(old), pairs)

    def _detach_old_links(self, kept_links: dict[str, set[str]]) -> list[int]:
        """Remove the links replaced cases had before this load, except kept ones; their persons."""
        conditions: list[ColumnElement[bool]] = []
        plain = [i for key, i in self.replaced.items() if key not in kept_links]
        for start in range(0, len(plain), CHUNK):
            conditions.append(LINKS.c.case_id.in_(plain[start : start + CHUNK]))
        for key, case_db_id in self.replaced.items():
            if key in kept_links:
                kept = select(PERSONS.c.id).where(PERSONS.c.person_id.in_(kept_links[key]))
                conditions.append(and_(LINKS.c.case_id == case_db_id, LINKS.c.person_id.not_in(kept)))
        detached: set[int] = set()
        for condition in conditions:
            old = and_(condition, LINKS.c.load_id != self.load_id)
            detached.update(self.session.scalars(select(LINKS.c.person_id).where(old)))
            self.session.execute(
                EVENTS.delete().where(EVENTS.c.case_person_id.in_(select(LINKS.c.id).where(old)))
            )
            self.session.execute(LINKS.delete().where(old))
        return sorted(detached)


def stats(node: NodeContext) -> dict[str, Any]:
    """Counts of what the node holds; no personal value, no agency id. Raises nothing on an empty store."""
    with node.db.transaction() as session:
        return {
            "persons": _count(session, select(func.count()).select_from(PERSONS)),
            "cases": _count(session, select(func.count()).select_from(CASES)),
            "records": _count(session, select(func.count()).select_from(LINKS)),
            "victims": _distinct_persons(session, LINKS.c.role == "victim"),
            "perpetrators": _distinct_persons(session, LINKS.c.role == "perpetrator"),
            "matchable_persons": _distinct_persons(session, LINKS.c.matchable.is_(True)),
            "by_handling_code": dict(_grouped(session, LINKS.c.handling_code)),
            "by_citizenship": [
                {"country": code, "persons": n}
                for code, n in _multi(session, PERSONS.c.citizenship).most_common(10)
            ],
            "by_exploitation_type": dict(
                _multi(session, LINKS.c.type_of_exploitation, LINKS.c.role == "victim")
            ),
            "by_exploitation_country": _exploitation_countries(session),
            "last_load": _last_load(session),
        }


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.execute(query).scalar_one())


def _distinct_persons(session: Session, condition: Any) -> int:
    return _count(session, select(func.count(func.distinct(LINKS.c.person_id))).where(condition))


def _grouped(session: Session, column: Any, *conditions: Any) -> Iterable[tuple[Any, int]]:
    query = select(column, func.count()).where(*conditions).group_by(column).order_by(column)
    return [(value, int(n)) for value, n in session.execute(query) if value is not None]


def _multi(session: Session, column: Any, *conditions: Any) -> Counter[str]:
    """Count each value of a JSON-array column. Grouped by the array's text first (PostgreSQL's json
    type has no equality), so the database does the work and Python sees each combination once."""
    counts: Counter[str] = Counter()
    for text, n in _grouped(session, cast(column, String), *conditions):
        for value in json.loads(text):
            counts[value] += n
    return Counter(dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))))


def _exploitation_countries(session: Session) -> dict[str, int]:
    victims = func.count(func.distinct(EVENTS.c.case_person_id))
    query = (
        select(EVENTS.c.country, victims)
        .join(LINKS, LINKS.c.id == EVENTS.c.case_person_id)
        .where(EVENTS.c.type == "Exploitation", EVENTS.c.country.is_not(None), LINKS.c.role == "victim")
        .group_by(EVENTS.c.country)
        .order_by(victims.desc(), EVENTS.c.country)
    )
    return {country: int(n) for country, n in session.execute(query)}


def _last_load(session: Session) -> dict[str, Any] | None:
    query = (
        select(IngestLoad).where(IngestLoad.finished_at.is_not(None)).order_by(IngestLoad.id.desc()).limit(1)
    )
    load = session.scalars(query).first()
    if load is None or load.finished_at is None:
        return None
    return {
        "finished_at": datetime.fromtimestamp(load.finished_at, UTC).isoformat().replace("+00:00", "Z"),
        "rows_loaded": load.rows_loaded,
        "rows_rejected": load.rows_rejected,
    }
