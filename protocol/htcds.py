"""HTCDS 2.0 case records: the columns of a file, and the check of one row.

Pure: values in, a :class:`Record` or a list of :class:`Problem` out. Readers (CSV, JSON Lines,
XLSX) live in the node; they hand each row over as ``{canonical column name: raw value}``. The
vocabulary, the column table and the check of one value are in ``protocol.htcds_values``; the
names other modules use are re-exported here.

A :class:`Problem` never carries a personal value: for direct identifiers (names, birth date,
identity number, phones, e-mail, street, postcode) it describes what arrived ("12 characters,
not a date"); for other fields it may show a short code-like value ("'Femenine'").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from json.encoder import encode_basestring

from protocol.errors import MalformedError
from protocol.htcds_values import (
    CASE_STATUS,
    COLUMNS,
    COUNTRIES,
    EVENT_TYPES,
    EXPLOITATION,
    GENDER,
    MISS,
    MULTI_SEPARATOR,
    PREFIX_ROLES,
    ROLES,
    FieldSpec,
    FieldValue,
    InvalidValue,
    Role,
    column,
)

__all__ = [
    "CASE_ATTRS", "CASE_STATUS", "COUNTRIES", "EXPLOITATION", "FIELDS", "GENDER", "HASH_ORDER", "IGNORED_COLUMNS",
    "MEMO_LIMIT", "MULTI_SEPARATOR", "PERPETRATOR_ATTRS", "PERSON_ATTRS", "REQUIRED", "ROLES", "VICTIM_ATTRS",
    "Event", "FieldSpec", "FieldValue", "HeaderError", "InvalidValue", "Problem", "Record", "Role", "RowChecker",
    "RowRules", "Sharing", "content_hash", "content_hash_of_members", "field_spec", "hash_member",
    "resolve_columns", "row_key", "validate_row",
]  # fmt: skip

# Added by Palermo to rejects files, so that a corrected rejects file loads as it is.
# HTCDS 2.0 fields Palermo accepts in a file but never stores: coordinates, street addresses and
# post codes are direct identifiers no capability needs; the rest (locations that link an
# organisation, support plans, consent records) are not used by any capability yet. Lower case.
_UNSTORED_HTCDS = (
    "prs_MailingLatitude", "prs_MailingLongitude", "vic_LocationOfRecruitment", "vic_LocationOfExploitation",
    "spl_Type", "con_Consent",
    *(f"hte_{t}{f}" for t in ("", "Recruitment", "Transit", "Exploitation")
      for f in ("Street", "PostalCode", "Latitude", "Longitude", "State")),
)  # fmt: skip
IGNORED_COLUMNS = frozenset({"reject_reason", *(name.lower() for name in _UNSTORED_HTCDS)})

# ---- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one row: where, what was expected, and what came (never a personal value)."""

    row: int
    field: str
    expected: str
    got: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "expected": self.expected, "got": self.got}

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: expected {self.expected}; got {self.got}"


@dataclass(frozen=True, slots=True)
class Event:
    """One step of the trafficking route (HTCDS ``hte_``): Recruitment, Transit or Exploitation."""

    type: str
    country: str | None
    city: str | None
    date: str | None  # ISO 8601 at the precision given: YYYY, YYYY-MM or YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Sharing:
    """Sharing controls of one person in one case."""

    matchable: bool
    handling_code: str
    grading: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """One valid row: one person in one case. Group mappings are keyed by storage attribute name."""

    row: int
    case_id: str
    person_id: str
    role: Role
    person: Mapping[str, FieldValue]  # prs_* fields
    case: Mapping[str, FieldValue]  # cas_* fields
    context: Mapping[str, FieldValue]  # vic_* fields on a victim row, per_* on a perpetrator row
    events: tuple[Event, ...]
    sharing: Sharing
    free_text: Mapping[str, str]  # column name -> text; never indexed
    synth_true_id: str | None


@dataclass(frozen=True, slots=True)
class RowRules:
    """What a row is checked against: the latest acceptable date and the node's sharing defaults."""

    latest_date: date
    default_matchable: bool
    default_handling_code: str


class HeaderError(MalformedError):
    """The columns of a file are wrong (unknown, duplicate or missing required columns)."""

    code = "invalid_file"


# ---- columns ----------------------------------------------------------------------------------

FIELDS: Mapping[str, FieldSpec] = {spec.name: spec for spec in COLUMNS}
_BY_LOWER = {name.lower(): name for name in FIELDS}
_NAMES = {(spec.group, spec.attr): spec.name for spec in COLUMNS}
# Free-text columns named by pattern: cas_IncomingReferralDetails, cas_OutgoingReferralDetails, ...,
# and a description per flattened event (hte_RecruitmentDescription, ...).
_FREE_TEXT = re.compile(r"^(cas_[A-Za-z]+Details|hte_(?:Recruitment|Transit|Exploitation)Description)$", re.I)
REQUIRED = ("cas_CaseId", "prs_PersonId", "role")
PERSON_ATTRS, CASE_ATTRS, VICTIM_ATTRS, PERPETRATOR_ATTRS = (
    tuple(spec.attr for spec in COLUMNS if spec.group == group)
    for group in ("person", "case", "victim", "perpetrator")
)


@lru_cache(maxsize=256)
def field_spec(name: str) -> FieldSpec | None:
    """The spec of a column name (any letter case), or None when Palermo does not accept it."""
    text = name.strip()
    canonical = _BY_LOWER.get(text.lower())
    if canonical is not None:
        return FIELDS[canonical]
    return column(text, "free", "free_text", max_length=10000) if _FREE_TEXT.match(text) else None


def resolve_columns(names: Sequence[str]) -> tuple[str | None, ...]:
    """Map each column name to its canonical name; None for a column that is ignored.

    Empty names and ``reject_reason`` are ignored. Raises HeaderError naming every unknown and
    duplicate column and every missing required column.
    """
    ignored = [not name.strip() or name.strip().lower() in IGNORED_COLUMNS for name in names]
    specs = [None if skip else field_spec(name) for name, skip in zip(names, ignored, strict=True)]
    unknown = [
        n.strip()[:40] for n, s, skip in zip(names, specs, ignored, strict=True) if s is None and not skip
    ]
    present = [spec.name for spec in specs if spec is not None]
    reasons = []
    if unknown:
        reasons.append("unknown column(s) " + ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else ""))
    if len(set(present)) < len(present):
        reasons.append(
            "column(s) given twice " + ", ".join(sorted({n for n in present if present.count(n) > 1}))
        )
    if any(name not in present for name in REQUIRED):
        reasons.append("missing required column(s) " + ", ".join(n for n in REQUIRED if n not in present))
    if reasons:
        raise HeaderError("; ".join(reasons) + " (column names match HTCDS 2.0, see docs/ingest.md)")
    return tuple(spec.name if spec else None for spec in specs)


# ---- rows -------------------------------------------------------------------------------------

_GROUPS = ("id", "person", "case", "victim", "perpetrator", "event", "sharing", "free_text", "synth")
_SLOT = {group: i for i, group in enumerate(_GROUPS)}
_ID, _PERSON, _CASE, _EVENT, _SHARING, _FREE, _SYNTH = (
    _SLOT[g] for g in ("id", "person", "case", "event", "sharing", "free_text", "synth")
)
# Columns whose cells repeat (value names, dates, numbers, names): a checker remembers each accepted
# cell, so a repeated one costs one dict lookup. Bounded per column for files of unique values.
_MEMO_KINDS = frozenset({"enum", "bool", "int", "date", "language", "grading", "text"})
MEMO_LIMIT = 50_000


class RowChecker:
    """Checks rows under one set of rules (what :func:`validate_row` does), faster for many rows:
    it remembers, per column, each text cell it accepted and its value."""

    def __init__(self, rules: RowRules) -> None:
        self.rules = rules
        self._latest = rules.latest_date.isoformat()
        self._columns: dict[str, tuple[FieldSpec, dict[str, object] | None, int]] = {}

    def check(self, values: Mapping[str, object], *, row: int) -> tuple[Record | None, list[Problem]]:
        """Check one row given as ``{canonical column name: raw value}``; see :func:`validate_row`."""
        groups: tuple[dict[str, FieldValue], ...] = ({}, {}, {}, {}, {}, {}, {}, {}, {})
        problems: list[Problem] = []
        columns = self._columns
        for name, raw in values.items():
            spec, memo, slot = columns.get(name) or self._column(name)
            value = memo.get(raw, MISS) if memo is not None and type(raw) is str else MISS
            if value is MISS:
                try:
                    value = self.parse(spec, raw, memo)
                except InvalidValue as e:
                    problems.append(Problem(row, spec.name, e.expected, e.got))
                    continue
            if value is not None:
                groups[slot][spec.attr] = value  # type: ignore[assignment]  # parsers give FieldValue
        ids = groups[_ID]
        if problems or len(ids) < len(REQUIRED):
            problems += _missing(ids, problems, row)
        role = ids.get("role")
        if role in ROLES and (groups[_SLOT[_OTHER[role]]] or groups[_FREE]):
            problems += _misplaced(groups, str(role), row)
        if problems:
            return None, problems
        return self._record(groups, row), []

    def _column(self, name: str) -> tuple[FieldSpec, dict[str, object] | None, int]:
        spec = FIELDS.get(name) or field_spec(name)
        assert spec is not None, "columns are resolved before rows are checked"
        memo: dict[str, object] | None = {} if spec.kind in _MEMO_KINDS else None
        entry = (spec, memo, _SLOT[spec.group])
        self._columns[name] = entry
        return entry

    def parse(self, spec: FieldSpec, raw: object, memo: dict[str, object] | None = None) -> object:
        """The value of one cell under these rules (dates not after the latest date); None when it
        is empty. Remembered in ``memo`` when given. Raises InvalidValue."""
        value = spec.fast(raw)
        if value is MISS:
            value = spec.parse_slowly(raw)
        if spec.kind == "date" and value is not None and str(value) > self._latest[: len(str(value))]:
            raise InvalidValue(spec.expected, "a date in the future")
        if memo is not None and type(raw) is str and len(memo) < MEMO_LIMIT:
            memo[raw] = value
        return value

    def _record(self, groups: tuple[dict[str, FieldValue], ...], row: int) -> Record:
        ids, sharing, synth = groups[_ID], groups[_SHARING], groups[_SYNTH]
        role: Role = "victim" if ids["role"] == "victim" else "perpetrator"
        grading = sharing.get("grading")
        return Record(
            row,
            str(ids["case_id"]),
            str(ids["person_id"]),
            role,
            groups[_PERSON],
            groups[_CASE],
            groups[_SLOT[role]],
            _events(groups[_EVENT]) if groups[_EVENT] else (),
            Sharing(
                bool(sharing.get("matchable", self.rules.default_matchable)),
                str(sharing.get("handling_code", self.rules.default_handling_code)),
                None if grading is None else str(grading),
            ),
            groups[_FREE],  # type: ignore[arg-type]  # free-text parsers return text
            str(synth["synth_true_id"]) if synth else None,
        )


_OTHER: dict[object, str] = {"victim": "perpetrator", "perpetrator": "victim"}


@lru_cache(maxsize=1)  # the rules change once a day (the latest date); its memos stay bounded
def _checker(rules: RowRules) -> RowChecker:
    return RowChecker(rules)


def validate_row(
    values: Mapping[str, object], *, row: int, rules: RowRules
) -> tuple[Record | None, list[Problem]]:
    """Check one row given as ``{canonical column name: raw value}``.

    Returns ``(record, [])`` for a valid row, ``(None, problems)`` otherwise; never raises for bad
    values. Raw values are strings, numbers, booleans, dates, lists (JSON arrays) or None.
    """
    return _checker(rules).check(values, row=row)


def _missing(ids: Mapping[str, FieldValue], problems: list[Problem], row: int) -> list[Problem]:
    """The required columns that are empty (and not already reported as bad)."""
    failed = {problem.field for problem in problems}
    return [
        Problem(row, name, FIELDS[name].expected, "nothing")
        for name in REQUIRED
        if FIELDS[name].attr not in ids and name not in failed
    ]


def _misplaced(groups: Sequence[Mapping[str, FieldValue]], role: str, row: int) -> list[Problem]:
    """Victim columns filled on a perpetrator row, or perpetrator columns on a victim row."""
    other = _OTHER[role]
    names = [_NAMES[other, attr] for attr in groups[_SLOT[other]]]
    names += [name for name in groups[_FREE] if PREFIX_ROLES.get(name[:4].lower(), role) != role]
    expected = f"no value on a {role} row (the column is for {other}s)"
    return [Problem(row, name, expected, "a value") for name in names]


_EVENT_COLUMNS = tuple(
    (kind, *(f"{kind.lower()}_{part}" for part in ("country", "city", "date"))) for kind in EVENT_TYPES
)


def _events(columns: Mapping[str, FieldValue]) -> tuple[Event, ...]:
    """Unflatten the hte_ columns. Several transit countries give one Transit event each, in the
    order written; the transit city and date belong to the first."""
    events: list[Event] = []
    for kind, country_key, city_key, date_key in _EVENT_COLUMNS:
        country, city, when = columns.get(country_key), columns.get(city_key), columns.get(date_key)
        if country is None and city is None and when is None:
            continue
        countries = country if type(country) is tuple else (country,)
        events.append(Event(kind, countries[0], city, when))  # type: ignore[arg-type]  # text columns
        events += [Event(kind, other, None, None) for other in countries[1:]]
    return tuple(events)


def content_hash(person: Mapping[str, FieldValue]) -> str:
    """SHA-256 (hex) of the canonical JSON of a person's fields (every prs_ column: each is a direct
    or quasi-identifier). Changes exactly when what identifies the person changes.

    ``json.dumps`` with sorted keys is the canonical form (protocol.canonical) for these values
    (short strings, small integers, booleans, arrays); calling it directly skips a slow recheck.
    """
    return hashlib.sha256(_CANONICAL.encode(dict(person)).encode("utf-8")).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
HASH_ORDER = tuple(sorted(PERSON_ATTRS))  # the order of a person's fields in what content_hash digests


def hash_member(attr: str, value: FieldValue) -> str:
    """One member (``"attr":value``) of the JSON that content_hash digests, for
    :func:`content_hash_of_members`. (``encode_basestring`` is what the encoder uses for text.)"""
    text = encode_basestring(value) if type(value) is str else _CANONICAL.encode(value)
    return f"{encode_basestring(attr)}:{text}"


def content_hash_of_members(members: Iterable[str]) -> str:
    """content_hash of the person whose fields give ``members`` (from :func:`hash_member`, in
    HASH_ORDER): the same digest, built from parts a caller can remember between rows."""
    return hashlib.sha256(("{" + ",".join(members) + "}").encode("utf-8")).hexdigest()


def row_key(values: Mapping[str, object]) -> tuple[str, str] | None:
    """The (case id, person id) of a row given as raw values, or None if either is missing or invalid."""
    try:
        case_id, person_id = (FIELDS[name].parse(values.get(name, "")) for name in REQUIRED[:2])
    except InvalidValue:
        return None
    return (case_id, person_id) if isinstance(case_id, str) and isinstance(person_id, str) else None
