"""Installed federation directory versions. The row with the highest version is the one in force."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base


class DirectoryVersion(Base):
    """One verified directory version as installed; older rows are kept as history.

    ``document`` is the whole signed document in canonical JSON; ``sha256`` is the directory
    digest (SHA-256 of the canonical ``signed`` part), checked again whenever it is loaded.
    """

    __tablename__ = "directory_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    federation: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(BigInteger, index=True)
    expires: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    installed_at: Mapped[int] = mapped_column(BigInteger)
    initial: Mapped[bool] = mapped_column(Boolean, default=False)  # trusted on first use, not by a chain

    __table_args__ = (
        UniqueConstraint("federation", "version", name="uq_directory_versions_federation_version"),
    )
