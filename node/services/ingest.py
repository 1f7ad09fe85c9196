"""Load case records: check every row and load the file in one transaction, all or nothing.

Rows are read, checked on their own (``protocol.htcds``) and against the rows before them (one
row per person in a case; the rows of one case, or of one person, agree on its fields or leave
them all empty), encoded for the database and written in batches with bulk statements. By default
one bad row means nothing is loaded: the transaction is rolled back at the first bad row, and the
rest of the file is only checked, so that every problem is reported. With ``skip_invalid`` the good
rows are loaded and the bad ones written to a rejects file.

Reading and checking (:func:`check_rows`) run in a second process for large files, while this one
writes: on two cores the two halves overlap. Rows, problems and ids come out the same either way.

A case in the file replaces that case's rows: its people are the ones in the file (a person whose
row was rejected keeps an existing link), a person left in no case is removed. A person's fields
are those of their first row in the file that has any.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from node.errors import OperatorError
from node.services.ingest_readers import CellEncoder, SourceRow, detect_format, read_rows, write_rejects
from node.services.records import Encoded, EncodedRow, RecordWriter, RowEncoder
from node.storage.models.records import IngestLoad
from protocol.htcds import Problem, RowChecker, RowRules, row_key

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from node.context import NodeContext

BATCH_ROWS = 2000
PARALLEL_FROM_BYTES = 6_000_000  # about 20,000 CSV rows; below that a second process does not pay
Progress = Callable[[int, int | None], None]
Rejects = list[tuple[dict[str, object], str]]


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


# ---- checking (in this process or a second one) -----------------------------------------------


@dataclass
class CheckedBatch:
    """What checking a run of rows gave. The last batch of a file carries ``kept_links``."""

    rows_read: int  # so far, in the whole file
    accepted: list[EncodedRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rejected: int = 0
    rejects: Rejects = field(default_factory=list)  # (row as written, reason) with keep_originals
    kept_links: dict[str, set[str]] | None = None  # case id -> person ids whose rows were all rejected


class RowPlan:
    """Checks rows in file order, each on its own and against those before it, and remembers what
    the load needs from the whole file: which row gives each case and person its fields, and
    which links rejected rows keep. CSV rows take the fast path (CellEncoder) when they can."""

    def __init__(self, rules: RowRules, *, sqlite: bool, keep_originals: bool) -> None:
        self.checker, self.encoder = RowChecker(rules), RowEncoder(sqlite=sqlite)
        self.keep_originals = keep_originals
        self.cells: CellEncoder | None = None
        self.pairs: dict[tuple[str, str], int] = {}  # (case id, person id) -> row
        self.cases: dict[str, tuple[int, int | None]] = {}  # case id -> (defining row, digest)
        self.persons: dict[str, tuple[int, int | None]] = {}  # person id -> (defining row, digest)
        self.rejected_keys: set[tuple[str, str]] = set()
        self.batch = CheckedBatch(0)

    def check(self, source: SourceRow) -> None:
        """Check one row; add it to the current batch as accepted or rejected."""
        batch = self.batch
        batch.rows_read += 1
        encoded = None
        if source.given is None:  # CSV cells: the fast path first
            cells = self.cells
            if cells is None or cells.columns is not source.columns:
                cells = self.cells = CellEncoder(
                    cast("Sequence[str | None]", source.columns), self.checker, self.encoder
                )
            encoded = cells.encode(cast("list[str]", source.raw))
        problems = []
        if encoded is None:
            problems = [source.problem] if source.problem else []
            if source.values or not problems:
                record, row_problems = self.checker.check(source.values, row=source.number)
                problems += row_problems
                if record is not None and not problems:
                    encoded = self.encoder.encode(record)
        if encoded is not None:
            accepted, problems = self._cross_check(encoded, source.number)
            if accepted is not None:
                batch.accepted.append(accepted)
                return
        batch.problems += problems
        batch.rejected += 1
        key = row_key(source.values)
        if key is not None:
            self.rejected_keys.add(key)
        if self.keep_originals:
            batch.rejects.append((source.original(), " | ".join(str(p) for p in problems)))

    def take_batch(self, *, last: bool = False) -> CheckedBatch:
        batch, self.batch = self.batch, CheckedBatch(self.batch.rows_read)
        if last:
            kept = self.rejected_keys - self.pairs.keys()
            batch.kept_links = {}
            for case_id, person_id in kept:
                batch.kept_links.setdefault(case_id, set()).add(person_id)
        return batch

    def _cross_check(self, encoded: Encoded, row: int) -> tuple[EncodedRow | None, list[Problem]]:
        case_id, person_id, case, person, link, events = encoded
        key, problems = (case_id, person_id), []
        if key in self.pairs:
            expected = f"one row per person in a case (this person is in this case on row {self.pairs[key]})"
            problems.append(Problem(row, "prs_PersonId", expected, "a second row"))
        case_digest = None if case == self.encoder.empty_case else hash(case)
        person_digest = None if person[-1] == self.encoder.empty_hash else hash(person[-1])
        problems += _disagreement(self.cases, case_id, case_digest, row, "cas_*", "case")
        problems += _disagreement(self.persons, person_id, person_digest, row, "prs_*", "person")
        if problems:
            return None, problems
        self.pairs[key] = row
        defines_case = _define(self.cases, case_id, case_digest, row)
        defines_person = _define(self.persons, person_id, person_digest, row)
        return (
            row, case_id, person_id, case if defines_case else None, person if defines_person else None,
            link, events,
        ), []  # fmt: skip


def _disagreement(
    seen: dict[str, tuple[int, int | None]], key: str, digest: int | None, row: int, fields: str, what: str
) -> list[Problem]:
    first = seen.get(key)
    if first is None or first[1] is None or digest is None or first[1] == digest:
        return []
    expected = f"the same {what} fields as row {first[0]} (same {what} id), or none"
    return [Problem(row, fields, expected, "different values")]


def _define(seen: dict[str, tuple[int, int | None]], key: str, digest: int | None, row: int) -> bool:
    """Whether this row now gives the case (person) its fields: it is the first row, or the first
    with any fields after rows with none."""
    first = seen.get(key)
    if first is None or (first[1] is None and digest is not None):
        seen[key] = (row, digest)
        return True
    return False


def check_rows(
    path: Path, fmt: str, rules: RowRules, *, sqlite: bool, keep_originals: bool
) -> Generator[CheckedBatch, None, None]:
    """Read and check ``path`` in batches of BATCH_ROWS rows; the last batch carries kept_links.
    Raises OperatorError (``invalid_file``) for file-level problems."""
    plan = RowPlan(rules, sqlite=sqlite, keep_originals=keep_originals)
    for source in read_rows(path, fmt):
        plan.check(source)
        if plan.batch.rows_read % BATCH_ROWS == 0:
            yield plan.take_batch()
    yield plan.take_batch(last=True)


def _check_in_child(sender: Connection, *args: Any, **kwargs: Any) -> None:
    """The second process: check rows and send the batches; an error goes over as a message.
    Ctrl-C is left to the loading process, which then stops this one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for batch in check_rows(*args, **kwargs):
            sender.send(("batch", batch))
    except OperatorError as e:
        sender.send(("error", (e.message, e.code)))
    except BrokenPipeError:  # the loading process stopped listening
        pass
    except Exception as e:  # where it failed, without the message (it might quote a value)
        sender.send(("crash", "".join(traceback.format_tb(e.__traceback__)) + type(e).__name__))
    finally:
        sender.close()


class Batches(Protocol):
    """Checked batches in file order, from this process or a second one; close() stops early."""

    def __iter__(self) -> Iterator[CheckedBatch]: ...

    def __next__(self) -> CheckedBatch: ...

    def close(self) -> None: ...


class CheckingProcess:
    """check_rows run in a forked process, started at once (before any transaction is open); its
    batches are received here in order. close() stops the process if it has not finished."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_check_in_child, args=(sender, *args), kwargs=kwargs, daemon=True
        )
        self.process.start()
        sender.close()
        self.done = False

    def __iter__(self) -> CheckingProcess:
        return self

    def __next__(self) -> CheckedBatch:
        if self.done:
            raise StopIteration
        try:
            kind, payload = self.receiver.recv()
        except EOFError:
            raise RuntimeError("the process checking rows stopped without a word") from None
        if kind == "error":
            raise OperatorError(payload[0], code=payload[1])
        if kind == "crash":
            raise RuntimeError(f"the process checking rows failed:\n{payload}")
        self.done = payload.kept_links is not None
        return cast(CheckedBatch, payload)

    def close(self) -> None:
        self.receiver.close()
        if not self.done:
            self.process.kill()
        self.process.join()


def _checked(path: Path, fmt: str, rules: RowRules, *, sqlite: bool, keep_originals: bool) -> Batches:
    """The checked batches of ``path``, from a second process when that pays, else from this one."""
    if _second_process_pays(path):
        try:
            return CheckingProcess(path, fmt, rules, sqlite=sqlite, keep_originals=keep_originals)
        except OSError:  # no process to be had (limits, memory): check here
            pass
    return check_rows(path, fmt, rules, sqlite=sqlite, keep_originals=keep_originals)


def _second_process_pays(path: Path) -> bool:
    """A large file, and a fork is safe: no other thread runs (as in the CLI, unlike a server), and
    this process may have children (a daemonic one may not)."""
    return (
        path.stat().st_size >= PARALLEL_FROM_BYTES
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
        and "fork" in multiprocessing.get_all_start_methods()
    )


# ---- loading ----------------------------------------------------------------------------------


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
    per batch with the rows read so far and total None, and at the end with the rows loaded twice.
    """
    rejects = _rejects_path(path, skip_invalid, rejects_path)
    fmt = detect_format(path, file_format)
    with _cyclic_gc_paused():
        batches = _checked(path, fmt, _rules(node), sqlite=node.db.is_sqlite, keep_originals=skip_invalid)
        try:
            return _ingest(node, batches, fmt, skip_invalid, rejects, progress)
        finally:
            batches.close()


class _Abandoned(Exception):
    """A row is bad and skip_invalid is false: the load is rolled back, the rest only checked."""


def _ingest(
    node: NodeContext,
    batches: Batches,
    fmt: str,
    skip_invalid: bool,
    rejects: Path,
    progress: Progress | None,
) -> IngestReport:
    report = IngestReport(fmt)
    try:
        _load(node, batches, report, skip_invalid, rejects, progress)
    except _Abandoned:
        for batch in batches:
            _count(batch, report, progress)
        report.rows_loaded = 0
        raise IngestRejected(report) from None
    except IntegrityError as e:
        raise OperatorError(
            "another load changed the same cases at the same time; load again", code="conflict"
        ) from e
    if progress is not None:
        progress(report.rows_loaded, report.rows_loaded)
    return report


def _count(batch: CheckedBatch, report: IngestReport, progress: Progress | None) -> None:
    report.rows_read = batch.rows_read
    report.rows_rejected += batch.rejected
    report.problems += batch.problems
    if progress is not None:
        progress(batch.rows_read, None)


def _load(
    node: NodeContext,
    batches: Batches,
    report: IngestReport,
    skip_invalid: bool,
    rejects_path: Path,
    progress: Progress | None,
) -> None:
    now = node.clock()
    rejects: Rejects = []
    kept_links: dict[str, set[str]] = {}
    with node.db.transaction() as session:
        load_id = session.execute(
            insert(IngestLoad).values(started_at=now, file_format=report.file_format).returning(IngestLoad.id)
        ).scalar_one()
        writer = RecordWriter(session, now=now, load_id=load_id, encoder=RowEncoder(sqlite=node.db.is_sqlite))
        for batch in batches:
            if batch.problems and not skip_invalid:
                _count(batch, report, progress)
                raise _Abandoned
            writer.write(batch.accepted)
            report.rows_loaded += len(batch.accepted)
            rejects += batch.rejects
            kept_links = batch.kept_links or kept_links
            _count(batch, report, progress)
        writer.finish(kept_links)
        for name, value in writer.counts.items():
            setattr(report, name, value)
        if rejects:
            write_rejects(rejects_path, rejects)
            report.rejects_file = rejects_path
        summary = {
            k: getattr(report, k) for k in (*writer.counts, "rows_read", "rows_loaded", "rows_rejected")
        }
        session.execute(
            update(IngestLoad).where(IngestLoad.id == load_id).values(finished_at=node.clock(), **summary)
        )


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while loading: the rows make no cycles, and each full
    collection walks every object kept so far again. The previous state is restored afterwards."""
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
