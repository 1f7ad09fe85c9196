"""Tables of joint pattern queries: the privacy ledger of what this node released, and the analyst's runs.

The ledger (``budget_periods``, ``privacy_charges``) is the node's durable account of every
differentially private release it made, to whom, on what, at what privacy loss (zCDP rho, in
units of 1e-9 so that sums are exact). A charge row also keeps the release itself: the same query
from the same peer in the same period is answered from it again, at no cost. The analyst's side
(``query_runs``, ``query_answers``) keeps each joint query this node sent and every country's
signed answer, so that it can be listed and re-opened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base


class BudgetPeriod(Base):
    """One row per budget period ("2026-11", "2026-Q4", "2026"): every charge locks it first, so
    that concurrent charges in a period are serialised and can never overspend a cap together."""

    __tablename__ = "budget_periods"

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class PrivacyCharge(Base):
    """One release: the peer that asked (this node's own id for its own analysts), the query, the
    loss charged, and the answer that was sent (the release cache)."""

    __tablename__ = "privacy_charges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period: Mapped[str] = mapped_column(String(16), index=True)
    peer: Mapped[str] = mapped_column(String(64))
    query_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical specification
    rho_nano: Mapped[int] = mapped_column(BigInteger)  # zCDP rho charged, in units of 1e-9
    measure: Mapped[str] = mapped_column(String(16))
    dimensions: Mapped[str] = mapped_column(String(200))  # comma-separated, for people reading the ledger
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the canonical specification
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)  # what was released (noisy cells, mechanism, scale)
    message_id: Mapped[str] = mapped_column(String(32))  # the query request's envelope id
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("period", "peer", "query_hash", name="uq_privacy_charges_release"),)


class QueryRun(Base):
    """A joint query an analyst of this node sent to peers (and to this node)."""

    __tablename__ = "query_runs"

    query_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    peers: Mapped[list[str]] = mapped_column(JSON)  # the node ids asked, this node included
    status: Mapped[str] = mapped_column(String(12))  # running | done
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


class QueryAnswer(Base):
    """One country's answer to a joint query: the verified release, or why there is none."""

    __tablename__ = "query_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(ForeignKey("query_runs.query_id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # answered | refused | no_answer | rejected
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(300))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))  # the query.answer payload
    envelope_hash: Mapped[str] = mapped_column(String(64))  # of the signed reply
    received_at: Mapped[int] = mapped_column(BigInteger)
    seconds_ms: Mapped[int] = mapped_column(Integer)  # how long the country took to answer or refuse

    __table_args__ = (UniqueConstraint("query_id", "node_id", name="uq_query_answers_query_node"),)
