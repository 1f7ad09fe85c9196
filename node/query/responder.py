"""Answering a joint query: this node's own differentially private release, charged to the asker.

The order matters for privacy and for a peer's budget:

1. the specification is parsed here (a peer's plan is never run);
2. the ledger says, without a lock, whether its release cache holds the answer, or the per-query
   limit or a cap refuses it, before any work;
3. if not, the exact table is counted from the query frame and the noise drawn with OpenDP,
   outside any transaction;
4. the ledger, in one transaction that locks the budget period, answers from the release cache,
   or checks both caps again and records the charge with the release;
5. only then does the answer leave, in an envelope signed by this node. A table drawn for a
   query the locked check refuses is thrown away unseen.

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
    period = ledger.period_of(ledger.budget_policy(node.settings).period, node.clock())
    # Neither count nor draw for a query the ledger will answer from its cache or refuse. Otherwise
    # draw before the ledger's lock (a large table takes most of a second to draw); the table
    # leaves only if the locked check charges it, and is thrown away unseen if not.
    cached = ledger.preview(node, peer=asker, query_hash=spec.hash, rho_nano=spec.rho_nano)
    drawn = None
    if not cached:
        counts = count_cells(current_frame(node), spec)
        drawn = release_table(spec, counts, period=period, released_at=node.clock())

    def draw() -> dict[str, Any]:
        if drawn is None:  # the cache emptied between the preview and the lock: a new period began
            raise PeerRefusal(
                "the budget period changed while answering; ask again", code="period_changed", http_status=409
            )
        return drawn

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
