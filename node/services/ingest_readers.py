"""Streaming readers for case-record files: CSV, JSON Lines and XLSX, one row at a time.

Each reader yields :class:`SourceRow` objects whose ``values`` map canonical HTCDS column names
(``protocol.htcds.resolve_columns``) to raw cell values, leaving out empty cells. Row numbers are
the ones a person sees: in CSV and XLSX the header is row 1 and the first record row 2 (a
spreadsheet's numbering; a quoted value over several lines is still one row); in JSON Lines the
first line is 1. Blank rows and lines are skipped but still counted.

File-level problems (not UTF-8, not CSV, not a workbook, wrong columns) raise OperatorError with
code ``invalid_file``; a row that cannot be read at all comes back with ``problem`` set.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from json.encoder import encode_basestring
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from node.errors import OperatorError
from node.services.records import Encoded, Row, RowEncoder
from protocol.htcds import (
    CASE_ATTRS,
    FIELDS,
    HASH_ORDER,
    IGNORED_COLUMNS,
    MEMO_LIMIT,
    MULTI_SEPARATOR,
    PERPETRATOR_ATTRS,
    PERSON_ATTRS,
    VICTIM_ATTRS,
    HeaderError,
    Problem,
    RowChecker,
    content_hash_of_members,
    field_spec,
    hash_member,
    resolve_columns,
)
from protocol.htcds_values import EVENT_TYPES, MISS, PREFIX_ROLES, InvalidValue

FORMATS = ("csv", "jsonl", "xlsx")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}
_ROW = "(row)"
_LINE = "one JSON object per line"


@dataclass(slots=True)
class SourceRow:
    """One row of the file: its number, its values by canonical column, and how it was written."""

    number: int
    given: dict[str, object] | None  # the values; None: made from the cells when first asked for
    raw: Sequence[object] | dict[str, object] | str  # cells (CSV, XLSX), object or line (JSONL)
    header: Sequence[str] | None = None  # the file's column names, for cells
    columns: Sequence[str | None] | None = None  # the canonical name of each cell's column, for cells
    problem: Problem | None = None  # set when the row could not be read at all

    @property
    def values(self) -> dict[str, object]:
        """The non-empty values by canonical column name."""
        if self.given is None:
            assert self.columns is not None and not isinstance(self.raw, str | dict)
            self.given = _values(self.columns, self.raw)
        return self.given

    def original(self) -> dict[str, object]:
        """The row as written: original column name -> value (for the rejects file)."""
        if isinstance(self.raw, dict):
            return self.raw
        if isinstance(self.raw, str):
            return {"raw_line": self.raw}
        header = self.header or ()
        row = {name: value for name, value in zip(header, self.raw, strict=False)}
        row.update({f"(extra {i + 1})": v for i, v in enumerate(self.raw[len(header) :])})
        return row


def invalid_file(message: str) -> OperatorError:
    return OperatorError(message, code="invalid_file")


def detect_format(path: Path, explicit: str | None) -> str:
    """The file's format: ``explicit`` if given, else from the extension. Raises OperatorError."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise invalid_file(f"unknown format {explicit!r}; expected one of {', '.join(FORMATS)}")
        return explicit
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise invalid_file(
            f"cannot tell the format of {path.name} from its extension; give --format csv|jsonl|xlsx"
        )
    return fmt


def read_rows(path: Path, fmt: str) -> Iterator[SourceRow]:
    """Yield the rows of ``path``. Raises OperatorError (``invalid_file``) for file-level problems."""
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "xlsx": _read_xlsx}
    try:
        yield from readers[fmt](path)
    except OSError as e:
        raise invalid_file(f"cannot read {path.name}: {e.strerror or type(e).__name__}") from e


def _columns(names: Sequence[str]) -> tuple[str | None, ...]:
    try:
        return resolve_columns(names)
    except HeaderError as e:
        raise invalid_file(e.message) from e


def _values(columns: Sequence[str | None], cells: Sequence[Any]) -> dict[str, object]:
    return {
        name: cell
        for name, cell in zip(columns, cells, strict=False)
        if name and cell is not None and cell != ""
    }


def _cells_row(
    number: int, cells: Sequence[Any], header: Sequence[str], columns: Sequence[str | None]
) -> SourceRow:
    row = SourceRow(number, _values(columns, cells), cells, header)
    if len(cells) > len(header) or "" in header:
        stray = [
            c
            for i, c in enumerate(cells)
            if (i >= len(header) or not header[i]) and c is not None and c != ""
        ]
        if stray:
            expected = f"at most {sum(1 for name in header if name)} values, one under each named column"
            row.problem = Problem(number, _ROW, expected, f"{len(stray)} value(s) under no column name")
    return row


def _not_utf8(path: Path) -> OperatorError:
    """The file-level error for a file that is not UTF-8, naming the first line that is not."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        for line, raw in enumerate(f, start=1):  # noqa: B007 - the line where the loop stops is reported
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                break
    return invalid_file(f"{path.name} is not UTF-8 text (line {line}); save it as UTF-8 and load again")


def _read_csv(path: Path) -> Iterator[SourceRow]:
    number = 1
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise invalid_file(f"{path.name} is empty; expected a header row of HTCDS column names")
            if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
                raise invalid_file(
                    f"{path.name}: the header is one column; separate columns with ',' (not ';' or tab)"
                )
            header = [name.strip() for name in header]
            columns = _columns(header)
            lazy = "" not in header  # values made only if asked for (CellEncoder reads the cells)
            for number, cells in enumerate(reader, start=2):
                if any(cells):
                    if lazy and len(cells) <= len(header):
                        yield SourceRow(number, None, cells, header, columns)
                    else:
                        yield _cells_row(number, cells, header, columns)
    except UnicodeDecodeError as e:
        raise _not_utf8(path) from e
    except csv.Error as e:
        raise invalid_file(f"{path.name} is not valid CSV near row {number + 1}") from e


def _read_jsonl(path: Path) -> Iterator[SourceRow]:
    unknown: set[str] = set()
    names: dict[str, str | None] = {}  # key as written -> canonical column name; "" ignored, None unknown
    try:
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield _json_row(number, line, unknown, names)
    except UnicodeDecodeError as e:
        raise _not_utf8(path) from e
    if unknown:
        listed = ", ".join(sorted(name[:40] for name in unknown)[:20])
        raise invalid_file(f"unknown column(s) {listed} (column names match HTCDS 2.0, see docs/ingest.md)")


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _json_row(number: int, line: str, unknown: set[str], names: dict[str, str | None]) -> SourceRow:
    text = line.rstrip("\r\n")
    try:
        obj = json.loads(line, object_pairs_hook=_pairs)
    except _DuplicateKey:
        return SourceRow(
            number, {}, text, problem=Problem(number, "(line)", "each key once", "a key given twice")
        )
    except ValueError:
        return SourceRow(
            number, {}, text, problem=Problem(number, "(line)", _LINE, "malformed or truncated JSON")
        )
    if not isinstance(obj, dict):
        kinds: dict[type, str] = {list: "array", str: "string"}
        kind = kinds.get(type(obj), "number or constant")
        return SourceRow(number, {}, text, problem=Problem(number, "(line)", _LINE, f"a JSON {kind}"))
    values: dict[str, object] = {}
    row = SourceRow(number, values, obj)
    for key, value in obj.items():
        name = names[key] if key in names else names.setdefault(key, _json_column(key))
        if not name:
            if name is None:
                unknown.add(key)
            continue
        if name in values:
            row.problem = Problem(number, name, "each column once per object", "the column twice")
        if value is not None and value != "":
            values[name] = value
    return row


def _json_column(key: str) -> str | None:
    """The canonical column name of a JSON key; "" for an ignored one, None for an unknown one."""
    if key.strip().lower() in IGNORED_COLUMNS:
        return ""
    spec = field_spec(key)
    return None if spec is None else spec.name


def _read_xlsx(path: Path) -> Iterator[SourceRow]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise invalid_file(f"{path.name} is not an XLSX workbook") from e
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header_cells = next(rows, None)
        if header_cells is None:
            raise invalid_file(
                f"{path.name}: the first sheet is empty; expected a header row of HTCDS column names"
            )
        header = ["" if cell is None else str(cell).strip() for cell in header_cells]
        columns = _columns(header)
        for number, cells in enumerate(rows, start=2):
            if any(cell is not None and cell != "" for cell in cells):
                yield _cells_row(number, cells, header, columns)
    finally:
        workbook.close()


def write_rejects(path: Path, rows: Sequence[tuple[dict[str, object], str]]) -> None:
    """Write rejected rows as CSV (their columns as written, plus ``reject_reason``), mode 0600:
    it holds personal data. Overwrites an earlier rejects file. Raises OperatorError."""
    header: dict[str, None] = {}
    for original, _ in rows:
        header.update(dict.fromkeys(original))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file may have had wider permissions
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*header, "reject_reason"])
            for original, reason in rows:
                writer.writerow([*(_cell(original.get(name)) for name in header), reason])
    except OSError as e:
        raise OperatorError(f"cannot write the rejects file {path}: {e.strerror or type(e).__name__}") from e


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return MULTI_SEPARATOR.join(_cell(item) for item in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ---- the fast path for CSV cells --------------------------------------------------------------

_UNIQUE_KINDS = frozenset({"id", "phone", "email", "free"})  # seldom repeated: not remembered
_OTHER = {"victim": "perpetrator", "perpetrator": "victim"}


def _getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A tuple of the items at ``positions`` (itemgetter gives a bare item for one position)."""
    if len(positions) == 1:
        return lambda items: (items[positions[0]],)
    return itemgetter(*positions) if positions else lambda items: ()


class CellEncoder:
    """CSV rows straight from their text cells to what the database takes, for rows whose every
    cell is plainly valid: the same as ``RowEncoder.encode`` of the checked record. Any other row
    gives None and then takes the full check (``protocol.htcds.RowChecker``), which reports its
    problems exactly.

    Each cell goes through a per-column memo of raw text -> stored value, so that a repeated cell
    (value names, dates, numbers, most names) costs one dict lookup in C; a new one is parsed by
    ``RowChecker.parse``. Groups come out of the row by ``itemgetter``, and the content hash from
    remembered members (``protocol.htcds.hash_member``).
    """

    def __init__(self, columns: Sequence[str | None], checker: RowChecker, encoder: RowEncoder) -> None:
        self.checker, self.encoder, null = checker, encoder, encoder.null
        self.columns, self.width, self.null = columns, len(columns), null
        kept = [i for i, name in enumerate(columns) if name]
        self.cells = _getter(kept)
        specs = [FIELDS.get(str(columns[i])) or field_spec(str(columns[i])) for i in kept]
        self.specs = [spec for spec in specs if spec is not None]
        assert len(self.specs) == len(kept), "columns are resolved before rows are read"
        rules = checker.rules
        defaults = {
            "matchable": encoder.value(rules.default_matchable),
            "handling_code": rules.default_handling_code,
        }
        # Appended to a row's values, from k = len(specs): null, the two sharing defaults, free text,
        # registration year, content hash.
        self.tail = (null, defaults["matchable"], defaults["handling_code"], null, null, null)
        self.empty = [defaults.get(s.attr, null) if s.group == "sharing" else null for s in self.specs]
        self.memos: list[dict[str, Any]] = [{"": value} for value in self.empty]
        self.misses = [MISS] * len(self.specs)
        self.remember = [s.kind not in _UNIQUE_KINDS for s in self.specs]
        self.at = {(s.group, s.attr): i for i, s in enumerate(self.specs)}
        self._groups(len(self.specs))
        self.hashed = [(self.at["person", attr], attr) for attr in HASH_ORDER if ("person", attr) in self.at]
        self.get_hashed = _getter([i for i, _ in self.hashed])
        self.member_of = {i: n for n, (i, _) in enumerate(self.hashed)}
        self.prefixes = [hash_member(attr, "")[:-2] for _, attr in self.hashed]  # '"attr":'
        self.members: list[dict[str, str]] = [{"": ""} for _ in self.hashed]
        self.member_misses = [MISS] * len(self.hashed)
        self.fresh: dict[int, str] = {}  # members of the current row that no memo held

    def _groups(self, k: int) -> None:
        """Where each group's values are in a row's values (k and on: see self.tail)."""

        def get(group: str, attrs: Sequence[str], missing: int = k) -> list[int]:
            return [self.at.get((group, attr), missing) for attr in attrs]

        null = self.null
        self.get_ids = _getter(get("id", ("case_id", "person_id", "role")))
        self.get_case = _getter([*get("case", CASE_ATTRS), k + 4])
        self.get_person = _getter([*get("person", PERSON_ATTRS), k + 5])
        self.get_other = {"victim": _getter(get("perpetrator", PERPETRATOR_ATTRS)),
                          "perpetrator": _getter(get("victim", VICTIM_ATTRS))}  # fmt: skip
        self.nothing = {
            "victim": (null,) * len(PERPETRATOR_ATTRS),
            "perpetrator": (null,) * len(VICTIM_ATTRS),
        }
        self.get_link = _getter(
            get("victim", VICTIM_ATTRS) + get("perpetrator", PERPETRATOR_ATTRS) + get("id", ("role",))
            + get("sharing", ("matchable",), k + 1) + get("sharing", ("handling_code",), k + 2)
            + get("sharing", ("grading",)) + [k + 3] + get("synth", ("synth_true_id",))
        )  # fmt: skip
        self.registered = self.at.get(("case", "registration_date"), k)
        parts = [f"{kind.lower()}_{part}" for kind in EVENT_TYPES for part in ("country", "city", "date")]
        self.get_events = _getter(get("event", parts))
        self.no_events = (null,) * len(parts)
        self.free = [(i, s.name) for i, s in enumerate(self.specs) if s.group == "free_text"]

    def encode(self, cells: Sequence[str]) -> Encoded | None:
        """The row as RowEncoder.encode gives it, or None when the row needs the full check."""
        if len(cells) != self.width:
            return None
        raw = self.cells(cells)
        values = list(map(dict.get, self.memos, raw, self.misses))
        if MISS in values and not self._fill(values, raw):
            return None
        null = self.null
        values += self.tail
        case_id, person_id, role = self.get_ids(values)  # role: victim or perpetrator, or null
        if null in (case_id, person_id, role) or self.get_other[role](values) != self.nothing[role]:
            return None  # a required value missing, or a column of the other role filled
        if self.free:
            texts = {name: values[i] for i, name in self.free if values[i] != null}
            if any(PREFIX_ROLES.get(name[:4].lower(), role) != role for name in texts):
                return None
            values[-3] = self.encoder.value(texts or None)
        registered = values[self.registered]
        if registered != null:
            values[-2] = int(str(registered)[:4])
        values[-1] = self._hash(raw)
        events = self.get_events(values)
        return (
            case_id,
            person_id,
            self.get_case(values),
            self.get_person(values),
            self.get_link(values),
            () if events == self.no_events else self._events(events),
        )

    def _fill(self, values: list[Any], raw: Sequence[str]) -> bool:
        """Parse the cells no memo knew; False if one is not valid."""
        self.fresh.clear()
        i = -1
        try:
            while True:
                i = values.index(MISS, i + 1)
                values[i] = self._parse(i, raw[i])
        except ValueError:
            return True
        except InvalidValue:
            return False

    def _parse(self, i: int, cell: str) -> Any:
        spec = self.specs[i]
        n = self.member_of.get(i)
        if not self.remember[i]:  # text, never remembered: the shortest way
            text = spec.fast(cell)
            if text is MISS:
                text = self.checker.parse(spec, cell)
            if text is None:
                if n is not None:
                    self.fresh[n] = ""
                return self.null
            if n is not None:
                self.fresh[n] = self.prefixes[n] + encode_basestring(cast(str, text))
            return text
        value = self.checker.parse(spec, cell)
        if value is None:
            stored = self.empty[i]
        else:  # event columns keep their values: events are made from them below
            stored = value if spec.group == "event" else self.encoder.value(value)
        member = "" if n is None or value is None else hash_member(self.hashed[n][1], value)  # type: ignore[arg-type]
        memo = self.memos[i]
        if len(memo) >= MEMO_LIMIT:  # start again: later rows are likelier to repeat recent cells
            memo.clear()
            memo[""] = self.empty[i]
            if n is not None:
                self.members[n].clear()
                self.members[n][""] = ""
        memo[cell] = stored
        if n is not None:
            self.members[n][cell] = member
        return stored

    def _hash(self, raw: Sequence[str]) -> str:
        members = list(map(dict.get, self.members, self.get_hashed(raw), self.member_misses))
        if MISS in members:  # cells not remembered: their members were made when they were parsed
            for n, member in self.fresh.items():
                members[n] = member
        return content_hash_of_members(filter(None, members))

    def _events(self, cells: tuple[Any, ...]) -> tuple[Row, ...]:
        """As protocol.htcds unflattens the hte_ columns: one Transit event per transit country."""
        null, events = self.null, list[Row]()
        for kind, (country, city, when) in zip(
            EVENT_TYPES, (cells[0:3], cells[3:6], cells[6:9]), strict=True
        ):
            if type(country) is tuple:
                events.append((len(events), kind, country[0], city, when))
                events += [(len(events) + n, kind, other, null, null) for n, other in enumerate(country[1:])]
            elif country != null or city != null or when != null:
                events.append((len(events), kind, country, city, when))
        return tuple(events)
