"""Recompute a node's privacy budget from its audit bundle.

:func:`budget_audit` verifies the bundle with the verifier of audit.py and sums its
``budget_charge`` entries per period and peer (:class:`Spend`) against the caps the header
states, reporting each charge or cached answer (``budget_release``) that breaks them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from protocol.query.privacy import format_rho
from protocol.translog.audit import AuditReport, _verify
from protocol.translog.audit_common import MAX_PROBLEMS, ProblemList, detail_of, peek_header, problem_dicts
from protocol.translog.bundle import BudgetCaps, EntryLine
from protocol.translog.verify import LogProblem

CAPS_NOTE = (
    "caps are the node's settings when it exported the bundle (stated and signed in the header), "
    "not necessarily those in force at each charge"
)
_PERIOD_RE = re.compile(r"([0-9]{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?")


def _period_span(label: str) -> tuple[int, int] | None:
    """Unix seconds [start, end) of a budget period label ("2026-11", "2026-Q4", "2026"), UTC."""
    match = _PERIOD_RE.fullmatch(label)
    if match is None:
        return None
    year, month, quarter = int(match.group(1)), match.group(2), match.group(3)
    first, months = (int(month), 1) if month else ((int(quarter) - 1) * 3 + 1, 3) if quarter else (1, 12)
    start = datetime(year, first, 1, tzinfo=UTC)
    after = first - 1 + months
    end = datetime(year + after // 12, after % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


@dataclass(frozen=True)
class Spend:
    """What was charged in one period to one peer (``peer`` "" for all peers together), against its cap."""

    period: str
    peer: str
    spent_nano: int
    cap_nano: int
    charges: int

    @property
    def over(self) -> bool:
        return self.spent_nano > self.cap_nano

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            **({"peer": self.peer} if self.peer else {}),
            "spent": format_rho(self.spent_nano),
            "cap": format_rho(self.cap_nano),
            "left": format_rho(max(self.cap_nano - self.spent_nano, 0)),
            "charges": self.charges,
            "over": self.over,
        }


class _Ledger:
    """Sums budget_charge entries per (period, peer) and period, checking each against the caps."""

    def __init__(self, caps: BudgetCaps, problems: ProblemList) -> None:
        self.caps, self.problems = caps, problems
        self.peers: dict[tuple[str, str], list[int]] = {}
        self.periods: dict[str, list[int]] = {}
        self.charged: dict[tuple[str, str, str], int] = {}
        self.releases = 0

    def __call__(self, record: EntryLine) -> None:
        kind, index = record.fields.get("kind"), record.index
        if kind not in ("budget_charge", "budget_release") or index is None:
            return
        detail, peer, time = detail_of(record), record.fields.get("peer"), record.fields.get("time")
        period, rho, query = detail.get("period"), detail.get("rho_nano"), detail.get("query_hash")
        if not (
            isinstance(period, str) and type(rho) is int and isinstance(query, str) and isinstance(peer, str)
        ):
            self.problems.add(
                "entry", index, f"entry {index}: {kind} without period, rho_nano and query_hash"
            )
            return
        span = _period_span(period)
        if span is None or not isinstance(time, int) or not span[0] <= time < span[1]:
            self.problems.add(
                "entry", index, f"entry {index}: {kind} in period {period} logged at {time}, outside it"
            )
        key = (period, peer, query)
        if kind == "budget_release":
            self.releases += 1
            if rho != 0:
                message = f"entry {index}: cached answer to {peer} charged rho {format_rho(rho)}, expected 0"
                self.problems.add("entry", index, message)
            if key not in self.charged:
                message = f"entry {index}: cached answer to {peer} for query {query} in {period}, but no earlier charge"
                self.problems.add("entry", index, message)
            return
        self._charge(index, key, rho)

    def _charge(self, index: int, key: tuple[str, str, str], rho: int) -> None:
        period, peer, query = key
        what = f"entry {index}: charge of rho {format_rho(rho)} to {peer} in {period}"
        if rho <= 0:
            self.problems.add("entry", index, f"{what}: a charge must be above 0")
        if rho > self.caps.query_nano:
            self.problems.add("entry", index, f"{what}: over the per-query limit {self.caps.query_rho}")
        if key in self.charged:
            message = (
                f"{what}: query {query} was charged already (entry {self.charged[key]}); a repeat is cached"
            )
            self.problems.add("entry", index, message)
        self.charged.setdefault(key, index)
        spent, total = self.peers.setdefault((period, peer), [0, 0]), self.periods.setdefault(period, [0, 0])
        for tally in (spent, total):
            tally[0] += rho
            tally[1] += 1
        cap = self.caps.cap_nano(peer)
        if spent[0] > cap:
            message = f"{what}: {peer} has spent {format_rho(spent[0])}, over its cap {format_rho(cap)}"
            self.problems.add("entry", index, message)
        if total[0] > self.caps.global_nano:
            message = f"{what}: all peers have spent {format_rho(total[0])}, over the global cap {self.caps.global_rho}"
            self.problems.add("entry", index, message)


@dataclass(frozen=True)
class BudgetReport:
    """The privacy budget a bundle shows: spending per period and peer against the header's caps.

    ``log`` is the bundle's own verification: figures from a log that does not verify prove nothing,
    so its problems are problems here too."""

    log: AuditReport
    caps: BudgetCaps | None
    peers: tuple[Spend, ...]
    periods: tuple[Spend, ...]
    releases: int
    budget_problems: tuple[LogProblem, ...]
    budget_problem_count: int
    caps_note: str = CAPS_NOTE

    @property
    def ok(self) -> bool:
        return self.log.ok and self.budget_problem_count == 0

    @property
    def problems(self) -> tuple[LogProblem, ...]:
        return (*self.log.problems, *self.budget_problems)

    def summary(self) -> str:
        charges = sum(p.charges for p in self.periods)
        counts = f"{charges} charges in {len(self.periods)} period(s), {self.releases} cached answers"
        if self.ok:
            return f"budget OK: {self.log.node_id}, {counts}, within the caps stated in the header"
        count = self.log.problem_count + self.budget_problem_count
        return f"budget has {count} problem(s): {self.log.node_id or 'unknown node'}, {counts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "node_id": self.log.node_id,
            "caps": self.caps.to_dict() if self.caps else None,
            "caps_note": self.caps_note,
            "periods": [p.to_dict() for p in self.periods],
            "peers": [p.to_dict() for p in self.peers],
            "releases": self.releases,
            "log": self.log.to_dict(),
            "problem_count": self.budget_problem_count,
            "problems": problem_dicts(self.budget_problems),
        }


def budget_audit(lines: Iterable[bytes], *, max_problems: int = MAX_PROBLEMS) -> BudgetReport:
    """Verify a bundle and check its privacy-budget entries against the caps its header states.

    Sums ``budget_charge`` entries (``detail.rho_nano``) per period and peer and per period, and
    reports each charge over the per-query limit, or that takes a peer over its cap or a period
    over the global cap, a query charged twice in a period, a charge logged outside its period,
    and any ``budget_release`` (a cached answer) that charged something or has no earlier charge.
    """
    header, lines = peek_header(lines)
    problems = ProblemList(max_problems)
    ledger = _Ledger(header.budget_policy, problems) if header else None
    log = _verify(lines, None, max_problems, ledger)
    if ledger is None:
        return BudgetReport(log, None, (), (), 0, (), 0)
    caps = ledger.caps
    peers = tuple(
        Spend(period, peer, spent, caps.cap_nano(peer), n)
        for (period, peer), (spent, n) in sorted(ledger.peers.items())
    )
    periods = tuple(
        Spend(period, "", spent, caps.global_nano, n) for period, (spent, n) in sorted(ledger.periods.items())
    )
    return BudgetReport(log, caps, peers, periods, ledger.releases, tuple(problems.items), problems.count)
