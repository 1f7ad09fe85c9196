"""Load case records: check the whole file, then load it in one transaction.

Pass 1 reads every row, checks it (``protocol.htcds.validate_row``) and checks rows against each
other: one row per person in a case, and the rows of one case (of one person) agree on the case
(person) fields, or leave them all empty. Nothing touches the database before pass 1 is done; by
default one bad row means nothing is loaded. Pass 2 reads the file again and loads the accepted
rows in batches with bulk statements, all in one transaction.

A case in the file replaces that case's rows: its people are the ones in the file (a person whose
row was rejected keeps an existing link), a person left in no case is removed. A person's fields
are those of their first row in the file that has any.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from node.errors import OperatorError
from node.services.ingest_readers import SourceRow, detect_format, read_rows, write_rejects
from node.services.records import RecordWriter
from node.storage.models.records import IngestLoad
from protocol.htcds import Problem, Record, RowRules, row_key, validate_row

if TYPE_CHECKING:
    from node.context import NodeContext

BATCH_ROWS = 2000
CACHE_ROWS = 100_000  # checked records kept from pass 1 (about 1.5 kB each); later rows are read again
Progress = Callable[[int, int | None], None]


@dataclass
class IngestReport:
    """What a load did (or would have done): counts, every problem, where rejected rows went."""

    file_format: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    cases_created: int = 0
    cases_updated: int = 0
    persons_created: int = 0
    persons_updated: int = 0
    persons_removed: int = 0
    problems: list[Problem] = field(default_factory=list)
    rejects_file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        return {
            "file_format": self.file_format,
            **counts,
            "problems": [p.to_dict() for p in self.problems],
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


class IngestRejected(OperatorError):
    """Rows are bad and ``skip_invalid`` was not asked for: nothing was loaded. Carries the report."""

    code = "invalid_rows"

    def __init__(self, report: IngestReport) -> None:
        super().__init__(
            f"{len(report.problems):,} problem(s) in {report.rows_rejected:,} of {report.rows_read:,} row(s); "
            "nothing was loaded"
        )
        self.report = report


@dataclass
class LoadPlan:
    """What pass 1 decided: rejected rows, the row that defines each case and person, links to keep."""

    rules: RowRules
    keep_originals: bool
    problems: list[Problem] = field(default_factory=list)
    rejected: set[int] = field(default_factory=set)
    rejects: list[tuple[dict[str, object], str]] = field(default_factory=list)
    rows_read: int = 0
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    cases: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # case id -> (row, digest)
    persons: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # person id -> (row, digest)
    rejected_keys: set[tuple[str, str]] = field(default_factory=set)
    records: list[Record] = field(default_factory=list)  # accepted rows up to ``cached_through``
    cached_through: int = 0  # every row up to this number is in ``records`` or rejected
    complete: bool = True  # every row is in ``records`` or rejected

    @property
    def case_rows(self) -> set[int]:
        return {row for row, _ in self.cases.values()}

    @property
    def person_rows(self) -> set[int]:
        return {row for row, _ in self.persons.values()}

    def kept_links(self) -> dict[str, set[str]]:
        """Per case id, persons whose every row in that case was rejected: their old link stays."""
        kept: dict[str, set[str]] = {}
        for case_id, person_id in self.rejected_keys - self.pairs.keys():
            kept.setdefault(case_id, set()).add(person_id)
        return kept

    def check(self, source: SourceRow) -> None:
        """Check one row on its own and against the rows before it; remember what it decides."""
        self.rows_read += 1
        problems = [source.problem] if source.problem else []
        record = None
        if source.values or not problems:
            record, row_problems = validate_row(source.values, row=source.number, rules=self.rules)
            problems += row_problems
        if record is not None and not problems:
            problems = self._cross_check(record)
        if problems:
            self._reject(source, problems)
        elif self.complete and len(self.records) < CACHE_ROWS:
            assert record is not None
            self.records.append(record)
        else:
            self.complete = False
        if self.complete:
            self.cached_through = source.number

    def _cross_check(self, record: Record) -> list[Problem]:
        key = (record.case_id, record.person_id)
        problems = []
        if key in self.pairs:
            expected = f"one row per person in a case (this person is in this case on row {self.pairs[key]})"
            problems.append(Problem(record.row, "prs_PersonId", expected, "a second row"))
        case_digest, person_digest = _digest(record.case), _digest(record.person)
        problems += _disagreement(self.cases, record.case_id, case_digest, record.row, "cas_*", "case")
        problems += _disagreement(
            self.persons, record.person_id, person_digest, record.row, "prs_*", "person"
        )
        if not problems:
            self.pairs[key] = record.row
            _define(self.cases, record.case_id, case_digest, record.row)
            _define(self.persons, record.person_id, person_digest, record.row)
        return problems

    def _reject(self, source: SourceRow, problems: list[Problem]) -> None:
        self.problems += problems
        self.rejected.add(source.number)
        key = row_key(source.values)
        if key is not None:
            self.rejected_keys.add(key)
        if self.keep_originals:
            self.rejects.append((source.original(), " | ".join(str(p) for p in problems)))


def _digest(group: dict[str, Any] | Any) -> int | None:
    return hash(frozenset(group.items())) if group else None


def _disagreement(
    seen: dict[str, tuple[int, int | None]], key: str, digest: int | None, row: int, fields: str, what: str
) -> list[Problem]:
    first = seen.get(key)
    if first is None or first[1] is None or digest is None or first[1] == digest:
        return []
    expected = f"the same {what} fields as row {first[0]} (same {what} id), or none"
    return [Problem(row, fields, expected, "different values")]


def _define(seen: dict[str, tuple[int, int | None]], key: str, digest: int | None, row: int) -> None:
    first = seen.get(key)
    if first is None or (first[1] is None and digest is not None):
        seen[key] = (row, digest)


def ingest_file(
    node: NodeContext,
    path: Path,
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
    file_format: str | None = None,
) -> IngestReport:
    """Check ``path`` (CSV, JSON Lines or XLSX of HTCDS rows) and load it in one transaction.

    Raises OperatorError (code ``invalid_file``) when the file cannot be read as a whole (format,
    encoding, columns) and IngestRejected (code ``invalid_rows``, with the report) when rows are
    bad and ``skip_invalid`` is false; in both cases nothing is loaded. With ``skip_invalid`` the
    good rows are loaded and the bad ones written to ``rejects_path`` (default
    ``<name>.rejected.csv`` beside the file, mode 0600). ``progress(rows_done, total)`` is called
    per batch: total is None while checking, the number of rows to load while loading.
    """
    with _cyclic_gc_paused():
        return _ingest(
            node, path, skip_invalid, _rejects_path(path, skip_invalid, rejects_path), progress, file_format
        )


def _ingest(
    node: NodeContext,
    path: Path,
    skip_invalid: bool,
    rejects: Path,
    progress: Progress | None,
    file_format: str | None,
) -> IngestReport:
    fmt = detect_format(path, file_format)
    plan = LoadPlan(rules=_rules(node), keep_originals=skip_invalid)
    for source in read_rows(path, fmt):
        plan.check(source)
        if progress is not None and plan.rows_read % BATCH_ROWS == 0:
            progress(plan.rows_read, None)
    report = IngestReport(
        fmt, rows_read=plan.rows_read, rows_rejected=len(plan.rejected), problems=plan.problems
    )
    if plan.rejected and not skip_invalid:
        raise IngestRejected(report)
    if plan.rejects:
        write_rejects(rejects, plan.rejects)
        report.rejects_file = rejects
    try:
        _load(node, path, plan, report, progress)
    except IntegrityError as e:
        raise OperatorError(
            "another load changed the same cases at the same time; load again", code="conflict"
        ) from e
    return report


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while loading. Pass 1 keeps up to CACHE_ROWS records
    (which hold no cycles), and every full collection walks them all again: pausing saves about
    a fifth of the time of a 50,000-row load. The previous state is restored afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rejects_path(path: Path, skip_invalid: bool, given: Path | None) -> Path:
    if given is not None and not skip_invalid:
        raise OperatorError("a rejects file is written only with skip_invalid", code="invalid_request")
    rejects = given or path.with_name(f"{path.stem}.rejected.csv")
    if rejects.resolve() == path.resolve():
        raise OperatorError("the rejects file cannot be the file being loaded", code="invalid_request")
    return rejects


def _rules(node: NodeContext) -> RowRules:
    # The latest acceptable date is tomorrow in UTC: today somewhere on Earth.
    today = datetime.fromtimestamp(node.clock(), UTC).date()
    return RowRules(
        latest_date=today + timedelta(days=1),
        default_matchable=node.settings.default_matchable,
        default_handling_code=node.settings.default_handling_code,
    )


def _load(
    node: NodeContext, path: Path, plan: LoadPlan, report: IngestReport, progress: Progress | None
) -> None:
    total = plan.rows_read - len(plan.rejected)
    now = node.clock()
    with node.db.transaction() as session:
        load_id = session.execute(
            insert(IngestLoad).values(started_at=now, file_format=report.file_format).returning(IngestLoad.id)
        ).scalar_one()
        writer = RecordWriter(
            session,
            now=now,
            load_id=load_id,
            case_rows=plan.case_rows,
            person_rows=plan.person_rows,
            kept_links=plan.kept_links(),
        )
        batch: list[Record] = []
        for record in _accepted(path, report.file_format, plan):
            batch.append(record)
            if len(batch) == BATCH_ROWS:
                writer.write(batch)
                report.rows_loaded += len(batch)
                batch = []
                if progress is not None:
                    progress(report.rows_loaded, total)
        writer.write(batch)
        report.rows_loaded += len(batch)
        writer.finish()
        for name, value in writer.counts.items():
            setattr(report, name, value)
        summary = {
            k: getattr(report, k) for k in (*writer.counts, "rows_read", "rows_loaded", "rows_rejected")
        }
        session.execute(
            update(IngestLoad).where(IngestLoad.id == load_id).values(finished_at=node.clock(), **summary)
        )
    if progress is not None:
        progress(report.rows_loaded, total)


def _accepted(path: Path, fmt: str, plan: LoadPlan) -> Iterator[Record]:
    """The accepted records: those kept from pass 1, then the rest read and checked again."""
    yield from plan.records
    if plan.complete:
        return
    for source in read_rows(path, fmt):
        if source.number > plan.cached_through and source.number not in plan.rejected:
            record, _ = validate_row(source.values, row=source.number, rules=plan.rules)
            assert record is not None, "pass 1 accepted this row"
            yield record
