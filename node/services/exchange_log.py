"""The node's exchange log: appends inside the caller's transaction, signed checkpoints, verification.

Entries, hashes and checkpoint notes are defined in protocol/translog/ (spec: protocol/SPEC.md,
"Exchange log"); docs/audit.md explains the log to operators and auditors.

Appends are serialised by the one-row ``log_head`` table: every append locks it (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the database's write lock from
``BEGIN IMMEDIATE``), so two transactions can never both extend the same head and fork the
chain. The lock is held until the caller commits, so append last in a unit of work: that keeps
the lock short and takes locks in one order (the head last), which rules out deadlocks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from node.context import NodeContext
from node.errors import NodeError
from node.matching.gcpause import gc_paused
from node.storage.db import Database, dialect_insert
from node.storage.models.log import LogCheckpoint, LogEntryRow, LogHead
from protocol.errors import MalformedError, ProtocolError
from protocol.translog import (
    ZERO_HASH,
    Checkpoint,
    CompactRange,
    LogEntry,
    LogProblem,
    LogVerifier,
    log_origin,
    sign_checkpoint,
    verify_checkpoint,
)
from protocol.translog.entry import ROW_FIELDS

HEAD_ID = 1
# Entry fields other than the index, as columns of log_entries (the index is column "idx"), in
# the order verification reads them (protocol.translog.entry.ROW_FIELDS).
ENTRY_COLUMNS: tuple[str, ...] = ROW_FIELDS[1:]
# What a caller of append/append_many gives: every member but index and prev, which the head sets.
APPEND_FIELDS = frozenset(ENTRY_COLUMNS) - {"prev"}
_APPEND_REQUIRED = frozenset({"time", "kind", "outcome"})
STREAM_ROWS = 20_000  # rows fetched at a time when reading the whole log
_entries = cast(Table, LogEntryRow.__table__)
_head = cast(Table, LogHead.__table__)
_checkpoints = cast(Table, LogCheckpoint.__table__)


class LogIntegrityError(NodeError):
    """The stored log does not hold together, so the node refuses to extend or sign it."""

    code = "log_integrity"
    http_status = 500


@dataclass(frozen=True)
class _Head:
    size: int
    last_leaf_hash: str
    compact: CompactRange


class _DriverStatement:
    """A Core statement compiled once per dialect, then run as driver SQL.

    ``Connection.execute`` looks the statement up in its cache and processes parameters on
    every call (~15 µs); an append runs three statements. None of these binds a value that
    needs a type processor (integers and text), so the driver takes the values as they are.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def run(
        self, connection: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """Execute with one set of parameters, or with many (``executemany``)."""
        dialect = connection.dialect
        sql, order, fixed = self._compiled.get((dialect.name, dialect.driver)) or self._compile(connection)
        if isinstance(params, Mapping):
            return connection.exec_driver_sql(sql, self._values(params, order, fixed))
        return connection.exec_driver_sql(sql, [self._values(one, order, fixed) for one in params])

    def _compile(self, connection: Connection) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        dialect = connection.dialect
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
        order = tuple(compiled.positiontup or ()) if dialect.positional else None
        fixed = {k: v for k, v in compiled.params.items() if v is not None}  # e.g. WHERE id = 1
        found = self._compiled[(dialect.name, dialect.driver)] = (str(compiled), order, fixed)
        return found

    @staticmethod
    def _values(
        params: Mapping[str, Any], order: tuple[str, ...] | None, fixed: dict[str, Any]
    ) -> tuple[Any, ...] | Mapping[str, Any]:
        values = {**fixed, **params} if fixed else params
        return values if order is None else tuple(map(values.__getitem__, order))


# Built once: SQLAlchemy then reuses their compiled form (building them per append cost ~1 ms).
_SELECT_HEAD = (
    select(_head.c.size, _head.c.last_leaf_hash, _head.c.compact)
    .where(_head.c.id == HEAD_ID)
    .with_for_update()
)
_INSERT_ENTRY = insert(_entries)
_UPDATE_HEAD = (
    update(_head)
    .where(_head.c.id == HEAD_ID)
    .values(
        size=bindparam("new_size"), last_leaf_hash=bindparam("new_last"), compact=bindparam("new_compact")
    )
)
_SELECT_HEAD_SQL = _DriverStatement(_SELECT_HEAD)
_INSERT_ENTRY_SQL = _DriverStatement(_INSERT_ENTRY)
_UPDATE_HEAD_SQL = _DriverStatement(_UPDATE_HEAD)
# Parsed compact ranges by (size, stored hex), so an append does not re-parse the head that the
# one before it wrote. The head row is still read under its lock every time: this only
# remembers what a given text means, never what the head is.
_compact_ranges: dict[tuple[int, str], CompactRange] = {}


def _compact_range(size: int, text: str) -> CompactRange:
    found = _compact_ranges.get((size, text))
    return found if found is not None else _remember(CompactRange.from_hex(size, text), text)


def _remember(compact: CompactRange, text: str) -> CompactRange:
    if len(_compact_ranges) >= 64:
        _compact_ranges.clear()
    _compact_ranges[(compact.size, text)] = compact
    return compact


def _lock_head(session: Session) -> _Head:
    """Lock the log head row for this transaction (creating it on first use) and read it."""
    row: Any = _SELECT_HEAD_SQL.run(session.connection(), {}).first()
    if row is None:
        values = {"id": HEAD_ID, "size": 0, "last_leaf_hash": ZERO_HASH, "compact": ""}
        session.execute(
            dialect_insert(session, _head).values(values).on_conflict_do_nothing(index_elements=["id"])
        )
        row = session.execute(_SELECT_HEAD).one()
    try:
        return _Head(row.size, row.last_leaf_hash, _compact_range(row.size, row.compact))
    except MalformedError as e:
        raise LogIntegrityError(f"the log head is damaged ({e.message}); run 'palermo audit verify'") from e


def append(
    session: Session,
    *,
    time: int,
    kind: str,
    direction: str = "",
    peer: str = "",
    message_id: str = "",
    message_type: str = "",
    envelope_hash: str = "",
    size: int = 0,
    outcome: str,
    code: str = "",
    detail: dict[str, Any] | None = None,
) -> LogEntry:
    """Append one entry inside the caller's transaction (it commits or rolls back with it).

    Hashes and metadata only: never a payload or personal data in any field. Raises
    MalformedError (code ``malformed_log_entry``) for an invalid field and LogIntegrityError
    when the stored head is damaged.
    """
    head = _lock_head(session)
    entry = LogEntry(
        index=head.size,
        time=time,
        kind=kind,
        direction=direction,
        peer=peer,
        message_id=message_id,
        message_type=message_type,
        envelope_hash=envelope_hash,
        size=size,
        outcome=outcome,
        code=code,
        detail=detail or {},
        prev=head.last_leaf_hash,
    )
    _write(session.connection(), head, [entry], [entry.leaf_hash()])
    return entry


def append_many(session: Session, entries: Sequence[Mapping[str, Any]]) -> list[LogEntry]:
    """Append ``entries`` in order inside the caller's transaction, as one append each would.

    Each is a mapping of ``append``'s keyword arguments (``time``, ``kind`` and ``outcome``
    required). One head lock, one insert of all rows and one head update: several times the
    rate of ``append`` in a loop. Every entry is checked before anything is written; the first
    invalid one raises MalformedError (code ``malformed_log_entry``, the message names its
    position), and the caller's transaction then rolls back. Raises LogIntegrityError when the
    stored head is damaged.
    """
    if not entries:
        return []
    head = _lock_head(session)
    built: list[LogEntry] = []
    leaves: list[bytes] = []
    prev = head.last_leaf_hash
    for position, fields in enumerate(entries):
        try:
            entry = _entry_at(head.size + position, prev, fields)
        except MalformedError as e:
            raise MalformedError(f"entries[{position}]: {e.message}", code=e.code) from e
        leaf = entry.leaf_hash()
        built.append(entry)
        leaves.append(leaf)
        prev = leaf.hex()
    _write(session.connection(), head, built, leaves)
    return built


def _entry_at(index: int, prev: str, fields: Mapping[str, Any]) -> LogEntry:
    """The entry ``fields`` (append's keyword arguments) make at ``index`` after ``prev``."""
    if not isinstance(fields, Mapping):
        what = f"expected a mapping of append's arguments, got {type(fields).__name__}"
    elif unknown := sorted(set(fields) - APPEND_FIELDS, key=str):
        what = f"unknown field(s) {', '.join(map(str, unknown))}"
    elif missing := sorted(_APPEND_REQUIRED - set(fields)):
        what = f"missing field(s) {', '.join(missing)}"
    else:
        return LogEntry(index=index, prev=prev, **{**fields, "detail": fields.get("detail") or {}})
    raise MalformedError(f"log entry: {what}", code="malformed_log_entry")


def _write(connection: Connection, head: _Head, entries: list[LogEntry], leaves: list[bytes]) -> None:
    """Insert ``entries`` (the next after ``head``) and move the head past them."""
    rows = []
    for entry, leaf in zip(entries, leaves, strict=True):
        row = entry.to_dict()
        row.update(idx=row.pop("index"), detail=entry.detail_json.decode(), leaf_hash=leaf.hex())
        rows.append(row)
    _INSERT_ENTRY_SQL.run(connection, rows if len(rows) > 1 else rows[0])
    compact = head.compact.extend(leaves)
    text = compact.to_hex()
    _UPDATE_HEAD_SQL.run(
        connection, {"new_size": compact.size, "new_last": rows[-1]["leaf_hash"], "new_compact": text}
    )
    _remember(compact, text)


# --- checkpoints ----------------------------------------------------------------------------------


def checkpoint(node: NodeContext) -> Checkpoint:
    """Sign a checkpoint of the whole log with the node's log key, store it and return it.

    A no-op returning the last checkpoint when the log has not grown since. The node signs only
    a checkpoint that provably extends the previous one: the previous compact range, extended by
    the (re-checked) entries appended since, must give the current head. So no size ever gets a
    second root and no two checkpoints are inconsistent. Raises LogIntegrityError otherwise.
    """
    origin = log_origin(node.node_id)
    with node.db.transaction() as session:
        head = _lock_head(session)
        previous = _last_checkpoint(session, node, origin)
        if previous is not None and previous[0].size >= head.size:
            if previous[0].size == head.size and previous[0].root == head.compact.root():
                return previous[0]
            raise LogIntegrityError(
                f"the log head (size {head.size}) does not extend the checkpoint at size {previous[0].size}; "
                "refusing to sign (run 'palermo audit verify')"
            )
        start = previous[1] if previous else CompactRange()
        _check_extension(session, node, origin, start, head)
        new = Checkpoint(origin=origin, size=head.size, root=head.compact.root())
        note = sign_checkpoint(new, signing_key=node.keys.log)
        session.execute(
            insert(_checkpoints).values(
                size=new.size,
                root=new.root.hex(),
                note=note.decode(),
                compact=head.compact.to_hex(),
                created_at=node.clock(),
            )
        )
    return verify_checkpoint(note, origin=origin, public_key=node.keys.log.verify_key)


def _last_checkpoint(
    session: Session, node: NodeContext, origin: str
) -> tuple[Checkpoint, CompactRange] | None:
    row = session.execute(select(_checkpoints).order_by(_checkpoints.c.size.desc()).limit(1)).one_or_none()
    if row is None:
        return None
    try:
        signed = verify_checkpoint(row.note.encode(), origin=origin, public_key=node.keys.log.verify_key)
        compact = CompactRange.from_hex(row.size, row.compact)
    except ProtocolError as e:
        raise LogIntegrityError(f"the checkpoint at size {row.size} does not verify ({e.message})") from e
    if signed.size != row.size or compact.root() != signed.root:
        raise LogIntegrityError(f"the checkpoint at size {row.size} does not match its stored Merkle state")
    return signed, compact


def _check_extension(
    session: Session, node: NodeContext, origin: str, start: CompactRange, head: _Head
) -> None:
    """Re-check the entries after ``start`` and that they lead exactly to ``head``."""
    verifier = LogVerifier(origin=origin, public_key=node.keys.log.verify_key, max_problems=1)
    last_hash: str | None = ZERO_HASH
    if start.size:
        query = select(_entries.c.leaf_hash).where(_entries.c.idx == start.size - 1)
        last_hash = session.execute(query).scalar()
    verifier.resume(start, last_hash or "")
    with gc_paused():
        verifier.add_rows(_stream_rows(session, start.size))
    if verifier.problem_count:
        raise LogIntegrityError(f"refusing to sign a checkpoint: {verifier.problems[0]}")
    if verifier.compact() != head.compact or verifier.last_leaf_hash != head.last_leaf_hash:
        raise LogIntegrityError("refusing to sign a checkpoint: the log head does not match the entries")


def checkpoint_if_due(node: NodeContext) -> Checkpoint | None:
    """For the scheduler: sign a checkpoint when the log grew and the interval has passed.

    Returns the new checkpoint, or None when none was due. Raises LogIntegrityError.
    """
    with node.db.transaction() as session:
        size = session.execute(select(_head.c.size).where(_head.c.id == HEAD_ID)).scalar() or 0
        last = session.execute(
            select(_checkpoints.c.size, _checkpoints.c.created_at)
            .order_by(_checkpoints.c.size.desc())
            .limit(1)
        ).one_or_none()
    if size == 0 or (last is not None and last.size == size):
        return None
    if last is not None and node.clock() - last.created_at < node.settings.checkpoint_interval_seconds:
        return None
    return checkpoint(node)


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found: counts, and each problem named (the first ``len(problems)`` of
    ``problem_count``)."""

    entries: int
    checkpoints: int
    last_checkpoint_size: int | None
    problems: tuple[LogProblem, ...]
    problem_count: int

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def summary(self) -> str:
        if self.ok:
            last = "none" if self.last_checkpoint_size is None else f"at size {self.last_checkpoint_size}"
            return f"log OK: {self.entries} entries, {self.checkpoints} checkpoints, last checkpoint {last}"
        return (
            f"log has {self.problem_count} problem(s): {self.entries} entries, {self.checkpoints} checkpoints"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_checkpoint_size": self.last_checkpoint_size,
            "problem_count": self.problem_count,
            "problems": [
                {"subject": p.subject, "position": p.position, "message": p.message} for p in self.problems
            ],
        }


def verify(node: NodeContext, *, max_problems: int = 1000) -> VerifyReport:
    """Check the whole stored log against itself and the node's log public key.

    Entries (each re-canonicalised and re-hashed), the chain, contiguous indexes, every stored
    checkpoint (signature, and root against the entries) and the log head. Reads one consistent
    snapshot without blocking appends. Problems are reported, not raised.
    """
    origin = log_origin(node.node_id)
    verifier = LogVerifier(origin=origin, public_key=node.keys.log.verify_key, max_problems=max_problems)
    last_size: int | None = None
    # Paused: the collector would otherwise walk the heap again and again while rows stream by.
    with _snapshot(node.db) as conn, gc_paused():
        for row in conn.execute(select(_checkpoints).order_by(_checkpoints.c.size)):
            last_size = row.size
            signed = verifier.add_checkpoint(row.size, row.note.encode())
            if signed is not None and signed.root.hex() != row.root:
                verifier.add_problem(
                    "checkpoint",
                    row.size,
                    f"checkpoint at size {row.size}: stored root differs from its note",
                )
        before = verifier.problem_count
        verifier.add_rows(_stream_rows(conn, 0))
        entries_intact = verifier.problem_count == before
        head = conn.execute(select(_head).where(_head.c.id == HEAD_ID)).one_or_none()
    verifier.finish()
    _check_head(verifier, head, entries_intact=entries_intact)
    return VerifyReport(
        entries=verifier.count,
        checkpoints=verifier.checkpoints,
        last_checkpoint_size=last_size,
        problems=tuple(verifier.problems),
        problem_count=verifier.problem_count,
    )


def _check_head(verifier: LogVerifier, head: Any, *, entries_intact: bool) -> None:
    size = head.size if head is not None else 0
    if size != verifier.last_index + 1:
        ends = (
            "the log has no entries"
            if verifier.last_index < 0
            else f"the entries end at index {verifier.last_index}"
        )
        verifier.add_problem("head", size, f"log head: size {size} but {ends}")
        return
    if head is None:
        return
    if head.last_leaf_hash != verifier.last_leaf_hash:
        verifier.add_problem(
            "head", size, f"log head: last leaf hash does not match entry {verifier.last_index}"
        )
    try:
        intact = CompactRange.from_hex(head.size, head.compact) == verifier.compact()
    except MalformedError:
        intact = False
    if entries_intact and not intact:
        verifier.add_problem("head", size, "log head: Merkle state does not match the entries")


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """A consistent read-only view of the database that does not hold up appends while it is read.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction. SQLite: a deferred ``BEGIN`` on its own
    connection (the node's engine always begins IMMEDIATE, which would block every writer), which
    in WAL mode reads one snapshot while writers carry on.
    """
    if not db.is_sqlite:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        with db.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn
        return
    engine = create_engine(db.url, poolclass=NullPool, connect_args={"timeout": 60})
    event.listen(engine, "connect", lambda dbapi_conn, _record: setattr(dbapi_conn, "isolation_level", None))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()
    finally:
        engine.dispose()


_ROW_COLUMNS = (_entries.c.idx, *(_entries.c[name] for name in ENTRY_COLUMNS), _entries.c.leaf_hash)


def _stream_rows(conn: Connection | Session, start: int) -> Iterator[Sequence[Any]]:
    """Stored entries from index ``start`` on, in index order, as rows for LogVerifier.add_rows:
    the members in ROW_FIELDS order (``detail`` as stored text), then the stored leaf hash."""
    query = select(*_ROW_COLUMNS).where(_entries.c.idx >= start).order_by(_entries.c.idx)
    yield from conn.execute(query.execution_options(yield_per=STREAM_ROWS))


def _stream_entries(conn: Connection | Session, start: int) -> Iterator[tuple[dict[str, Any], str]]:
    """Stored entries from index ``start`` on, in index order, as (fields, stored leaf hash)."""
    for row in _stream_rows(conn, start):
        fields = dict(zip(ENTRY_COLUMNS, row[1:-1], strict=True))
        fields["index"] = row[0]
        yield fields, row[-1]


def recent_entries(node: NodeContext, *, limit: int = 20) -> list[dict[str, Any]]:
    """The last ``limit`` entries, newest first, as stored (metadata only; not verified here)."""
    with node.db.transaction() as session:
        rows = session.execute(
            select(*_ROW_COLUMNS).order_by(_entries.c.idx.desc()).limit(max(limit, 0))
        ).all()
    out = []
    for row in rows:
        fields: dict[str, Any] = {"index": row[0], **dict(zip(ENTRY_COLUMNS, row[1:-1], strict=True))}
        with contextlib.suppress(ValueError):  # else shown as stored; 'audit verify' reports it
            fields["detail"] = json.loads(fields["detail"])
        fields["leaf_hash"] = row[-1]
        out.append(fields)
    return out
