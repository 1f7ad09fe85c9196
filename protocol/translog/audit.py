"""The auditor's check of one audit bundle (protocol/translog/bundle.py), with no node, key or network.

:func:`verify_bundle` checks one bundle: the header's signature by its log key; that key against
the log key the bundled directory lists for the node, and the directory's own governance
signatures; every entry (re-canonicalised and re-hashed, index order, hash chain) and every
checkpoint (signature by the log key, sizes increasing, root = Merkle root of the entries up to
its size) with :class:`LogVerifier`; the bundle's order and counts. One pass, memory O(log n).

The other checks build on its ``_verify``: :func:`reconcile` (protocol/translog/reconcile.py)
pairs the envelopes two nodes exchanged, from both bundles; :func:`budget_audit`
(protocol/translog/budget_audit.py) sums the privacy-budget charges against the caps the header
states.

Every report has ``ok``, ``problems`` (each naming an entry index, a checkpoint size or a line,
and why), ``summary()`` and ``to_dict()``. Problems are collected, not raised, up to
``max_problems`` listed (all are counted).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.directory import Directory, SignedDirectory, tally_signatures
from protocol.errors import MalformedError, VerificationError
from protocol.translog.audit_common import MAX_PROBLEMS, Observer, problem_dicts
from protocol.translog.audit_receipts import ReceiptCheck
from protocol.translog.audit_witness import WitnessQuorum, check_cosignatures, directory_witnesses
from protocol.translog.bundle import (
    BundleError,
    BundleHeader,
    BundleLayout,
    CheckpointLine,
    EntryLine,
    parse_header,
    parse_line,
)
from protocol.translog.verify import LogProblem, LogVerifier


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
    witnessing: Mapping[str, Any] = field(default_factory=dict)  # WitnessQuorum.to_dict()
    receipts: Mapping[str, int] = field(default_factory=dict)  # ReceiptCheck.to_dict()

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
        return f"bundle OK: {node}, {counts}, last checkpoint {tail}{self._witnessed()}"

    def _witnessed(self) -> str:
        policy = self.witnessing.get("policy")
        if not policy:
            return "; the directory sets no witness policy"
        size, pending = self.witnessing["witnessed_size"], self.witnessing["unwitnessed_entries"]
        text = f"; witnessed by a quorum of {policy['quorum']} up to size {size}"
        return text + (f", {pending} later entries within the policy's delay" if pending else "")

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
            "witnessing": dict(self.witnessing),
            "refusal_receipts": dict(self.receipts),
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
    facts, directory = _check_header(header, trusted, verifier)
    layout = BundleLayout(header)
    last_size: int | None = None
    witnesses = directory_witnesses(directory, header.node_id)
    quorum = WitnessQuorum.of(directory, header.exported_at)
    receipts = ReceiptCheck.of(directory)
    cosigned: dict[int, list[str]] = {}

    def on_checkpoint(size: int, note: bytes) -> None:
        cosigned[size] = check_cosignatures(note, size, witnesses, verifier.add_problem)
        quorum.checkpoint(size, cosigned[size])

    def on_entry(record: EntryLine) -> None:
        quorum.entry(record.index, record.fields.get("time"))
        receipts.entry(record, verifier.add_problem)
        if observe is not None:
            observe(record)

    try:
        for number, line in enumerate(iterator, start=2):
            last_size = _check_line(line, number, layout, verifier, last_size, on_entry, on_checkpoint)
    except BundleError as e:  # from the stream: nothing after it can be read
        verifier.add_problem("bundle", layout.last_line + 1, e.message)
    verifier.finish()
    quorum.finish(verifier.add_problem)
    for message in layout.finish():
        verifier.add_problem("bundle", layout.last_line, message)
    counts = (layout.entries, layout.checkpoints, last_size)
    problems = (tuple(verifier.problems), verifier.problem_count)
    return AuditReport(header, facts, *counts, *problems, cosigned, quorum.to_dict(), receipts.to_dict())


def _check_line(
    line: bytes,
    number: int,
    layout: BundleLayout,
    verifier: LogVerifier,
    last_size: int | None,
    on_entry: Observer,
    on_checkpoint: Callable[[int, bytes], None],
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
        on_entry(record)
    elif isinstance(record, CheckpointLine):
        size = _check_checkpoint(record, verifier, last_size)
        if size is not None and size != last_size:
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
) -> tuple[DirectoryFacts | None, Directory | None]:
    """The header's signature, its directory's signatures, and its keys against the directory.

    Returns what the auditor compares out of band and the parsed directory (None when unreadable).
    """
    try:
        header.verify_signature()
    except VerificationError as e:
        log.add_problem("header", 1, e.message)
    if header.directory is None:
        log.add_problem("directory", 1, "directory: none in the bundle, so the log key cannot be checked")
        return None, None
    try:
        document = SignedDirectory.from_dict(dict(header.directory))
    except MalformedError as e:
        log.add_problem("directory", 1, f"directory: {e.message}")
        return None, None
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
    return facts, directory


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
