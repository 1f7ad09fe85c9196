"""What witnesses add to an audit: cosignatures on a bundle's checkpoints, and forks across bundles.

* :func:`check_cosignatures`: every cosignature line on a checkpoint that names a witness of the
  bundled directory (a member with the ``witness`` role, key name ``palermo-witness/<node id>``,
  its log key) must verify; the witnesses whose cosignature holds are listed per checkpoint.
  Lines of keys the directory does not list are ignored, as signed notes require.
* :class:`WitnessClaims` and :func:`check_forks`: a witness logs the root it cosigned for each
  size of a peer's log (SPEC 7.10). Reconciling the witness's bundle with the log's, each such
  root must be the Merkle root of the log's own entries at that size; if not, the log showed the
  witness another history (a fork), and the reconcile names both roots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.directory import SignedDirectory
from protocol.errors import MalformedError, ProtocolError
from protocol.translog.bundle import EntryLine
from protocol.translog.cosign import cosignature_key_id, verify_cosignature, witness_name
from protocol.translog.note import parse_note
from protocol.translog.proofs import SubtreeCache

AddProblem = Callable[[str, int, str], None]


def directory_witnesses(directory: Mapping[str, Any] | None) -> dict[str, tuple[str, bytes]]:
    """Key name -> (node id, log key) of every witness in a bundled directory (empty if unreadable)."""
    if directory is None:
        return {}
    try:
        members = SignedDirectory.from_dict(dict(directory)).signed.members
    except MalformedError:
        return {}
    return {witness_name(m.node_id): (m.node_id, m.log_key) for m in members if "witness" in m.roles}


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
        detail = fields.get("detail")
        if isinstance(detail, str):
            import json

            try:
                detail = json.loads(detail)
            except ValueError:
                return
        if (
            isinstance(detail, dict)
            and type(detail.get("size")) is int
            and isinstance(detail.get("root"), str)
        ):
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
