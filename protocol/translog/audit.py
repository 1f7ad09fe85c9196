"""The auditor's checks of audit bundles (protocol/translog/bundle.py), with no node, key or network.

* :func:`verify_bundle` checks one bundle: the header's signature by its log key; that key against
  the log key the bundled directory lists for the node, and the directory's own governance
  signatures; every entry (re-canonicalised and re-hashed, index order, hash chain) and every
  checkpoint (signature by the log key, sizes increasing, root = Merkle root of the entries up to
  its size) with :class:`LogVerifier`; the bundle's order and counts. One pass, memory O(log n).
* :func:`reconcile` pairs the envelopes two nodes exchanged, from both bundles.
* :func:`budget_audit` sums the privacy-budget charges against the caps the header states.

Every report has ``ok``, ``problems`` (each naming an entry index, a checkpoint size or a line,
and why), ``summary()`` and ``to_dict()``. Problems are collected, not raised, up to
``max_problems`` listed (all are counted).
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocol.directory import Directory, SignedDirectory, tally_signatures
from protocol.errors import MalformedError, VerificationError
from protocol.query.privacy import format_rho
from protocol.translog.audit_witness import (
    WitnessClaims,
    check_cosignatures,
    check_forks,
    directory_witnesses,
)
from protocol.translog.bundle import (
    BudgetCaps,
    BundleError,
    BundleHeader,
    BundleLayout,
    CheckpointLine,
    EntryLine,
    parse_header,
    parse_line,
)
from protocol.translog.verify import LogProblem, LogVerifier

MAX_PROBLEMS = 1000
Observer = Callable[[EntryLine], None]


def problem_dicts(problems: Iterable[LogProblem]) -> list[dict[str, Any]]:
    return [{"subject": p.subject, "position": p.position, "message": p.message} for p in problems]


@dataclass(frozen=True)
class DirectoryFacts:
    """What the bundled directory says, for the auditor to compare with what the federation publishes."""

    federation: str
    version: int
    expires: int
    governance_keys: tuple[str, ...]
    threshold: int
    signed_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {name: list(v) if isinstance(v, tuple) else v for name, v in vars(self).items()}


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify_bundle` found. ``header`` is None when line 1 could not be read."""

    header: BundleHeader | None
    directory: DirectoryFacts | None
    entries: int
    checkpoints: int
    last_checkpoint_size: int | None
    problems: tuple[LogProblem, ...]
    problem_count: int
    cosigned: Mapping[int, list[str]] = field(default_factory=dict)  # checkpoint size -> witnesses

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def node_id(self) -> str | None:
        return self.header.node_id if self.header else None

    def summary(self) -> str:
        node = f"{self.header.node_id} ({self.header.country})" if self.header else "unknown node"
        counts = f"{self.entries} entries, {self.checkpoints} checkpoints"
        if not self.ok:
            return f"bundle has {self.problem_count} problem(s): {node}, {counts}"
        last = self.last_checkpoint_size
        tail = "none" if last is None else f"at size {last}"
        if last is not None and self.cosigned.get(last):
            tail += f", cosigned by {', '.join(self.cosigned[last])}"
        if (last or 0) < self.entries:
            tail += f" ({self.entries - (last or 0)} entries are under no checkpoint)"
        return f"bundle OK: {node}, {counts}, last checkpoint {tail}"

    def to_dict(self) -> dict[str, Any]:
        header = self.header
        return {
            "ok": self.ok,
            "node_id": header.node_id if header else None,
            "country": header.country if header else None,
            "origin": header.origin if header else None,
            "exported_at": header.exported_at if header else None,
            "directory": self.directory.to_dict() if self.directory else None,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_checkpoint_size": self.last_checkpoint_size,
            "cosigned": {str(size): names for size, names in self.cosigned.items()},
            "problem_count": self.problem_count,
            "problems": problem_dicts(self.problems),
        }


def verify_bundle(
    lines: Iterable[bytes],
    *,
    governance_keys: Collection[str] | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> AuditReport:
    """Check a whole bundle given as its lines (``bundle.read_lines`` of the file's chunks).

    ``governance_keys``: key ids (lowercase hex) the auditor trusts; when given, every governance
    key of the bundled directory must be among them. Never raises for a bad bundle: a read error
    of the stream (cut or corrupt file) ends the check with a problem naming the line.
    """
    return _verify(lines, governance_keys, max_problems, None)


def _verify(
    lines: Iterable[bytes], trusted: Collection[str] | None, max_problems: int, observe: Observer | None
) -> AuditReport:
    iterator = iter(lines)
    try:
        header = parse_header(next(iterator, b""))
    except BundleError as e:
        return AuditReport(None, None, 0, 0, None, (LogProblem("bundle", 1, e.message),), 1)
    verifier = LogVerifier(origin=header.origin, public_key=header.log_public_key, max_problems=max_problems)
    facts = _check_header(header, trusted, verifier)
    layout = BundleLayout(header)
    last_size: int | None = None
    witnesses = directory_witnesses(header.directory)
    cosigned: dict[int, list[str]] = {}

    def on_checkpoint(size: int, note: bytes) -> None:
        cosigned[size] = check_cosignatures(note, size, witnesses, verifier.add_problem)

    try:
        for number, line in enumerate(iterator, start=2):
            last_size = _check_line(line, number, layout, verifier, last_size, observe, on_checkpoint)
    except BundleError as e:  # from the stream: nothing after it can be read
        verifier.add_problem("bundle", layout.last_line + 1, e.message)
    verifier.finish()
    for message in layout.finish():
        verifier.add_problem("bundle", layout.last_line, message)
    counts = (layout.entries, layout.checkpoints, last_size)
    return AuditReport(header, facts, *counts, tuple(verifier.problems), verifier.problem_count, cosigned)


def _check_line(
    line: bytes,
    number: int,
    layout: BundleLayout,
    verifier: LogVerifier,
    last_size: int | None,
    observe: Observer | None,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
) -> int | None:
    """Check one line after the header; return the size of the last checkpoint accepted so far."""
    try:
        record = parse_line(line, number=number)
    except BundleError as e:
        verifier.add_problem("bundle", number, e.message)
        return last_size
    misplaced = layout.place(record)
    if misplaced is not None:
        verifier.add_problem("bundle", number, misplaced)
    elif isinstance(record, EntryLine):
        if not record.canonical:
            index = record.index if record.index is not None else verifier.last_index + 1
            verifier.add_problem("entry", index, f"entry {index}: line {number} is not in canonical form")
        verifier.add(record.fields, record.leaf_hash)
        if observe is not None:
            observe(record)
    elif isinstance(record, CheckpointLine):
        size = _check_checkpoint(record, verifier, last_size)
        if on_checkpoint is not None and size is not None and size != last_size:
            on_checkpoint(size, record.note)
        return size
    return last_size


def _check_checkpoint(record: CheckpointLine, verifier: LogVerifier, last_size: int | None) -> int | None:
    size = record.size
    if size is None:
        verifier.add_problem(
            "checkpoint",
            record.line,
            f"checkpoint on line {record.line}: malformed note ({record.unreadable})",
        )
        return last_size
    if last_size is not None and size <= last_size:
        verifier.add_problem(
            "checkpoint", size, f"checkpoint at size {size}: sizes do not increase (after size {last_size})"
        )
        return last_size
    verifier.add_checkpoint(size, record.note)
    return size


def _check_header(
    header: BundleHeader, trusted: Collection[str] | None, log: LogVerifier
) -> DirectoryFacts | None:
    """The header's signature, its directory's signatures, and its keys against the directory."""
    try:
        header.verify_signature()
    except VerificationError as e:
        log.add_problem("header", 1, e.message)
    if header.directory is None:
        log.add_problem("directory", 1, "directory: none in the bundle, so the log key cannot be checked")
        return None
    try:
        document = SignedDirectory.from_dict(dict(header.directory))
    except MalformedError as e:
        log.add_problem("directory", 1, f"directory: {e.message}")
        return None
    directory = document.signed
    tally = tally_signatures(document, directory.governance)
    facts = DirectoryFacts(
        directory.federation,
        directory.version,
        directory.expires,
        directory.governance.keyids,
        directory.governance.threshold,
        tally.valid,
    )
    where = f"directory version {directory.version}"
    if not tally.met:
        log.add_problem(
            "directory",
            1,
            f"{where}: signed by {len(tally.valid)} of its governance keys, it needs {tally.threshold}",
        )
    untrusted = [k for k in directory.governance.keyids if trusted is not None and k not in trusted]
    for keyid in untrusted:
        log.add_problem("directory", 1, f"{where}: governance key {keyid} is not one of the keys given")
    _check_member(header, directory, log)
    return facts


def _check_member(header: BundleHeader, directory: Directory, log: LogVerifier) -> None:
    """The node's keys and country in the header are those the directory lists for it."""
    where = f"directory version {directory.version}"
    member = directory.member(header.node_id)
    if member is None:
        log.add_problem("directory", 1, f"{where} does not list node {header.node_id}")
        return
    for name, stated, listed in (
        ("log key", header.log_public_key, member.log_key),
        ("signing key", header.signing_public_key, member.signing_key),
    ):
        if not hmac.compare_digest(stated, listed):
            log.add_problem(
                "header", 1, f"header: the {name} is not the one {where} lists for {header.node_id}"
            )
    if header.country != member.country:
        log.add_problem("header", 1, f"header: country {header.country}, {where} lists {member.country}")


# --- shared by reconcile and budget_audit ---------------------------------------------------------


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


# --- reconcile ------------------------------------------------------------------------------------


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
        reply_to = detail_of(record).get("reply_to") if fields.get("detail") not in ("{}", {}) else ""
        if direction not in ("in", "out") or not hash_:
            return
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
            after = "accepted, then refused" if accepted else "refused"
            for r in refused:
                found.refusals.add(
                    "exchange", sent.index, f"{what}: {after} by {y}: {r.code} ({y} entry {r.index})"
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


# --- budget ---------------------------------------------------------------------------------------

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
