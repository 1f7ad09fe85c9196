"""Tables of witnessing: what this node saw of each peer's log, and the cosignatures peers gave its own.

``witnessed_logs`` holds, per peer log (origin), the newest checkpoint this node cosigned; a new
checkpoint from that peer must extend it (protocol/SPEC.md section 7.10). ``log_cosignatures``
holds the cosignature lines peers returned for this node's checkpoints, one per checkpoint size
and witness; an audit bundle carries them on its checkpoints.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base


class WitnessedLog(Base):
    """The newest checkpoint of a peer's log that this node cosigned (the witness's state)."""

    __tablename__ = "witnessed_logs"

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(64))  # hex
    note: Mapped[str] = mapped_column(Text)  # the checkpoint as received, with the log's signature
    updated_at: Mapped[int] = mapped_column(BigInteger)


class LogCosignature(Base):
    """A peer's cosignature of one of this node's checkpoints (a C2SP cosignature line)."""

    __tablename__ = "log_cosignatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger, index=True)
    witness: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("checkpoint_size", "witness", name="uq_log_cosignatures_size_witness"),
    )
