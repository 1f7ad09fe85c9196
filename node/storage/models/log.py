"""Tables of the exchange log: entries, the one-row head that serialises appends, signed checkpoints.

Each entry is stored as its fields (so that it can be queried) and its leaf hash; verification
re-canonicalises the fields, so a change to any column shows. ``detail`` is kept as canonical
JSON text. See protocol/translog/ and docs/audit.md.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base


class LogEntryRow(Base):
    """One exchange-log entry (protocol.translog.LogEntry) and its RFC 6962 leaf hash."""

    __tablename__ = "log_entries"

    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(3))
    peer: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(32))
    message_type: Mapped[str] = mapped_column(String(64))
    envelope_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[str] = mapped_column(String(64))


class LogHead(Base):
    """The log's single head row (id 1): locked by every append so that the chain never forks.

    ``compact`` is the Merkle compact range of all entries (hex, 64 digits per subtree root,
    largest first), so that appends and checkpoints never rehash the whole log.
    """

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    last_leaf_hash: Mapped[str] = mapped_column(String(64))
    compact: Mapped[str] = mapped_column(Text)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class LogCheckpoint(Base):
    """A checkpoint signed with the log key: one per size, so a size never gets two roots."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)  # the C2SP signed note, UTF-8
    compact: Mapped[str] = mapped_column(Text)  # compact range at this size, to prove the next one extends it
    created_at: Mapped[int] = mapped_column(BigInteger)
