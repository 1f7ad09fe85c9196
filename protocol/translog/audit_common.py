"""Small helpers shared by the auditor's checks (audit.py, reconcile.py, budget_audit.py).

The problem bound and its list, problems as dicts for ``to_dict()``, the entry observer type, a
bundle's header read ahead of the check, and an entry's ``detail`` as an object.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from protocol.translog.bundle import BundleError, BundleHeader, EntryLine, parse_header
from protocol.translog.verify import LogProblem

MAX_PROBLEMS = 1000
Observer = Callable[[EntryLine], None]
AddProblem = Callable[[str, int, str], None]  # (subject, position, message), as LogVerifier.add_problem


def problem_dicts(problems: Iterable[LogProblem]) -> list[dict[str, Any]]:
    return [{"subject": p.subject, "position": p.position, "message": p.message} for p in problems]


def peek_header(lines: Iterable[bytes]) -> tuple[BundleHeader | None, Iterator[bytes]]:
    """The header of a bundle (None if unreadable) and all its lines again, header included."""
    iterator = iter(lines)
    try:
        first = next(iterator, b"")
    except BundleError as e:
        return None, _raising(e)
    try:
        header: BundleHeader | None = parse_header(first)
    except BundleError:
        header = None
    return header, itertools.chain([first], iterator)


def _raising(error: BundleError) -> Iterator[bytes]:
    raise error
    yield b""  # pragma: no cover - makes this a generator


def detail_of(record: EntryLine) -> dict[str, Any]:
    """An entry's ``detail`` as an object ({} when it is not one: the verifier reports that)."""
    detail = record.fields.get("detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return {}
    return detail if isinstance(detail, dict) else {}


@dataclass
class ProblemList:
    """Problems found beside the log's own, bounded like LogVerifier's."""

    limit: int = MAX_PROBLEMS
    items: list[LogProblem] = field(default_factory=list)
    count: int = 0

    def add(self, subject: str, position: int, message: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(LogProblem(subject, position, message))
