"""Verifying a stored exchange log: chain, leaf hashes and checkpoints, streamed in O(log n) memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.signing

from protocol.errors import MalformedError, VerificationError
from protocol.translog.entry import ENTRY_FIELDS, ROW_FIELDS, ZERO_HASH, LogEntry, row_canonical_bytes
from protocol.translog.merkle import LEAF_PREFIX, CompactRange, _push
from protocol.translog.note import Checkpoint, verify_checkpoint


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with a log. ``subject`` is "entry", "checkpoint" or "head"; ``position`` is
    the entry index or checkpoint size it concerns; ``message`` names both, for a person."""

    subject: str
    position: int
    message: str

    def __str__(self) -> str:
        return self.message


class LogVerifier:
    """Streaming check of a stored log: give it every checkpoint first, then every entry in order.

    Each entry's fields must re-canonicalise to its stored leaf hash, ``prev`` must be the stored
    leaf hash of the entry before, indexes must run from 0 without gaps, and every checkpoint's
    root must be the Merkle root of the first ``size`` entries (over recomputed leaf hashes, so a
    changed entry also breaks every checkpoint that covers it). Memory is O(log n).

    ``add_rows`` takes stored rows instead of dicts, with the same findings, several times faster.
    """

    def __init__(
        self, *, origin: str, public_key: nacl.signing.VerifyKey | bytes, max_problems: int = 1000
    ) -> None:
        self.origin = origin
        self.public_key = public_key
        self.max_problems = max_problems
        self.problems: list[LogProblem] = []
        self.problem_count = 0
        self.count = 0
        self.checkpoints = 0
        self.last_leaf_hash = ZERO_HASH
        self.last_index = -1
        self._pending: dict[int, bytes] = {}
        self._stack: list[bytes] = []

    def add_problem(self, subject: str, position: int, message: str) -> None:
        """Record a problem found by the caller (e.g. in the log's storage) beside the verifier's own."""
        # Past max_problems only count: a wrecked log must not exhaust memory.
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(LogProblem(subject, position, message))

    def resume(self, compact: CompactRange, last_leaf_hash: str) -> None:
        """Continue after the first ``compact.size`` entries (checked before); the last has ``last_leaf_hash``."""
        self.count, self._stack = compact.size, list(compact.hashes)
        self.last_index, self.last_leaf_hash = compact.size - 1, last_leaf_hash

    def add_checkpoint(self, size: int, note: bytes) -> Checkpoint | None:
        """Check a stored checkpoint's note now, and its root once the entries reach ``size``."""
        self.checkpoints += 1
        where = f"checkpoint at size {size}:"
        try:
            checkpoint = verify_checkpoint(note, origin=self.origin, public_key=self.public_key)
        except VerificationError as e:
            reason = "" if e.code == "bad_signature" else f" ({e.message})"
            self.add_problem("checkpoint", size, f"{where} bad signature{reason}")
            return None
        except MalformedError as e:
            self.add_problem("checkpoint", size, f"{where} malformed note ({e.message})")
            return None
        if checkpoint.size != size:
            self.add_problem("checkpoint", size, f"{where} its note is for size {checkpoint.size}")
            return None
        self._pending[size] = checkpoint.root
        self._check_root()
        return checkpoint

    def add(self, fields: Mapping[str, Any], stored_leaf_hash: str) -> None:
        """Check the next stored entry (``detail`` as canonical JSON text or as an object)."""
        if fields.keys() == ENTRY_FIELDS and isinstance(fields.get("detail"), str):
            self.add_rows(((*map(fields.__getitem__, ROW_FIELDS), stored_leaf_hash),))
        else:
            self._add_checked(fields, stored_leaf_hash)

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Check the next stored entries, each a row: the members in ROW_FIELDS order (``detail``
        as canonical JSON text), then the stored leaf hash. The findings are those of ``add``.

        An intact row (the next index, a valid entry in canonical form whose hash is its stored
        leaf hash, ``prev`` the stored leaf hash of the row before) only extends the tree, with
        no LogEntry built; any other row is checked by the general path, which names what is
        wrong. So the fast path decides nothing the general one would report.
        """
        sha256, pending, stack = hashlib.sha256, self._pending, self._stack
        for row in rows:
            data = row_canonical_bytes(row)
            leaf = row[13]
            if data is not None and row[0] == self.last_index + 1 and row[12] == self.last_leaf_hash:
                actual = sha256(LEAF_PREFIX + data).digest()
                if actual.hex() == leaf:
                    _push(stack, self.count, actual)
                    self.count += 1
                    self.last_index, self.last_leaf_hash = row[0], leaf
                    if self.count in pending:
                        self._check_root()
                    continue
            self._add_checked(dict(zip(ROW_FIELDS, row[:13], strict=True)), leaf)

    def _add_checked(self, fields: Mapping[str, Any], stored_leaf_hash: str) -> None:
        index = fields.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = self.last_index + 1
        after_gap = self._check_index(index)
        actual = self._recompute(index, fields, stored_leaf_hash)
        if not after_gap and fields.get("prev") != self.last_leaf_hash:
            before = f"entry {self.last_index}" if self.last_index >= 0 else "64 zeros for a first entry"
            self.add_problem(
                "entry", index, f"entry {index}: inserted or reordered (prev does not match {before})"
            )
        self.last_index = max(index, self.last_index)
        self.last_leaf_hash = stored_leaf_hash
        _push(self._stack, self.count, actual)
        self.count += 1
        self._check_root()

    def _check_index(self, index: int) -> bool:
        """Report a gap or a step back; True when the chain cannot be checked across it."""
        expected = self.last_index + 1
        if index < expected:
            message = f"entry {index}: duplicate or out of order (after entry {self.last_index})"
            self.add_problem("entry", index, message)
            return True
        if index > expected:
            which = f"entry {expected}" if index == expected + 1 else f"entries {expected} to {index - 1}"
            how = (
                f"log starts at index {index}"
                if expected == 0
                else f"index jumps from {expected - 1} to {index}"
            )
            self.add_problem("entry", expected, f"{which}: missing ({how})")
            return True
        return False

    def _recompute(self, index: int, fields: Mapping[str, Any], stored_leaf_hash: str) -> bytes:
        try:
            values = dict(fields)
            text = values.get("detail")
            if isinstance(text, str):
                try:
                    values["detail"] = json.loads(text)
                except (ValueError, RecursionError) as e:
                    raise MalformedError("detail is not JSON") from e
            entry = LogEntry.from_dict(values)
            if isinstance(text, str) and entry.detail_json != text.encode():
                raise MalformedError("detail is not canonical JSON")
            actual = entry.leaf_hash()
        except MalformedError as e:
            message = f"entry {index}: contents changed (stored fields are not an entry: {e.message})"
            self.add_problem("entry", index, message)
            return b"\xff" * 32  # matches no checkpoint
        if actual.hex() != stored_leaf_hash:
            self.add_problem("entry", index, f"entry {index}: contents changed (leaf hash differs)")
        return actual

    def _check_root(self) -> None:
        root = self._pending.pop(self.count, None)
        if root is not None and root != self.root():
            self.add_problem(
                "checkpoint", self.count, f"checkpoint at size {self.count}: root does not match entries"
            )

    def compact(self) -> CompactRange:
        """The compact range of the (recomputed) entries seen so far."""
        return CompactRange(self.count, tuple(self._stack))

    def root(self) -> bytes:
        """The Merkle root of the (recomputed) entries seen so far."""
        return self.compact().root()

    def finish(self) -> list[LogProblem]:
        """Report checkpoints beyond the last entry; return the problems, in the order found."""
        for size in sorted(self._pending):
            message = (
                f"checkpoint at size {size}: root does not match entries (the log holds only {self.count})"
            )
            self.add_problem("checkpoint", size, message)
        self._pending.clear()
        return self.problems
