"""Tables for cross-border matching: rounds, PSI sessions, encodings sent and received, matches, disclosures.

Persons are referred to by ``prs_PersonId`` (``person_ref``), not by row id, so that a match
survives a reload of the person's cases. Encodings received from a peer are keyed Bloom filters
of the peer's persons (pseudonymous, useless without the pair key); no table here holds a peer's
names, dates or selectors, and disclosed values are kept only on the requesting side.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base

JsonValue = JSON(none_as_null=True)


class PersonFeatures(Base):
    """A person's normalised matching features, kept while its content is unchanged (local only).

    Derived from the person's fields and as sensitive as they are; it never leaves the node. A row
    whose ``content_hash`` differs from the person's current (versioned) hash is stale and recomputed.
    """

    __tablename__ = "person_features"

    person_ref: Mapped[str] = mapped_column(String(128), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)  # compact JSON: fields, birth year, selectors


class MatchRound(Base):
    """One matching round with a peer, as this node saw it (initiator or responder)."""

    __tablename__ = "match_rounds"

    round_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(12))  # initiator | responder
    mode: Mapped[str] = mapped_column(String(16))  # direct | linkage-unit
    unit: Mapped[str | None] = mapped_column(String(64))  # the linkage unit, in linkage-unit mode
    number: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # running | done | failed
    stage: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))
    stats: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)  # counts and seconds only
    # The responder's work list while encodings are paged out: {"send": [person_ref, ...]}; emptied at the end.
    work: Mapped[dict[str, Any] | None] = mapped_column(JsonValue, deferred=True)  # loaded when used

    __table_args__ = (Index("ix_match_rounds_peer_started", "peer", "started_at"),)


class PsiSession(Base):
    """The responder's state between psi.response and psi.result: which own selector is where."""

    __tablename__ = "psi_sessions"

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[str] = mapped_column(String(32), index=True)
    bucket: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # answering | answered | resulted | failed
    request_count: Mapped[int] = mapped_column(Integer)
    # Own selectors in the order they were blinded: [[person_ref, kind], ...], and the seed of the
    # shuffle that put them in the order sent. Emptied when the result has arrived.
    owners: Mapped[list[Any] | None] = mapped_column(JsonValue)
    shuffle_seed: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    __table_args__ = (Index("ix_psi_sessions_peer_created", "peer", "created_at"),)


class EncodingSent(Base):
    """A person whose encoding this node sent to a peer in a key epoch, and what it was."""

    __tablename__ = "encodings_sent"

    peer: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    handle: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))  # the person row's content hash when sent
    row_digest: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the encoded row as sent

    __table_args__ = (Index("ix_encodings_sent_person", "peer", "epoch", "person_ref"),)


class PeerEncoding(Base):
    """One encoded person received from a peer (keyed Bloom filters; no clear values)."""

    __tablename__ = "peer_encodings"

    peer: Mapped[str] = mapped_column(String(64), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    handle: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    filters: Mapped[bytes] = mapped_column(LargeBinary)
    presence: Mapped[int] = mapped_column(Integer)
    year: Mapped[int] = mapped_column(Integer)


class Match(Base):
    """A candidate cross-border match: one own person and one person of the peer, same match_id on both."""

    __tablename__ = "matches"

    match_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    person_ref: Mapped[str] = mapped_column(String(128), index=True)  # own prs_PersonId
    peer_handle: Mapped[bytes | None] = mapped_column(LargeBinary(16))  # the comparing side only
    round_id: Mapped[str] = mapped_column(String(32))  # the round that last found it
    band: Mapped[str] = mapped_column(String(12))  # likely | possible
    weight: Mapped[float] = mapped_column(Float)
    probability: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    own_decision: Mapped[str | None] = mapped_column(String(12))  # confirmed | rejected
    own_decided_at: Mapped[int | None] = mapped_column(BigInteger)
    own_decided_by: Mapped[str | None] = mapped_column(String(64))
    peer_decision: Mapped[str | None] = mapped_column(String(12))
    peer_decided_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_matches_peer_handle", "peer", "peer_handle"),)


class Disclosure(Base):
    """A request for named fields of a confirmed match: asked by this node (out) or of it (in)."""

    __tablename__ = "disclosures"

    disclosure_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # out: this node asked | in: the peer asked
    peer: Mapped[str] = mapped_column(String(64))
    match_id: Mapped[str] = mapped_column(String(32), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))  # pending | approved | refused
    handling_code: Mapped[str | None] = mapped_column(String(2))
    values: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)  # out only: what the owner sent
    reason: Mapped[str | None] = mapped_column(String(200))  # why refused (no personal data)
    created_at: Mapped[int] = mapped_column(BigInteger)
    requested_by: Mapped[str | None] = mapped_column(String(64))  # out only: the local user who asked
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(64))


class LinkageRound(Base):
    """A round this node compares as a linkage unit for two other members; it holds no pair key."""

    __tablename__ = "linkage_rounds"

    round_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    initiator: Mapped[str] = mapped_column(String(64))
    peer: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger)
    layout: Mapped[dict[str, Any]] = mapped_column(JSON)
    exact: Mapped[list[Any] | None] = mapped_column(JsonValue)  # [[a handle, b handle, kind], ...] (base64)
    status: Mapped[str] = mapped_column(String(12))  # open | done
    next_page: Mapped[dict[str, Any]] = mapped_column(JSON)  # party -> next page, "done" when last arrived
    created_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)


class LinkageRow(Base):
    """An encoded person held by a linkage unit until the round's comparison; deleted right after."""

    __tablename__ = "linkage_rows"

    round_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    party: Mapped[str] = mapped_column(String(1), primary_key=True)  # a: the initiator, b: its peer
    handle: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    filters: Mapped[bytes] = mapped_column(LargeBinary)
    presence: Mapped[int] = mapped_column(Integer)
    year: Mapped[int] = mapped_column(Integer)
