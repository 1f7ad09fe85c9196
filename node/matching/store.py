"""Reads and writes of the matching tables, shared by the initiator and the responder.

Everything runs inside the caller's transaction. Bulk rows go through Core statements in chunks:
a round may touch a million encodings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from node.matching.engine import Candidate
from node.matching.pairing import Pairing, batch_row_digests, empty_batch, row_digest, state_digest
from node.storage.models.matching import EncodingSent, Match, MatchRound, PeerEncoding
from protocol.encoding import EncodedBatch, Layout
from protocol.encoding.bloom import HANDLE_SIZE, WORD
from protocol.matching import PPM

CHUNK = 500


def update_round(session: Session, round_id: str, *, stage: str | None = None, stats: dict[str, Any]) -> None:
    """Merge ``stats`` (counts and seconds only) into the round's and set its stage."""
    found = session.get(MatchRound, round_id)
    if found is None:
        return
    found.stats = {**(found.stats or {}), **stats}
    if stage is not None:
        found.stage = stage


def abandon_running(session: Session, peer: str, *, role: str, now: int) -> None:
    """Close rounds with ``peer`` still marked running: a new round supersedes them."""
    session.execute(
        update(MatchRound)
        .where(MatchRound.peer == peer, MatchRound.role == role, MatchRound.status == "running")
        .values(status="failed", stage="abandoned", finished_at=now, error_code="round_abandoned", work=None)
    )


# ---- encodings this node sent (responder) -----------------------------------------------------------


def sent_state(session: Session, peer: str, epoch: int) -> dict[bytes, EncodingSent]:
    rows = session.scalars(select(EncodingSent).where(EncodingSent.peer == peer, EncodingSent.epoch == epoch))
    return {row.handle: row for row in rows}


def sent_digest(sent: dict[bytes, EncodingSent]) -> str:
    return state_digest([(handle, row.row_digest) for handle, row in sent.items()])


def record_sent(
    session: Session, keyed: Pairing, refs: Sequence[str], batch: EncodedBatch, *, hashes: dict[str, str]
) -> None:
    """Remember what was sent for each person (replacing an earlier encoding of the same person)."""
    handles = [bytes(h) for h in batch.handles]
    forget_sent(session, keyed, handles)
    rows = [
        {"peer": keyed.peer, "epoch": keyed.epoch, "handle": h, "person_ref": ref,
         "content_hash": hashes[ref], "row_digest": d}
        for h, ref, d in zip(handles, refs, batch_row_digests(batch), strict=True)
    ]  # fmt: skip
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(EncodingSent), rows[start : start + CHUNK])


def forget_sent(session: Session, keyed: Pairing, handles: Sequence[bytes]) -> None:
    for start in range(0, len(handles), CHUNK):
        session.execute(
            delete(EncodingSent).where(
                EncodingSent.peer == keyed.peer,
                EncodingSent.epoch == keyed.epoch,
                EncodingSent.handle.in_(handles[start : start + CHUNK]),
            )
        )


def sent_owners(session: Session, peer: str, epoch: int, handles: Sequence[bytes]) -> dict[bytes, str]:
    """The own person behind each handle this node sent to ``peer`` in ``epoch``."""
    out: dict[bytes, str] = {}
    unique = sorted(set(handles))
    for start in range(0, len(unique), CHUNK):
        query = select(EncodingSent.handle, EncodingSent.person_ref).where(
            EncodingSent.peer == peer,
            EncodingSent.epoch == epoch,
            EncodingSent.handle.in_(unique[start : start + CHUNK]),
        )
        out.update({h: ref for h, ref in session.execute(query)})
    return out


def save_peer_candidates(
    session: Session,
    peer: str,
    round_id: str,
    candidates: Sequence[dict[str, Any]],
    owners: dict[bytes, str],
    *,
    now: int,
) -> None:
    """Store the initiator's candidates by own person; a known match_id must name the same pair.

    Raises PeerRefusal ``match_conflict`` (and stores nothing) when one does not."""
    rows = [(owners[c["handle"]], None, c) for c in candidates]
    known = _existing(session, [c["match_id"] for c in candidates])
    for ref, _, c in rows:
        found = known.get(c["match_id"])
        if found is not None and found != (peer, ref):
            from node.errors import PeerRefusal

            raise PeerRefusal(
                "a candidate reuses a match id for another pair", code="match_conflict", http_status=409
            )
    _upsert(session, peer, round_id, rows, known, now=now)


def _existing(session: Session, match_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(peer, own person) of each match id already stored."""
    out: dict[str, tuple[str, str]] = {}
    for start in range(0, len(match_ids), CHUNK):
        query = select(Match.match_id, Match.peer, Match.person_ref).where(
            Match.match_id.in_(match_ids[start : start + CHUNK])
        )
        out.update({match_id: (p, ref) for match_id, p, ref in session.execute(query)})
    return out


def _upsert(
    session: Session,
    peer: str,
    round_id: str,
    rows: Sequence[tuple[str, bytes | None, dict[str, Any]]],
    known: dict[str, tuple[str, str]],
    *,
    now: int,
) -> None:
    """Insert new matches and refresh known ones (band, score, evidence, round), in bulk."""
    fresh = [
        {"match_id": c["match_id"], "peer": peer, "person_ref": ref, "peer_handle": handle, "round_id": round_id,
         "created_at": now, **_scores(c, now)}
        for ref, handle, c in rows if c["match_id"] not in known
    ]  # fmt: skip
    for start in range(0, len(fresh), CHUNK):
        session.execute(insert(Match), fresh[start : start + CHUNK])
    changed = [
        {"b_id": c["match_id"], "round_id": round_id, **_scores(c, now)}
        for _, _, c in rows
        if c["match_id"] in known
    ]
    if changed:
        table = Match.__table__
        assert isinstance(table, Table)
        statement = (
            update(table)
            .where(table.c.match_id == bindparam("b_id"))
            .values({name: bindparam(name) for name in ("round_id", "band", "weight", "probability", "evidence", "updated_at")})
        )  # fmt: skip
        session.execute(statement, changed)


def wire_fields(c: Candidate) -> dict[str, Any]:
    """A candidate's band, scores and evidence as they travel: integer thousandths of a bit and
    millionths (canonical JSON has no floats; SPEC 12.5). :func:`_scores` reads them back."""
    return {
        "band": c.band,
        "weight": round(float(c.weight) * 1000),
        "probability": round(float(c.probability) * PPM),
        "evidence": sorted(c.evidence),
    }


def _scores(c: dict[str, Any], now: int) -> dict[str, Any]:
    return {
        "band": c["band"],
        "weight": c["weight"] / 1000,
        "probability": c["probability"] / PPM,
        "evidence": sorted(c["evidence"]),
        "updated_at": now,
    }


# ---- encodings received from a peer (initiator) ------------------------------------------------------


def peer_entries(session: Session, peer: str, epoch: int) -> list[tuple[bytes, bytes]]:
    """(handle, row digest) of every encoding held from ``peer`` in ``epoch``."""
    query = select(PeerEncoding.handle, PeerEncoding.filters, PeerEncoding.presence, PeerEncoding.year).where(
        PeerEncoding.peer == peer, PeerEncoding.epoch == epoch
    )
    return [(h, row_digest(f, p, y)) for h, f, p, y in session.execute(query)]


def drop_other_epochs(session: Session, peer: str, epoch: int) -> None:
    """Encodings of another key epoch are useless (and sent ones are no longer the peer's state)."""
    session.execute(delete(PeerEncoding).where(PeerEncoding.peer == peer, PeerEncoding.epoch != epoch))
    session.execute(delete(EncodingSent).where(EncodingSent.peer == peer, EncodingSent.epoch != epoch))


def apply_batch(
    session: Session, peer: str, epoch: int, batch: EncodedBatch, *, removed: Sequence[bytes], full: bool
) -> None:
    """Replace what is held from ``peer`` by this page: drop removed handles, upsert the batch's rows."""
    if full:
        session.execute(delete(PeerEncoding).where(PeerEncoding.peer == peer, PeerEncoding.epoch == epoch))
    handles = [bytes(h) for h in batch.handles]
    doomed = list(removed) + handles
    for start in range(0, len(doomed), CHUNK):
        session.execute(
            delete(PeerEncoding).where(
                PeerEncoding.peer == peer,
                PeerEncoding.epoch == epoch,
                PeerEncoding.handle.in_(doomed[start : start + CHUNK]),
            )
        )
    rows = batch_rows(batch, peer=peer, epoch=epoch)
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(PeerEncoding), rows[start : start + CHUNK])


def peer_batch(session: Session, peer: str, epoch: int, layout: Layout) -> EncodedBatch:
    """Every encoding held from ``peer`` in ``epoch`` as one batch, ordered by handle."""
    query = (
        select(PeerEncoding.handle, PeerEncoding.filters, PeerEncoding.presence, PeerEncoding.year)
        .where(PeerEncoding.peer == peer, PeerEncoding.epoch == epoch)
        .order_by(PeerEncoding.handle)
    )
    return rows_to_batch(session.execute(query).all(), layout, epoch)


def rows_to_batch(rows: Sequence[Any], layout: Layout, epoch: int) -> EncodedBatch:
    """(handle, filters, presence, year) rows as one batch, in the order given."""
    if not rows:
        return empty_batch(layout, epoch)
    words = layout.total_bits // 64
    return EncodedBatch(
        layout=layout,
        epoch=epoch,
        filters=np.frombuffer(b"".join(r[1] for r in rows), WORD).reshape(len(rows), words).copy(),
        presence=np.fromiter((r[2] for r in rows), np.uint16, len(rows)),
        years=np.fromiter((r[3] for r in rows), np.uint16, len(rows)),
        handles=np.frombuffer(b"".join(r[0] for r in rows), np.uint8).reshape(len(rows), HANDLE_SIZE).copy(),
    )


def batch_rows(batch: EncodedBatch, **columns: Any) -> list[dict[str, Any]]:
    """The batch as table rows (handle, filters, presence, year), with ``columns`` added to each."""
    return [
        {**columns, "handle": bytes(batch.handles[i]), "filters": batch.filters[i].tobytes(),
         "presence": int(batch.presence[i]), "year": int(batch.years[i])}
        for i in range(len(batch))
    ]  # fmt: skip


def known_matches(session: Session, peer: str) -> dict[tuple[str, bytes], str]:
    """The match id of each (own person, peer handle) pair already found with ``peer``."""
    query = select(Match.person_ref, Match.peer_handle, Match.match_id).where(
        Match.peer == peer, Match.peer_handle.is_not(None)
    )
    return {(ref, handle): match_id for ref, handle, match_id in session.execute(query) if handle is not None}


def save_own_candidates(
    session: Session,
    peer: str,
    round_id: str,
    found: Sequence[tuple[str, bytes, dict[str, Any]]],
    *,
    now: int,
) -> None:
    """Store the initiator's candidates: (own person, peer handle, candidate payload with match_id)."""
    known = _existing(session, [c["match_id"] for _, _, c in found])
    _upsert(session, peer, round_id, list(found), known, now=now)
