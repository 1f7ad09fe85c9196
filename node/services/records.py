"""The case-record store: bulk writes of checked records (for ingest) and counts of what is held.

Writes use one bulk statement per table and batch (``session.execute(insert(table), rows)``),
and one query per batch for the ids already stored; never an ORM object or a query per row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    String,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from node.storage.models import Base
from node.storage.models.records import Case, CasePerson, IngestLoad, Person, TraffickingEvent
from protocol.htcds import CASE_ATTRS, PERPETRATOR_ATTRS, PERSON_ATTRS, VICTIM_ATTRS, Record, content_hash

if TYPE_CHECKING:
    from node.context import NodeContext


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PERSONS, CASES, LINKS, EVENTS = (_table(model) for model in (Person, Case, CasePerson, TraffickingEvent))
CONTEXT_ATTRS = VICTIM_ATTRS + PERPETRATOR_ATTRS
CHUNK = 1000


class RecordWriter:
    """Writes batches of checked records inside one transaction (``session``).

    ``case_rows`` / ``person_rows`` are the row numbers whose case / person fields are the ones to
    store; ``kept_links`` lists, per case id, person ids whose existing link must survive the
    case being replaced. ``counts`` holds what was created, updated and removed.
    """

    def __init__(
        self,
        session: Session,
        *,
        now: int,
        load_id: int,
        case_rows: set[int],
        person_rows: set[int],
        kept_links: dict[str, set[str]],
    ) -> None:
        self.session, self.now, self.load_id = session, now, load_id
        self.case_rows, self.person_rows, self.kept_links = case_rows, person_rows, kept_links
        self.case_ids: dict[str, int] = {}  # every case handled in this load -> its id
        self.created_persons: set[int] = set()
        self.detached: set[int] = set()  # persons who lost a link: removed at the end if in no case
        self.counts = dict.fromkeys(
            ("cases_created", "cases_updated", "persons_created", "persons_updated", "persons_removed"), 0
        )

    def write(self, batch: Sequence[Record]) -> None:
        """Store a batch: cases, persons, their links and events."""
        if batch:
            self._cases(batch)
            person_ids = self._persons(batch)
            self._links(batch, person_ids)

    def finish(self) -> None:
        """Remove persons who are in no case any more."""
        detached = sorted(self.detached)
        for start in range(0, len(detached), CHUNK):
            orphan = ~exists().where(LINKS.c.person_id == PERSONS.c.id)
            result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]  # a DELETE
                delete(PERSONS).where(PERSONS.c.id.in_(detached[start : start + CHUNK]), orphan)
            )
            self.counts["persons_removed"] += result.rowcount

    def _cases(self, batch: Sequence[Record]) -> None:
        new = sorted({r.case_id for r in batch} - self.case_ids.keys())
        existing = dict(
            self.session.execute(select(CASES.c.case_id, CASES.c.id).where(CASES.c.case_id.in_(new))).all()
        )
        self._replace([existing[k] for k in new if k in existing], [k for k in new if k in existing])
        self.counts["cases_updated"] += len(existing)
        self.case_ids.update(existing)
        defined = {r.case_id: r for r in batch if r.row in self.case_rows}
        created = [k for k in new if k not in existing]
        rows = [self._case_values(defined.get(k)) | {"case_id": k, "created_at": self.now} for k in created]
        self.case_ids.update(self._insert(CASES, rows, CASES.c.case_id, created))
        self.counts["cases_created"] += len(created)
        updates = [
            self._case_values(r) | {"id": self.case_ids[k]} for k, r in defined.items() if k not in created
        ]
        self._update(CASES, updates)

    def _case_values(self, record: Record | None) -> dict[str, Any]:
        values = {attr: record.case.get(attr) if record else None for attr in CASE_ATTRS}
        registered = values["registration_date"]
        values["registration_year"] = int(str(registered)[:4]) if registered else None
        return values | {"updated_at": self.now}

    def _replace(self, ids: list[int], keys: list[str]) -> None:
        """Detach everyone from existing cases that the file replaces, except links to keep."""
        plain = [i for i, k in zip(ids, keys, strict=True) if k not in self.kept_links]
        conditions: list[ColumnElement[bool]] = [
            LINKS.c.case_id.in_(plain[s : s + CHUNK]) for s in range(0, len(plain), CHUNK)
        ]
        for case_db_id, key in zip(ids, keys, strict=True):
            if key in self.kept_links:
                kept = select(PERSONS.c.id).where(PERSONS.c.person_id.in_(self.kept_links[key]))
                conditions.append(and_(LINKS.c.case_id == case_db_id, LINKS.c.person_id.not_in(kept)))
        for condition in conditions:
            self.detached.update(self.session.scalars(select(LINKS.c.person_id).where(condition)))
            self.session.execute(
                delete(EVENTS).where(EVENTS.c.case_person_id.in_(select(LINKS.c.id).where(condition)))
            )
            self.session.execute(delete(LINKS).where(condition))

    def _persons(self, batch: Sequence[Record]) -> dict[str, int]:
        keys = sorted({r.person_id for r in batch})
        query = select(PERSONS.c.person_id, PERSONS.c.id, PERSONS.c.content_hash).where(
            PERSONS.c.person_id.in_(keys)
        )
        existing = {key: (db_id, digest) for key, db_id, digest in self.session.execute(query)}
        defined = {r.person_id: r for r in batch if r.row in self.person_rows}
        created = [k for k in keys if k not in existing]
        rows = [
            self._person_values(defined.get(k)) | {"person_id": k, "created_at": self.now} for k in created
        ]
        ids = {k: db_id for k, (db_id, _) in existing.items()}
        ids.update(self._insert(PERSONS, rows, PERSONS.c.person_id, created))
        self.created_persons.update(ids[k] for k in created)
        self.counts["persons_created"] += len(created)
        updates = []
        for key, record in defined.items():
            values = self._person_values(record) if key in existing else {}
            if values and existing[key][1] != values["content_hash"]:
                updates.append(values | {"id": ids[key]})
                self.counts["persons_updated"] += ids[key] not in self.created_persons
        self._update(PERSONS, updates)
        return ids

    def _person_values(self, record: Record | None) -> dict[str, Any]:
        person = record.person if record else {}
        values: dict[str, Any] = {attr: person.get(attr) for attr in PERSON_ATTRS}
        return values | {"content_hash": content_hash(person), "updated_at": self.now}

    def _links(self, batch: Sequence[Record], person_ids: dict[str, int]) -> None:
        rows: list[dict[str, Any]] = [
            {attr: r.context.get(attr) for attr in CONTEXT_ATTRS}
            | {
                "case_id": self.case_ids[r.case_id],
                "person_id": person_ids[r.person_id],
                "role": r.role,
                "matchable": r.sharing.matchable,
                "handling_code": r.sharing.handling_code,
                "grading": r.sharing.grading,
                "free_text": dict(r.free_text) or None,
                "synth_true_id": r.synth_true_id,
                "load_id": self.load_id,
            }
            for r in batch
        ]
        self.session.execute(insert(LINKS), rows)
        if not any(r.events for r in batch):
            return
        case_ids = sorted({row["case_id"] for row in rows})
        query = select(LINKS.c.case_id, LINKS.c.person_id, LINKS.c.id).where(
            LINKS.c.load_id == self.load_id, LINKS.c.case_id.in_(case_ids)
        )
        link_ids = {
            (case_id, person_id): link_id for case_id, person_id, link_id in self.session.execute(query)
        }
        events = [
            {"case_person_id": link_ids[row["case_id"], row["person_id"]], "position": i, "type": e.type}
            | {"country": e.country, "city": e.city, "date": e.date}
            for row, r in zip(rows, batch, strict=True)
            for i, e in enumerate(r.events)
        ]
        self.session.execute(insert(EVENTS), events)

    def _insert(self, table: Any, rows: list[dict[str, Any]], key: Any, keys: list[str]) -> dict[str, int]:
        """Insert rows (one executemany), then read their ids back by natural key in one query.
        (RETURNING with guaranteed order makes SQLAlchemy insert SQLite rows one at a time.)"""
        if not rows:
            return {}
        self.session.execute(insert(table), rows)
        return {k: db_id for k, db_id in self.session.execute(select(key, table.c.id).where(key.in_(keys)))}

    def _update(self, table: Any, rows: list[dict[str, Any]]) -> None:
        if rows:
            model = Person if table is PERSONS else Case
            self.session.execute(update(model), rows)


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
