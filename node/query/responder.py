"""Answering a joint query: this node's own differentially private release, charged to the asker.

The order matters for privacy and for a peer's budget:

1. the specification is parsed here (a peer's plan is never run) and checked against the most one
   query may spend, before any work;
2. the exact table is counted from the query frame, outside any transaction (no lock held);
3. the ledger, in one transaction that locks the budget period, answers from the release cache,
   or checks both caps, draws the noise with OpenDP and records the charge with the release;
4. only then does the answer leave, in an envelope signed by this node.

A refusal at any step charges nothing. The same function answers this node's own analysts (the
asker is then this node's own id, charged to the global cap like any peer).
"""

from __future__ import annotations

from typing import Any

from node.context import NodeContext
from node.errors import PeerRefusal
from node.query import ledger
from node.query.count import count_cells
from node.query.frame import current_frame
from node.query.release import release_table
from node.services.directory import current_directory
from node.services.handlers import handler
from protocol.envelope import Message
from protocol.errors import MalformedError
from protocol.query.spec import QuerySpec, parse_wire


def answer(
    node: NodeContext, spec: QuerySpec, *, asker: str, query_id: str, message_id: str
) -> dict[str, Any]:
    """This node's answer to ``spec`` asked by ``asker``: the query.answer payload (cached or fresh).

    Raises BudgetRefusal (query_over_limit, budget_exhausted); charges nothing when it raises.
    """
    policy = ledger.budget_policy(node.settings)
    period = ledger.period_of(policy.period, node.clock())
    # Over the per-query limit the ledger refuses before drawing (unless the release cache has
    # the answer already), so the table is not even counted.
    over_limit = spec.rho_nano > policy.query_nano
    counts = None if over_limit else count_cells(current_frame(node), spec)

    def draw() -> dict[str, Any]:
        if counts is None:
            raise AssertionError("the ledger refuses a query over the limit before drawing")
        return release_table(spec, counts, period=period, released_at=node.clock())

    released = ledger.release(
        node,
        peer=asker,
        query_hash=spec.hash,
        spec=spec.to_wire(),
        measure=spec.measure,
        dimensions=spec.dimensions,
        rho_nano=spec.rho_nano,
        message_id=message_id,
        draw=draw,
    )
    return {**released.answer, "query_id": query_id, "cached": released.cached}


@handler("query.request")
def _answer_query(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    member = current_directory(node, now=node.clock()).member(message.header.sender)
    if member is None or "analyst" not in member.roles:
        raise PeerRefusal(
            "the directory does not give the sender the analyst role", code="not_an_analyst", http_status=403
        )
    try:
        spec = parse_wire(message.payload["spec"])
    except MalformedError as e:
        raise PeerRefusal(e.message, code="invalid_query", http_status=422) from e
    payload = answer(
        node,
        spec,
        asker=message.header.sender,
        query_id=message.payload["query_id"],
        message_id=message.header.id,
    )
    return "query.answer", payload
