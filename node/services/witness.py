"""Witnessing peers' logs, and getting this node's checkpoints cosigned (protocol/SPEC.md section 7.10).

As a **witness**, this node keeps the newest checkpoint it cosigned for each peer's log. A new
checkpoint must carry the peer's log signature and extend that one: the same root at the same
size, or a valid consistency proof from it. Then this node cosigns it with its log key, records
it and logs the cosignature (``kind`` ``witness``, the size and root in ``detail``), so that the
witness's own audit bundle shows which history it saw. A checkpoint that rewrites or rolls back
history is refused loudly (``log_fork``, ``log_rollback``) and logged as ``fork_detected``: a
node that shows two peers two histories is caught when an auditor reconciles their bundles, or
at once when it shows one peer both.

As a **log**, this node sends its newest checkpoint to every member with the ``witness`` role,
with a consistency proof from the last size that witness cosigned, and stores the cosignatures
it gets back (``log_cosignatures``); audit bundles carry them on the checkpoints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import Table, func, select

from node.context import NodeContext
from node.errors import NodeError, OperatorError, PeerRefusal, RemoteRefusal, TransportError
from node.services import exchange_log
from node.services.directory import current_directory, installed_directory
from node.services.exchange import send_request
from node.services.handlers import handler
from node.services.proof_tree import proof_tree
from node.storage.db import dialect_insert
from node.storage.models.log import LogCheckpoint, LogEntryRow
from node.storage.models.witness import LogCosignature, WitnessedLog
from protocol.canonical import b64decode, b64encode
from protocol.envelope import Message
from protocol.errors import ProtocolError
from protocol.translog import log_origin, verify_checkpoint
from protocol.translog.cosign import add_signatures, cosign, verify_cosignature, witness_name
from protocol.translog.proofs import ProofError, verify_consistency

log = logging.getLogger("palermo.witness")
_cosignatures = cast(Table, LogCosignature.__table__)
_witnessed = cast(Table, WitnessedLog.__table__)


# --- the witness ----------------------------------------------------------------------------------


def _refuse(node: NodeContext, peer: str, code: str, message: str, detail: dict[str, Any]) -> PeerRefusal:
    """Log a refused checkpoint in its own transaction (the caller's rolls back) and build the refusal."""
    with node.db.transaction() as session:
        exchange_log.append(
            session,
            time=node.clock(),
            kind="witness",
            peer=peer,
            outcome="fork_detected",
            code=code,
            detail=detail,
        )
    log.error("a peer's log does not extend what this node witnessed", extra={"peer": peer, "code": code})
    return PeerRefusal(message, code=code, http_status=409)


@handler("log.witness")
def _witness(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    sender = message.header.sender
    directory = current_directory(node, now=node.clock())
    me, member = directory.member(node.node_id), directory.member(sender)
    if me is None or "witness" not in me.roles:
        raise PeerRefusal(
            "this node is not a witness in the directory", code="not_a_witness", http_status=403
        )
    assert member is not None  # the exchange accepted the envelope from a member
    note = message.payload["checkpoint"].encode("utf-8")
    origin = log_origin(sender)
    try:
        checkpoint = verify_checkpoint(note, origin=origin, public_key=member.log_key)
    except ProtocolError as e:
        raise PeerRefusal(f"the checkpoint does not verify: {e.message}", code=e.code, http_status=422) from e
    proof = [b64decode(h, what="proof[]", length=32) for h in message.payload["proof"]]
    now = node.clock()
    with node.db.transaction() as session:
        known = session.execute(
            select(_witnessed).where(_witnessed.c.origin == origin).with_for_update()
        ).one_or_none()
        known_size = known.size if known is not None else 0
        if message.payload["old_size"] != known_size:
            return "log.cosignature", {"status": "size_mismatch", "cosignature": "", "known_size": known_size}
        detail = {"size": checkpoint.size, "root": checkpoint.root.hex(), "known_size": known_size}
        problem = _extends(known, checkpoint, proof)
        if problem is None:
            line = cosign(note, name=witness_name(node.node_id), signing_key=node.keys.log, timestamp=now)
            values = {"origin": origin, "node_id": sender, "size": checkpoint.size, "root": checkpoint.root.hex(),
                      "note": note.decode("utf-8"), "updated_at": now}  # fmt: skip
            upsert = dialect_insert(session, _witnessed).values(values)
            changed = {k: v for k, v in values.items() if k != "origin"}
            session.execute(upsert.on_conflict_do_update(index_elements=["origin"], set_=changed))
            exchange_log.append(
                session, time=now, kind="witness", peer=sender, outcome="cosigned", detail=detail
            )
    if problem is not None:  # logged after the witness's own transaction ended, which changed nothing
        raise _refuse(node, sender, *problem, detail)
    return "log.cosignature", {
        "status": "cosigned",
        "cosignature": line.decode("utf-8"),
        "known_size": checkpoint.size,
    }


def _extends(known: Any, checkpoint: Any, proof: list[bytes]) -> tuple[str, str] | None:
    """None when ``checkpoint`` extends the witnessed one, else (code, message)."""
    if known is None:
        return None  # the first checkpoint this node sees of that log: trust on first use
    if known.size == 0 and checkpoint.size > 0:
        return None  # every history extends the empty log
    if checkpoint.size < known.size:
        return "log_rollback", f"the log was at size {known.size} and is now at {checkpoint.size}"
    try:
        if checkpoint.size == known.size:
            if checkpoint.root.hex() != known.root:
                raise ProofError("two roots for one size")
        else:
            verify_consistency(known.size, checkpoint.size, bytes.fromhex(known.root), checkpoint.root, proof)
    except ProofError as e:
        return (
            "log_fork",
            f"the checkpoint does not extend the one at size {known.size} this node cosigned ({e.message})",
        )
    return None


# --- the log --------------------------------------------------------------------------------------


def _latest_checkpoint(node: NodeContext) -> tuple[int, bytes] | None:
    with node.db.read() as session:
        row = session.execute(
            select(LogCheckpoint.size, LogCheckpoint.note).order_by(LogCheckpoint.size.desc()).limit(1)
        ).one_or_none()
    return (int(row.size), row.note.encode("utf-8")) if row is not None else None


def _last_cosigned(node: NodeContext, witness: str) -> int:
    with node.db.read() as session:
        size = session.execute(
            select(func.max(LogCosignature.checkpoint_size)).where(LogCosignature.witness == witness)
        ).scalar()
    return int(size or 0)


def witness_checkpoint(node: NodeContext, peer: str) -> dict[str, Any]:
    """Send this node's newest checkpoint to ``peer`` and store its cosignature. Never raises for the peer's answer."""
    return _ask_witness(node, peer, _latest_checkpoint(node))


def _ask_witness(node: NodeContext, peer: str, latest: tuple[int, bytes] | None) -> dict[str, Any]:
    if latest is None:
        return {"peer": peer, "status": "no_checkpoint"}
    size, note = latest
    old = _last_cosigned(node, peer)
    if old == size:
        return {"peer": peer, "status": "cosigned", "size": size, "already": True}
    for _attempt in range(2):
        if 0 < old < size:
            proof = [b64encode(h) for h in proof_tree(node, size).consistency_proof(old, size)]
        else:
            proof = []
        try:
            reply = send_request(
                node,
                peer,
                "log.witness",
                {"checkpoint": note.decode("utf-8"), "old_size": old, "proof": proof},
            )
        except (RemoteRefusal, TransportError) as e:
            log.warning("witness refused or unreachable", extra={"peer": peer, "code": e.code})
            return {
                "peer": peer,
                "status": "refused" if isinstance(e, RemoteRefusal) else "no_answer",
                "code": e.code,
                "message": e.message,
            }
        except (NodeError, ProtocolError) as e:
            return {"peer": peer, "status": "rejected", "code": e.code, "message": e.message}
        answer = reply.reply.payload
        if (
            answer["status"] == "size_mismatch"
            and answer["known_size"] <= size
            and old != answer["known_size"]
        ):
            old = answer["known_size"]
            continue
        if answer["status"] != "cosigned":
            return {"peer": peer, "status": "size_mismatch", "known_size": answer["known_size"], "size": size}
        return _store(node, peer, size, note, answer["cosignature"].encode("utf-8"))
    return {"peer": peer, "status": "size_mismatch", "size": size}


def _store(node: NodeContext, peer: str, size: int, note: bytes, line: bytes) -> dict[str, Any]:
    member = current_directory(node, now=node.clock()).member(peer)
    assert member is not None
    try:
        signed = verify_cosignature(
            add_signatures(note, [line]), name=witness_name(peer), public_key=member.log_key
        )
    except ProtocolError as e:
        log.warning("a witness's cosignature does not verify", extra={"peer": peer, "code": e.code})
        return {"peer": peer, "status": "rejected", "code": e.code, "message": e.message}
    with node.db.transaction() as session:
        session.execute(
            dialect_insert(session, _cosignatures)
            .values(
                checkpoint_size=size,
                witness=peer,
                line=line.decode("utf-8"),
                timestamp=signed.timestamp,
                received_at=node.clock(),
            )
            .on_conflict_do_nothing(index_elements=["checkpoint_size", "witness"])
        )
    return {"peer": peer, "status": "cosigned", "size": size, "timestamp": signed.timestamp}


def witness_all(node: NodeContext) -> list[dict[str, Any]]:
    """Ask every other member with the witness role to cosign this node's newest checkpoint."""
    directory = current_directory(node, now=node.clock())
    latest = _latest_checkpoint(node)  # read once: the same checkpoint goes to every witness
    return [_ask_witness(node, m.node_id, latest) for m in directory.witnesses_of(node.node_id)]


def cosignature_lines(
    session: Any, sizes: Collection[int] | None = None
) -> dict[int, list[tuple[str, bytes]]]:
    """Checkpoint size -> (witness, cosignature line) stored for it, witnesses in name order."""
    query = select(LogCosignature.checkpoint_size, LogCosignature.witness, LogCosignature.line)
    if sizes is not None:
        query = query.where(LogCosignature.checkpoint_size.in_(sizes))
    lines: dict[int, list[tuple[str, bytes]]] = {}
    for size, witness, line in session.execute(query.order_by(LogCosignature.witness)):
        lines.setdefault(int(size), []).append((witness, line.encode("utf-8")))
    return lines


def cosigned_note(node: NodeContext, size: int, note: bytes) -> bytes:
    """``note`` with every stored cosignature of the checkpoint at ``size`` appended (for bundles)."""
    with node.db.read() as session:
        lines = [line for _, line in cosignature_lines(session, [size]).get(size, [])]
    return add_signatures(note, lines) if lines else note


def witnessing_status(node: NodeContext) -> dict[str, Any]:
    """Where this node's log stands against the directory's witness policy (SPEC 7.11.7).

    ``witnessed_size``: the largest checkpoint cosigned by a quorum of the log's witnesses;
    ``pending``: entries after it; ``due``: when the oldest of them must be witnessed;
    ``state``: ``ok``, ``late`` (an auditor's verify would fail now) or ``no_policy``.
    """
    directory = installed_directory(node)
    policy = directory.witness_policy if directory else None
    witnesses = {m.node_id for m in directory.witnesses_of(node.node_id)} if directory else set()
    with node.db.read() as session:
        size = session.execute(select(func.count()).select_from(LogEntryRow)).scalar_one()
        counted = (
            select(LogCosignature.checkpoint_size)
            .where(LogCosignature.witness.in_(witnesses))
            .group_by(LogCosignature.checkpoint_size)
            .having(func.count() >= (policy.quorum if policy else 1))
        )
        witnessed = session.execute(select(func.max(counted.subquery().c.checkpoint_size))).scalar()
        witnessed = int(witnessed or 0)
        oldest = session.execute(
            select(func.min(LogEntryRow.time)).where(LogEntryRow.index >= witnessed)
        ).scalar()
    status: dict[str, Any] = {
        "policy": policy.to_dict() if policy else None,
        "log_size": int(size),
        "witnessed_size": witnessed,
        "pending": int(size) - witnessed,
        "due": None,
        "state": "no_policy",
    }
    if policy is not None:
        due = None if oldest is None else int(oldest) + policy.max_delay
        status.update(due=due, state="late" if due is not None and due < node.clock() else "ok")
    return status


def list_checkpoints(node: NodeContext, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest checkpoints first, each with its root, signed note and the witnesses that cosigned it."""
    with node.db.read() as session:
        rows = (
            session.execute(select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(limit))
            .scalars()
            .all()
        )
        checkpoints = [(r.size, r.root, r.note.encode("utf-8"), r.created_at) for r in rows]
        cosigned = cosignature_lines(session, [c[0] for c in checkpoints]) if checkpoints else {}
    out = []
    for size, root, note, created in checkpoints:
        lines = cosigned.get(size, [])
        signed = add_signatures(note, [line for _, line in lines]) if lines else note
        out.append({"size": size, "root": root, "created_at": created, "witnesses": [w for w, _ in lines],
                    "note": signed.decode("utf-8")})  # fmt: skip
    return out


# --- proofs for auditors --------------------------------------------------------------------------


def _checkpoint_note(node: NodeContext, size: int) -> bytes:
    with node.db.read() as session:
        note = session.execute(select(LogCheckpoint.note).where(LogCheckpoint.size == size)).scalar()
    if note is None:
        raise OperatorError(
            f"no signed checkpoint at size {size} ('palermo audit checkpoints' lists them)",
            code="unknown_checkpoint",
            http_status=404,
        )
    return cosigned_note(node, size, note.encode("utf-8"))


def inclusion(node: NodeContext, index: int, size: int) -> dict[str, Any]:
    """Entry ``index``, its leaf hash and its inclusion proof in the signed checkpoint at ``size``."""
    note = _checkpoint_note(node, size)
    if not 0 <= index < size:
        raise OperatorError(f"index must be below the checkpoint's size {size}", code="invalid_request")
    tree = proof_tree(node, size)
    with node.db.read() as session:
        row = session.execute(select(LogEntryRow).where(LogEntryRow.index == index)).scalar_one()
        entry = {
            c: getattr(row, "index" if c == "idx" else c)
            for c in (
                "time",
                "kind",
                "direction",
                "peer",
                "message_id",
                "message_type",
                "envelope_hash",
                "size",
                "outcome",
                "code",
                "prev",
            )
        }
        entry["index"], entry["detail"] = row.index, json.loads(row.detail)
    return {"index": index, "size": size, "entry": entry, "leaf_hash": tree.leaves[index].hex(),
            "proof": [b64encode(h) for h in tree.inclusion_proof(index, size)], "checkpoint": note.decode("utf-8")}  # fmt: skip


def consistency(node: NodeContext, old_size: int, new_size: int) -> dict[str, Any]:
    """The consistency proof between two signed checkpoints, with both notes."""
    old_note, new_note = _checkpoint_note(node, old_size), _checkpoint_note(node, new_size)
    if not 0 < old_size <= new_size:
        raise OperatorError("expected 0 < old size <= new size", code="invalid_request")
    proof = proof_tree(node, new_size).consistency_proof(old_size, new_size)
    return {"old_size": old_size, "new_size": new_size, "proof": [b64encode(h) for h in proof],
            "old_checkpoint": old_note.decode("utf-8"), "new_checkpoint": new_note.decode("utf-8")}  # fmt: skip
