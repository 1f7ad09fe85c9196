"""Tables for talking to peers: channel sequence numbers, seen message ids, the durable outbox."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base


class Channel(Base):
    """Highest sequence number used (out) or accepted (in) on a directed channel with a peer."""

    __tablename__ = "channels"

    peer: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)  # "out" | "in"
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SeenMessage(Base):
    """Message ids accepted from peers, kept until the envelope could no longer pass the time check."""

    __tablename__ = "seen_messages"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    forget_after: Mapped[int] = mapped_column(BigInteger, index=True)


class OutboxMessage(Base):
    """A request waiting to be delivered to a peer. Delivered in order per peer, at most once."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), unique=True)
    peer: Mapped[str] = mapped_column(String(64))
    message_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    created_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply_payload: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_outbox_pending", "status", "peer", "id"),)


class User(Base):
    """A local user of the REST API: a role and the SHA-256 of a random bearer token."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | analyst | auditor | ingest
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
