"""Per-channel sequence numbers and seen message ids (the node's replay state).

Written with Core statements (no ORM objects): these run for every envelope.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from node.errors import PeerRefusal
from node.storage.db import dialect_insert
from node.storage.models.exchange import Channel, SeenMessage


def _insert_ignore(session: Session, table: type, **values: object) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; returns the number of rows inserted (0 or 1).

    Counted with RETURNING, not the cursor's rowcount: psycopg 3 reports -1 for this statement
    on PostgreSQL, which once made every replayed envelope look new there.
    """
    key = next(iter(table.__table__.primary_key.columns))  # type: ignore[attr-defined]  # a mapped class
    statement = dialect_insert(session, table).values(**values).on_conflict_do_nothing().returning(key)
    return len(session.execute(statement).all())


def next_outgoing_seq(session: Session, peer: str) -> int:
    """Take the next sequence number for the channel to ``peer`` (inside the caller's transaction)."""
    _insert_ignore(session, Channel, peer=peer, direction="out", last_seq=0)
    where = (Channel.peer == peer) & (Channel.direction == "out")
    session.execute(update(Channel).where(where).values(last_seq=Channel.last_seq + 1))
    return int(session.execute(select(Channel.last_seq).where(where)).scalar_one())


def accept_incoming(
    session: Session, *, peer: str, message_id: str, seq: int | None, forget_after: int
) -> None:
    """Record an accepted message id, and its seq on the channel from ``peer`` when ``seq`` is given.

    Raises PeerRefusal ``replayed_message`` for an id seen before and ``sequence_regressed`` for a
    seq not greater than the highest accepted on the channel; the caller's transaction is then
    rolled back, so nothing changes. Replies pass ``seq=None``: they are bound to their request
    instead (protocol/SPEC.md, "Replies").
    """
    if not _insert_ignore(session, SeenMessage, message_id=message_id, peer=peer, forget_after=forget_after):
        raise PeerRefusal(
            "this message id was accepted before (replay)", code="replayed_message", http_status=409
        )
    if seq is None:
        return
    where = (Channel.peer == peer) & (Channel.direction == "in")
    advanced = session.execute(update(Channel).where(where & (Channel.last_seq < seq)).values(last_seq=seq))
    if advanced.rowcount == 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return
    if _insert_ignore(session, Channel, peer=peer, direction="in", last_seq=seq):
        return
    last = session.execute(select(Channel.last_seq).where(where)).scalar_one()
    raise PeerRefusal(
        f"sequence number {seq} is not greater than {last}, the highest accepted on this channel",
        code="sequence_regressed",
        http_status=409,
    )


def forget_expired(session: Session, now: int) -> int:
    """Drop seen ids whose envelopes could no longer pass the time check. Returns how many."""
    result = session.execute(delete(SeenMessage).where(SeenMessage.forget_after < now))
    return int(getattr(result, "rowcount", 0) or 0)
