"""The durable outbox: requests that must reach a peer eventually, once, in order.

A message is stored before anything is sent. The delivery job sends the oldest pending message
of each peer (later ones wait behind it, so a peer sees them in order); a network failure or a
peer that is temporarily unable (5xx) is retried with exponential backoff; a refusal that will
not change on retry marks the message failed; ``replayed_message`` from the peer means it already
has the message (our earlier attempt arrived but the answer was lost), so it counts as delivered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import NodeError, OperatorError, RemoteRefusal, TransportError
from node.services.directory import current_directory
from node.services.exchange import send_request
from node.storage.models.exchange import OutboxMessage
from protocol.canonical import canonical_json, parse_json
from protocol.messages import check_payload

log = logging.getLogger("palermo.outbox")

RETRYABLE_REMOTE = {
    "directory_expired",
    "no_directory",
    "peer_error",
    "future_dated",
    "expired_envelope",
    "internal_error",
}


def enqueue(
    node: NodeContext,
    peer_id: str,
    type_name: str,
    payload: dict[str, Any],
    *,
    session: Session | None = None,
) -> str:
    """Store a request for ``peer_id``; returns its message id. Raises OperatorError for an unknown peer.

    With ``session``, the message is stored in the caller's transaction (it commits with the change
    that made it); otherwise in a transaction of its own."""
    payload = check_payload(type_name, payload)
    if current_directory(node).member(peer_id) is None or peer_id == node.node_id:
        raise OperatorError(
            f"'{peer_id}' is not a peer in this node's directory", code="unknown_peer", http_status=404
        )
    message_id = node.random_bytes(16).hex()
    now = node.clock()
    row = OutboxMessage(
        message_id=message_id,
        peer=peer_id,
        message_type=type_name,
        payload=canonical_json(payload).decode(),
        status="pending",
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    if session is not None:
        session.add(row)
        return message_id
    with node.db.transaction() as own:
        own.add(row)
    return message_id


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed}


def deliver_due(node: NodeContext, *, max_messages: int = 1000) -> DeliveryReport:
    """Deliver what is due, oldest first per peer. Called by the scheduler (one process only)."""
    report = DeliveryReport()
    blocked: set[str] = set()
    for _ in range(max_messages):
        row = _next_due(node, blocked)
        if row is None:
            break
        if not _deliver_one(node, row, report):
            blocked.add(row.peer)
    return report


def _next_due(node: NodeContext, blocked: set[str]) -> OutboxMessage | None:
    with node.db.transaction() as session:
        heads = (
            select(OutboxMessage.peer, func.min(OutboxMessage.id).label("head"))
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.peer)
            .subquery()
        )
        rows = (
            session.execute(select(OutboxMessage).join(heads, OutboxMessage.id == heads.c.head))
            .scalars()
            .all()
        )
        now = node.clock()
        for row in rows:
            if row.peer not in blocked and row.next_attempt_at <= now:
                return row
    return None


def _deliver_one(node: NodeContext, row: OutboxMessage, report: DeliveryReport) -> bool:
    outcome, error = "delivered", None
    reply_payload: str | None = None
    try:
        exchange = send_request(
            node, row.peer, row.message_type, parse_json(row.payload.encode()), message_id=row.message_id
        )
        reply_payload = canonical_json(exchange.reply.payload).decode()
    except RemoteRefusal as e:
        outcome, error = (
            ("delivered", e.code)
            if e.code == "replayed_message"
            else (("retry", e.code) if e.code in RETRYABLE_REMOTE else ("failed", e.code))
        )
    except TransportError as e:
        outcome, error = "retry", e.code
    except NodeError as e:  # e.g. our own directory expired: keep the message, try later
        outcome, error = "retry", e.code
    _record_attempt(node, row.id, outcome, error, reply_payload)
    if outcome == "delivered":
        report.delivered += 1
        return True
    if outcome == "failed":
        report.failed += 1
        log.warning(
            "outbox message failed", extra={"peer": row.peer, "code": error, "message_id": row.message_id}
        )
        return True
    report.retried += 1
    return False


def _record_attempt(
    node: NodeContext, row_id: int, outcome: str, error: str | None, reply_payload: str | None
) -> None:
    settings = node.settings
    with node.db.transaction() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        now = node.clock()
        row.attempts += 1
        row.last_error = error
        if outcome == "delivered":
            row.status, row.delivered_at, row.reply_payload = "delivered", now, reply_payload
        elif outcome == "failed" or row.attempts >= settings.outbox_max_attempts:
            row.status = "failed"
        else:
            delay = min(
                settings.outbox_backoff_seconds * 2 ** (row.attempts - 1), settings.outbox_backoff_max_seconds
            )
            row.next_attempt_at = now + delay


def list_messages(node: NodeContext, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Outbox rows, newest first (metadata only)."""
    with node.db.transaction() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxMessage.status == status)
        return [
            {
                "message_id": r.message_id,
                "peer": r.peer,
                "type": r.message_type,
                "status": r.status,
                "attempts": r.attempts,
                "created_at": r.created_at,
                "next_attempt_at": r.next_attempt_at,
                "delivered_at": r.delivered_at,
                "last_error": r.last_error,
            }
            for r in session.execute(query).scalars()
        ]
