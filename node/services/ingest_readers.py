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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from node.errors import OperatorError
from protocol.htcds import IGNORED_COLUMNS, MULTI_SEPARATOR, HeaderError, Problem, field_spec, resolve_columns

FORMATS = ("csv", "jsonl", "xlsx")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}
_ROW = "(row)"
_LINE = "one JSON object per line"


@dataclass(slots=True)
class SourceRow:
    """One row of the file: its number, its values by canonical column, and how it was written."""

    number: int
    values: dict[str, object]
    raw: Sequence[object] | dict[str, object] | str  # cells (CSV, XLSX), object or line (JSONL)
    header: Sequence[str] | None = None  # the file's column names, for cells
    problem: Problem | None = None  # set when the row could not be read at all

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


def _cells_row(
    number: int, cells: Sequence[Any], header: Sequence[str], columns: Sequence[str | None]
) -> SourceRow:
    values = {
        name: cell
        for name, cell in zip(columns, cells, strict=False)
        if name and cell is not None and cell != ""
    }
    row = SourceRow(number, values, cells, header)
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
            for number, cells in enumerate(reader, start=2):
                if any(cells):
                    yield _cells_row(number, cells, header, columns)
    except UnicodeDecodeError as e:
        raise _not_utf8(path) from e
    except csv.Error as e:
        raise invalid_file(f"{path.name} is not valid CSV near row {number + 1}") from e


def _read_jsonl(path: Path) -> Iterator[SourceRow]:
    unknown: set[str] = set()
    try:
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield _json_row(number, line, unknown)
    except UnicodeDecodeError as e:
        raise _not_utf8(path) from e
    if unknown:
        names = ", ".join(sorted(name[:40] for name in unknown)[:20])
        raise invalid_file(f"unknown column(s) {names} (column names match HTCDS 2.0, see docs/ingest.md)")


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _json_row(number: int, line: str, unknown: set[str]) -> SourceRow:
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
        if key.strip().lower() in IGNORED_COLUMNS:
            continue
        spec = field_spec(key)
        if spec is None:
            unknown.add(key)
            continue
        if spec.name in values:
            row.problem = Problem(number, spec.name, "each column once per object", "the column twice")
        if value is not None and value != "":
            values[spec.name] = value
    return row


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
