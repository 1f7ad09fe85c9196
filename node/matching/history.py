"""The rounds this node took part in, for people and auditors (counts and times only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from node.context import NodeContext
from node.storage.models.matching import MatchRound


def list_rounds(node: NodeContext, *, peer: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent rounds first."""
    with node.db.read() as session:
        query = select(MatchRound).order_by(MatchRound.started_at.desc(), MatchRound.round_id).limit(limit)
        if peer:
            query = query.where(MatchRound.peer == peer)
        return [
            {
                "round_id": r.round_id,
                "peer": r.peer,
                "role": r.role,
                "mode": r.mode,
                "number": r.number,
                "epoch": r.epoch,
                "status": r.status,
                "stage": r.stage,
                "error_code": r.error_code,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "stats": r.stats or {},
            }
            for r in session.scalars(query)
        ]
