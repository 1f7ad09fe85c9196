"""Per-channel sequence numbers and seen message ids (the node's replay state)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from node.errors import PeerRefusal
from node.storage.models.exchange import Channel, SeenMessage


def _locked_channel(session: Session, peer: str, direction: str) -> Channel:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Channel).values(peer=peer, direction=direction, last_seq=0).on_conflict_do_nothing()
    )
    channel = session.execute(
        select(Channel).where(Channel.peer == peer, Channel.direction == direction).with_for_update()
    ).scalar_one()
    return channel


def next_outgoing_seq(session: Session, peer: str) -> int:
    """Take the next sequence number for the channel to ``peer`` (inside the caller's transaction)."""
    channel = _locked_channel(session, peer, "out")
    channel.last_seq += 1
    return channel.last_seq


def accept_incoming(
    session: Session, *, peer: str, message_id: str, seq: int | None, forget_after: int
) -> None:
    """Record an accepted message id, and its seq on the channel from ``peer`` when ``seq`` is given.

    Raises PeerRefusal ``replayed_message`` for an id seen before and ``sequence_regressed`` for a
    seq not greater than the highest accepted on the channel. Replies pass ``seq=None``: they are
    bound to their request instead (protocol/SPEC.md, "Requests and replies").
    """
    seen = session.get(SeenMessage, message_id)
    if seen is not None:
        raise PeerRefusal(
            "this message id was accepted before (replay)", code="replayed_message", http_status=409
        )
    if seq is not None:
        channel = _locked_channel(session, peer, "in")
        if seq <= channel.last_seq:
            raise PeerRefusal(
                f"sequence number {seq} is not greater than {channel.last_seq}, the highest accepted on this channel",
                code="sequence_regressed",
                http_status=409,
            )
        channel.last_seq = seq
    session.add(SeenMessage(message_id=message_id, peer=peer, forget_after=forget_after))


def forget_expired(session: Session, now: int) -> int:
    """Drop seen ids whose envelopes could no longer pass the time check. Returns how many."""
    result = session.execute(delete(SeenMessage).where(SeenMessage.forget_after < now))
    return int(getattr(result, "rowcount", 0) or 0)
