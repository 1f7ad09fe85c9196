"""What witnesses add to an audit: cosignatures on a bundle's checkpoints, and forks across bundles.

* :func:`check_cosignatures`: every cosignature line on a checkpoint that names a witness of the
  bundled directory (a member with the ``witness`` role, key name ``palermo-witness/<node id>``,
  its log key) must verify; the witnesses whose cosignature holds are listed per checkpoint.
  Lines of keys the directory does not list are ignored, as signed notes require.
* :class:`WitnessQuorum`: the directory's witness policy (quorum and maximum delay, SPEC 6.1):
  every entry must be under a checkpoint cosigned by a quorum of the log's witnesses, or younger
  than the policy's maximum delay at the export.
* :class:`WitnessClaims` and :func:`check_forks`: a witness logs the root it cosigned for each
  size of a peer's log (SPEC 7.10). Reconciling the witness's bundle with the log's, each such
  root must be the Merkle root of the log's own entries at that size; if not, the log showed the
  witness another history (a fork), and the reconcile names both roots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.directory import Directory, WitnessPolicy, iso_time
from protocol.errors import ProtocolError
from protocol.translog.audit_common import AddProblem, detail_of
from protocol.translog.bundle import EntryLine
from protocol.translog.cosign import cosignature_key_id, verify_cosignature, witness_name
from protocol.translog.note import parse_note
from protocol.translog.proofs import SubtreeCache


def directory_witnesses(directory: Directory | None, owner: str) -> dict[str, tuple[str, bytes]]:
    """Key name -> (node id, log key) of every witness of ``owner``'s log in a bundled directory.

    The witnesses are the members with the witness role other than ``owner`` (a log cannot vouch
    for itself). Empty without a readable directory (the header check reports that).
    """
    if directory is None:
        return {}
    return {witness_name(m.node_id): (m.node_id, m.log_key) for m in directory.witnesses_of(owner)}


def check_cosignatures(
    note: bytes, size: int, witnesses: Mapping[str, tuple[str, bytes]], add_problem: AddProblem
) -> list[str]:
    """The node ids of the directory's witnesses whose cosignature on ``note`` verifies.

    A signature line under a witness's key name that does not verify, or is not a cosignature at
    all, is a problem: it claims a witness vouched for the checkpoint.
    """
    try:
        _text, lines = parse_note(note)
    except ProtocolError:
        return []  # the checkpoint check reports an unreadable note
    valid = []
    for line in lines:
        known = witnesses.get(line.name)
        if known is None:
            continue  # a key the directory does not list: ignored, as signed notes require
        where = f"checkpoint at size {size}"
        if line.key_id != cosignature_key_id(line.name, known[1]):
            add_problem("checkpoint", size, f"{where}: a signature names witness {known[0]} with another key")
            continue
        try:
            verify_cosignature(note, name=line.name, public_key=known[1])
        except ProtocolError as e:
            add_problem(
                "checkpoint", size, f"{where}: cosignature of {known[0]} does not verify ({e.message})"
            )
            continue
        valid.append(known[0])
    return sorted(set(valid))


@dataclass
class WitnessClaims:
    """Collects, while a bundle streams by, its leaf hashes and the roots it says it cosigned for peers."""

    leaves: list[bytes] = field(default_factory=list)
    claims: list[tuple[int, str, int, str]] = field(default_factory=list)  # (entry, peer, size, root hex)

    def __call__(self, record: EntryLine) -> None:
        try:
            self.leaves.append(bytes.fromhex(record.leaf_hash))
        except ValueError:
            self.leaves.append(b"")
        fields = record.fields
        if fields.get("kind") != "witness" or fields.get("outcome") != "cosigned":
            return
        detail = detail_of(record)
        if type(detail.get("size")) is int and isinstance(detail.get("root"), str):
            self.claims.append(
                (record.index or 0, str(fields.get("peer", "")), detail["size"], detail["root"])
            )


def check_forks(
    log_node: str, log: WitnessClaims, witness_node: str, witness: WitnessClaims, add_problem: AddProblem
) -> tuple[int, int]:
    """Check each root ``witness_node`` cosigned for ``log_node`` against the log's entries.

    Returns (roots checked, roots beyond the log's export, which cannot be checked from it).
    """
    cache = SubtreeCache(log.leaves) if log.leaves and all(len(h) == 32 for h in log.leaves) else None
    checked = beyond = 0
    for index, peer, size, root in witness.claims:
        if peer != log_node:
            continue
        if size > len(log.leaves) or cache is None or size <= 0:
            beyond += 1
            continue
        actual = cache.subtree_root(0, size).hex()
        checked += 1
        if actual != root:
            add_problem(
                "witness", index,
                f"{witness_node} entry {index} cosigned root {root[:16]}… for {log_node}'s log at size {size}, "
                f"but {log_node}'s entries give {actual[:16]}…: {log_node} showed {witness_node} another history",
            )  # fmt: skip
    return checked, beyond


@dataclass
class WitnessQuorum:
    """The directory's witness policy, checked while a bundle streams by (SPEC 7.11).

    Checkpoints come before entries in a bundle, so when entries start ``witnessed_size`` is the
    largest checkpoint size cosigned by at least ``quorum`` of the log's witnesses. Every entry at
    or after it is witnessed by no one yet; the oldest of them must be younger than ``max_delay``
    at the export. Older checkpoints with fewer cosignatures are fine: a later witnessed
    checkpoint covers them, as its consistency with the entries proves.
    """

    policy: WitnessPolicy | None
    exported_at: int
    witnessed_size: int = 0
    oldest: tuple[int, int] | None = None  # (time, index) of the oldest entry under no witnessed checkpoint
    unwitnessed: int = 0

    @classmethod
    def of(cls, directory: Directory | None, exported_at: int) -> WitnessQuorum:
        return cls(directory.witness_policy if directory else None, exported_at)

    def checkpoint(self, size: int, cosigners: list[str]) -> None:
        if self.policy is not None and len(cosigners) >= self.policy.quorum:
            self.witnessed_size = max(self.witnessed_size, size)

    def entry(self, index: int | None, time: Any) -> None:
        if self.policy is None or index is None or index < self.witnessed_size:
            return
        self.unwitnessed += 1
        if type(time) is int and (self.oldest is None or time < self.oldest[0]):
            self.oldest = (time, index)

    def finish(self, add_problem: AddProblem) -> None:
        if self.policy is None or self.oldest is None:
            return
        logged, index = self.oldest
        late = self.exported_at - logged
        if late > self.policy.max_delay:
            add_problem(
                "witness", index,
                f"entry {index} (logged {iso_time(logged)}) and {self.unwitnessed - 1} more are under no checkpoint "
                f"cosigned by {self.policy.quorum} witness(es) {_hours(late)} later, at the export; the witness "
                f"policy allows {_hours(self.policy.max_delay)} (checkpoints up to size {self.witnessed_size} are witnessed)",
            )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_dict() if self.policy else None,
            "witnessed_size": self.witnessed_size if self.policy else None,
            "unwitnessed_entries": self.unwitnessed if self.policy else None,
        }


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds} s"
