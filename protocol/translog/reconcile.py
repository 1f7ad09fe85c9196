"""Reconcile two nodes' audit bundles: verify each and pair every envelope they exchanged.

:func:`reconcile` checks both bundles with the verifier of audit.py, indexes the envelope entries
each logged with the other (:class:`EnvelopeIndex`), and reports as mismatches an envelope one
sent that the other has no entry for, one accepted that the other never logged sending, a request
accepted with no reply, and forks shown by the witness cosignatures each holds of the other's log.
Refusals, undelivered envelopes and those logged after the other's export are listed, not problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from protocol.translog.audit import AuditReport, _verify
from protocol.translog.audit_common import (
    MAX_PROBLEMS,
    Observer,
    ProblemList,
    detail_of,
    peek_header,
    problem_dicts,
)
from protocol.translog.audit_witness import WitnessClaims, check_forks
from protocol.translog.bundle import EntryLine
from protocol.translog.verify import LogProblem


@dataclass(frozen=True, slots=True)
class Envelope:
    """One envelope entry of a bundle, as reconcile needs it (hashes and ids, never a payload)."""

    index: int
    time: int
    direction: str
    outcome: str
    message_id: str
    message_type: str
    envelope_hash: str
    code: str
    reply_to: str
    receipt: bool = False  # the other node's signed refusal receipt is on this entry (SPEC 5.7)

    def describe(self) -> str:
        return f"{self.message_type or 'envelope'} {self.message_id or '(no message id)'} (envelope {self.envelope_hash})"


class EnvelopeIndex:
    """The envelope entries of one bundle with one peer, by (direction, envelope hash or message id)."""

    def __init__(self, peer: str | None, exported_at: int | None) -> None:
        self.peer, self.exported_at = peer, exported_at
        # direction -> envelope hash -> entries, and direction -> message id -> its first entry
        self.by_hash: dict[str, dict[str, list[Envelope]]] = {"in": {}, "out": {}}
        self.by_message: dict[str, dict[str, Envelope]] = {"in": {}, "out": {}}
        self.replies: dict[str, list[Envelope]] = {}  # request hash -> replies sent (detail.reply_to)
        self._names: dict[str, str] = {}  # one copy of each direction, outcome, type and code

    def __call__(self, record: EntryLine) -> None:
        fields = record.fields
        if fields.get("kind") != "envelope" or fields.get("peer") != self.peer or record.index is None:
            return
        direction, hash_, message_id = (
            str(fields.get(k) or "") for k in ("direction", "envelope_hash", "message_id")
        )
        if direction not in ("in", "out") or not hash_:
            return
        detail = detail_of(record) if fields.get("detail") not in ("{}", {}) else {}
        reply_to = detail.get("reply_to", "")
        outcome, type_, code = (str(fields.get(k) or "") for k in ("outcome", "message_type", "code"))
        name = self._names.setdefault
        time = fields.get("time")
        env = Envelope(
            record.index,
            time if type(time) is int else 0,
            name(direction, direction),
            name(outcome, outcome),
            message_id,
            name(type_, type_),
            hash_,
            name(code, code),
            reply_to if isinstance(reply_to, str) else "",
            bool(detail.get("receipt_signature")),
        )
        self.by_hash[direction].setdefault(hash_, []).append(env)
        if message_id:
            self.by_message[direction].setdefault(message_id, env)
        if env.reply_to and direction == "out":
            self.replies.setdefault(env.reply_to, []).append(env)

    def get(self, direction: str, hash_: str) -> list[Envelope]:
        return self.by_hash[direction].get(hash_, [])

    def items(self, direction: str) -> Iterator[tuple[str, list[Envelope]]]:
        return iter(self.by_hash[direction].items())


@dataclass
class _Findings:
    mismatches: ProblemList
    refusals: ProblemList
    undelivered: ProblemList
    after_export: ProblemList
    notes: list[str] = field(default_factory=list)
    paired: int = 0


def _check_sent(x: str, xs: EnvelopeIndex, y: str, ys: EnvelopeIndex, found: _Findings) -> None:
    """Every envelope x sent to y: y logged it accepted (same message id) or refused, or it never left."""
    for hash_, records in xs.items("out"):
        sent = next((r for r in records if r.outcome == "sent"), None)
        if sent is None:
            continue
        what = f"{x} entry {sent.index}: {sent.describe()} sent to {y}"
        theirs = ys.get("in", hash_)
        accepted = [r for r in theirs if r.outcome == "accepted"]
        refused = [r for r in theirs if r.outcome == "refused"]
        if accepted:
            found.paired += 1
            if accepted[0].message_id != sent.message_id:
                message = (
                    f"{what}; {y} entry {accepted[0].index} logged it as message {accepted[0].message_id}"
                )
                found.mismatches.add("exchange", sent.index, message)
            for r in refused:
                found.refusals.add(
                    "exchange",
                    sent.index,
                    f"{what}: accepted, then refused by {y}: {r.code} ({y} entry {r.index})",
                )
        elif refused:
            r = refused[0]
            found.refusals.add(
                "exchange", sent.index, f"{what}: refused by {y}: {r.code} ({y} entry {r.index})"
            )
        elif theirs:
            message = f"{what}; {y} entry {theirs[0].index} logged it as {theirs[0].outcome}, expected accepted or refused"
            found.mismatches.add("exchange", sent.index, message)
        else:
            _missing(what, sent, x, xs, y, ys, found)


def _missing(
    what: str, sent: Envelope, x: str, xs: EnvelopeIndex, y: str, ys: EnvelopeIndex, found: _Findings
) -> None:
    if any(r.outcome == "failed" for r in xs.get("out", sent.envelope_hash)):
        found.undelivered.add(
            "exchange", sent.index, f"{what}: never delivered (failed at {x}); {y} has no entry"
        )
    elif sent.reply_to and any(r.outcome == "failed" for r in ys.get("out", sent.reply_to)):
        message = (
            f"{what} in reply to {sent.reply_to}: {y} logged that request as failed, so never got the reply"
        )
        found.undelivered.add("exchange", sent.index, message)
    elif other := ys.by_message["in"].get(sent.message_id):
        message = f"{what}: envelope hash differs, {y} entry {other.index} has envelope {other.envelope_hash}"
        found.mismatches.add("exchange", sent.index, message)
    elif ys.exported_at is not None and sent.time >= ys.exported_at:
        found.after_export.add(
            "exchange", sent.index, f"{what} at {sent.time}, after {y} exported its bundle"
        )
    elif sent.reply_to:
        message = f"{what} in reply to {sent.reply_to}: missing receipt, {y} has no entry for it"
        found.mismatches.add("exchange", sent.index, message)
    elif any(r.receipt for r in xs.get("out", sent.envelope_hash)):
        message = f"{what}: {y} signed a refusal receipt for it, but {y}'s log has no entry for it"
        found.mismatches.add("exchange", sent.index, message)
    else:
        found.mismatches.add("exchange", sent.index, f"{what}: {y} has no entry for it")


def _check_received(x: str, xs: EnvelopeIndex, y: str, ys: EnvelopeIndex, found: _Findings) -> None:
    """Every envelope y accepted from x (so x signed it): x logged sending it."""
    for hash_, records in ys.items("in"):
        got = next((r for r in records if r.outcome == "accepted"), None)
        if got is None or xs.get("out", hash_):
            continue
        if got.message_id in xs.by_message["out"]:
            continue  # reported from x's side as a differing envelope hash
        if xs.exported_at is not None and got.time >= xs.exported_at:
            message = f"{y} entry {got.index}: accepted {got.describe()} from {x} at {got.time}, after {x} exported its bundle"
            found.after_export.add("exchange", got.index, message)
            continue
        message = (
            f"{y} entry {got.index}: accepted {got.describe()} from {x}; {x} has no entry for sending it"
        )
        found.mismatches.add("exchange", got.index, message)


def _check_replies(x: str, xs: EnvelopeIndex, y: str, ys: EnvelopeIndex, found: _Findings) -> None:
    """Every request y accepted from x and did not refuse has a reply in y, which x logs as its answer."""
    start = min((r.index for h in ys.replies for r in ys.get("in", h)), default=None)
    if start is None:
        found.notes.append(
            f"{y}'s log links no reply to its request (detail.reply_to): replies to {x} not checked"
        )
        return
    for hash_, records in ys.items("in"):
        request = next((r for r in records if r.outcome == "accepted" and not r.reply_to), None)
        if request is None or request.index < start or any(r.outcome == "refused" for r in records):
            continue
        if not xs.get("out", hash_):
            continue  # not a request both logs hold: reported by _check_received or as a differing hash
        replies = ys.replies.get(hash_)
        if not replies:
            message = f"{y} entry {request.index}: accepted request {request.describe()} from {x} but logged no reply"
            found.mismatches.add("exchange", request.index, message)
        for reply in replies or ():
            for got in xs.get("in", reply.envelope_hash):
                if got.reply_to and got.reply_to != hash_:
                    message = (
                        f"{x} entry {got.index}: logged reply {reply.envelope_hash} as the answer to "
                        f"{got.reply_to}; {y} entry {reply.index} sent it in reply to {hash_}"
                    )
                    found.mismatches.add("exchange", got.index, message)


@dataclass(frozen=True)
class ReconcileReport:
    """Two bundles checked each on its own (``a``, ``b``) and their exchanges paired.

    ``mismatches`` are problems; ``refusals`` (an envelope the other side refused, and why) and
    ``undelivered`` (never reached the other side) and ``after_export`` (logged, by the logging
    node's clock, after the other node exported its bundle, which cannot hold it) are listed, not
    problems."""

    a: AuditReport
    b: AuditReport
    paired: int
    mismatches: tuple[LogProblem, ...]
    mismatch_count: int
    refusals: tuple[LogProblem, ...]
    undelivered: tuple[LogProblem, ...]
    after_export: tuple[LogProblem, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.a.ok and self.b.ok and self.mismatch_count == 0

    @property
    def problems(self) -> tuple[LogProblem, ...]:
        own = [
            LogProblem(p.subject, p.position, f"{report.node_id or name}: {p.message}")
            for name, report in (("bundle A", self.a), ("bundle B", self.b))
            for p in report.problems
        ]
        return (*own, *self.mismatches)

    def summary(self) -> str:
        nodes = f"{self.a.node_id or 'bundle A'} and {self.b.node_id or 'bundle B'}"
        listed = f"{len(self.refusals)} refused, {len(self.undelivered)} undelivered"
        if self.after_export:
            listed += f", {len(self.after_export)} after the other's export"
        if self.ok:
            return f"logs agree: {nodes}, {self.paired} envelopes logged on both sides, {listed}"
        bad = [
            f"{r.node_id or name}: {r.problem_count} problem(s)"
            for name, r in (("A", self.a), ("B", self.b))
            if not r.ok
        ]
        return f"logs disagree: {nodes}, {self.mismatch_count} mismatch(es)" + "".join(f"; {b}" for b in bad)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "paired": self.paired,
            "mismatch_count": self.mismatch_count,
            "mismatches": problem_dicts(self.mismatches),
            "refusals": problem_dicts(self.refusals),
            "undelivered": problem_dicts(self.undelivered),
            "after_export": problem_dicts(self.after_export),
            "notes": list(self.notes),
        }


def _both(first: Observer, second: Observer) -> Observer:
    def observe(record: EntryLine) -> None:
        first(record)
        second(record)

    return observe


def reconcile(
    bundle_a_lines: Iterable[bytes], bundle_b_lines: Iterable[bytes], *, max_problems: int = MAX_PROBLEMS
) -> ReconcileReport:
    """Verify two nodes' bundles and pair every envelope between them (never raises for bad bundles).

    Each envelope one sent (outcome ``sent``) must be logged by the other as received with the same
    envelope hash and message id, ``accepted`` or ``refused`` (refusals are listed); each envelope
    one accepted must be logged as sent by the other (it was signed by it); each request accepted
    has a reply, linked by ``detail.reply_to``, that the asker logged. Envelopes the sender logged
    ``failed`` are listed as undelivered, and those logged after the other node's export as such,
    not as mismatches. Memory: the two nodes' envelopes with each other, ~600 bytes each.
    """
    header_a, lines_a = peek_header(bundle_a_lines)
    header_b, lines_b = peek_header(bundle_b_lines)
    index_a = EnvelopeIndex(
        header_b.node_id if header_b else None, header_a.exported_at if header_a else None
    )
    index_b = EnvelopeIndex(
        header_a.node_id if header_a else None, header_b.exported_at if header_b else None
    )
    claims_a, claims_b = WitnessClaims(), WitnessClaims()
    report_a = _verify(lines_a, None, max_problems, _both(index_a, claims_a))
    report_b = _verify(lines_b, None, max_problems, _both(index_b, claims_b))
    lists = [ProblemList(max_problems) for _ in range(4)]
    found = _Findings(lists[0], lists[1], lists[2], lists[3])
    if header_a is None or header_b is None:
        found.notes.append("a bundle header cannot be read: nothing was paired")
    elif header_a.node_id == header_b.node_id:
        found.mismatches.add("bundle", 1, f"both bundles are from {header_a.node_id}")
    else:
        a, b = header_a.node_id, header_b.node_id
        for x, xs, y, ys in ((a, index_a, b, index_b), (b, index_b, a, index_a)):
            _check_sent(x, xs, y, ys, found)
            _check_received(x, xs, y, ys, found)
            _check_replies(x, xs, y, ys, found)
        for log_node, log, witness_node, witness in ((a, claims_a, b, claims_b), (b, claims_b, a, claims_a)):
            checked, beyond = check_forks(log_node, log, witness_node, witness, found.mismatches.add)
            if checked or beyond:
                found.notes.append(
                    f"{witness_node} cosigned {checked + beyond} checkpoint(s) of {log_node}'s log; {checked} checked "
                    f"against its entries" + (f", {beyond} beyond its export" if beyond else "")
                )
    return ReconcileReport(
        report_a,
        report_b,
        found.paired,
        tuple(found.mismatches.items),
        found.mismatches.count,
        tuple(found.refusals.items),
        tuple(found.undelivered.items),
        tuple(found.after_export.items),
        tuple(found.notes),
    )
