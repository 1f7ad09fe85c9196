"""The analyst's side of a joint query: ask the countries, check their answers, combine, keep.

``run_query`` stores the run first, asks every chosen peer in parallel (and this node itself, as
one more country), checks each signed answer against the query it asked (protocol.query.messages.
verify_answer), stores every country's outcome, and returns the combined table. A country that
refuses (budget, limit, invalid query), does not answer in time, or answers something that does
not fit the query is named with its reason and left out of the totals. Runs can be listed and
re-opened: the table is recombined from the stored answers, never asked again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from node.context import NodeContext
from node.errors import NodeError, NotFoundError, OperatorError, RemoteRefusal, TransportError
from node.services import exchange_log
from node.services.directory import current_directory
from node.services.exchange import send_request
from node.storage.models.queries import QueryAnswer, QueryRun
from protocol.errors import ProtocolError
from protocol.query.combine import CountryAnswer, combine
from protocol.query.messages import AnswerMismatch, verify_answer
from protocol.query.spec import QuerySpec, parse_spec

log = logging.getLogger("palermo.query")
Progress = Callable[[str, str], None]  # (node id, outcome)
MAX_PARALLEL = 8


@dataclass(frozen=True)
class Outcome:
    node_id: str
    country: str
    status: str  # answered | refused | no_answer | rejected
    code: str = ""
    message: str = ""
    answer: dict[str, Any] | None = None
    envelope_hash: str = ""
    seconds: float = 0.0  # from asking to a checked answer (or the refusal)


def resolve_peers(node: NodeContext, peers: str | Sequence[str]) -> list[str]:
    """The node ids to ask: "all" is every other data owner in the directory; this node is always asked."""
    directory = current_directory(node, now=node.clock())
    others = [m.node_id for m in directory.members if m.node_id != node.node_id]
    if peers == "all" or peers == ["all"]:
        chosen = [
            m.node_id for m in directory.members if m.node_id != node.node_id and "data-owner" in m.roles
        ]
    else:
        names = [p.strip() for p in (peers.split(",") if isinstance(peers, str) else peers) if p.strip()]
        unknown = [p for p in names if p not in others and p != node.node_id]
        if unknown:
            raise OperatorError(
                f"not a peer in this node's directory: {', '.join(unknown)[:200]}", code="unknown_peer"
            )
        chosen = [p for p in dict.fromkeys(names) if p != node.node_id]
    return [node.node_id, *sorted(chosen)]


def run_query(
    node: NodeContext,
    spec: QuerySpec,
    peers: str | Sequence[str],
    *,
    by: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ask the countries, store their answers, return the combined run (see :func:`show_query`)."""
    asked = resolve_peers(node, peers)
    query_id = node.random_bytes(16).hex()
    with node.db.transaction() as session:
        session.add(
            QueryRun(
                query_id=query_id,
                spec=spec.to_dict(),
                spec_hash=spec.hash,
                peers=asked,
                status="running",
                requested_by=by[:64],
                created_at=node.clock(),
            )
        )
    countries = {m.node_id: m.country for m in current_directory(node, now=node.clock()).members}
    countries.setdefault(node.node_id, node.settings.country)

    def ask(node_id: str) -> Outcome:
        started = time.perf_counter()
        outcome = _ask(node, spec, query_id, node_id, countries.get(node_id, "XXX"))
        outcome = dataclasses.replace(outcome, seconds=round(time.perf_counter() - started, 3))
        if progress:
            progress(node_id, outcome.status)
        return outcome

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(asked))) as pool:
        outcomes = list(pool.map(ask, asked))
    with node.db.transaction() as session:
        for o in outcomes:
            session.add(
                QueryAnswer(
                    query_id=query_id,
                    node_id=o.node_id,
                    country=o.country,
                    status=o.status,
                    code=o.code[:64],
                    message=o.message[:300],
                    answer=o.answer,
                    envelope_hash=o.envelope_hash,
                    received_at=node.clock(),
                    seconds_ms=round(o.seconds * 1000),
                )
            )
        run = session.get(QueryRun, query_id)
        assert run is not None
        run.status = "done"
        run.finished_at = node.clock()
    return show_query(node, query_id)


def _ask(node: NodeContext, spec: QuerySpec, query_id: str, node_id: str, country: str) -> Outcome:
    if node_id == node.node_id:
        return _ask_self(node, spec, query_id, country)
    try:
        exchange = send_request(
            node,
            node_id,
            "query.request",
            {"query_id": query_id, "spec": spec.to_wire()},
            timeout=node.settings.query_timeout_seconds,
        )
    except RemoteRefusal as e:
        return Outcome(node_id, country, "refused", e.code, e.message)
    except TransportError as e:
        return Outcome(node_id, country, "no_answer", e.code, e.message)
    except (NodeError, ProtocolError) as e:  # the reply itself was refused (signature, sender, shape)
        return Outcome(node_id, country, "rejected", e.code, e.message)
    answer = exchange.reply.payload
    try:
        verify_answer(spec, query_id, answer)
    except AnswerMismatch as e:
        _log_rejected(node, node_id, exchange.reply.header.id, exchange.reply_hash, e.code)
        log.warning("query answer rejected", extra={"peer": node_id, "code": e.code})
        return Outcome(node_id, country, "rejected", e.code, e.message, envelope_hash=exchange.reply_hash)
    return Outcome(node_id, country, "answered", answer=answer, envelope_hash=exchange.reply_hash)


def _ask_self(node: NodeContext, spec: QuerySpec, query_id: str, country: str) -> Outcome:
    from node.query.responder import answer as answer_query

    try:
        answer = answer_query(node, spec, asker=node.node_id, query_id=query_id, message_id=query_id)
    except (NodeError, ProtocolError) as e:
        return Outcome(node.node_id, country, "refused", e.code, e.message)
    verify_answer(spec, query_id, answer)  # our own release must fit too; a failure is a bug, not a refusal
    return Outcome(node.node_id, country, "answered", answer=answer)


def _log_rejected(node: NodeContext, peer: str, message_id: str, envelope_hash: str, code: str) -> None:
    """The reply was logged as accepted (its envelope was sound); log that its content was rejected."""
    with node.db.transaction() as session:
        exchange_log.append(
            session,
            time=node.clock(),
            kind="query_answer",
            direction="in",
            peer=peer,
            message_id=message_id,
            message_type="query.answer",
            envelope_hash=envelope_hash,
            outcome="rejected",
            code=code,
        )


def list_queries(node: NodeContext, *, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent runs first: what was asked, when, by whom, and how many countries answered."""
    with node.db.read() as session:
        runs = session.scalars(select(QueryRun).order_by(QueryRun.created_at.desc()).limit(limit)).all()
        answers: dict[str, list[QueryAnswer]] = {}
        if runs:
            rows = session.scalars(
                select(QueryAnswer).where(QueryAnswer.query_id.in_([r.query_id for r in runs]))
            )
            for row in rows:
                answers.setdefault(row.query_id, []).append(row)
        return [_run_header(run, answers.get(run.query_id, [])) for run in runs]


def _run_header(run: QueryRun, answers: Sequence[QueryAnswer]) -> dict[str, Any]:
    spec = parse_spec(run.spec)
    return {
        "query_id": run.query_id,
        "title": spec.title,
        "description": spec.describe(),
        "status": run.status,
        "requested_by": run.requested_by,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "asked": list(run.peers),
        "answered": sorted(a.node_id for a in answers if a.status == "answered"),
    }


def show_query(node: NodeContext, query_id: str) -> dict[str, Any]:
    """A stored run: its specification, every country's outcome and the combined table."""
    with node.db.read() as session:
        run = session.get(QueryRun, query_id)
        if run is None:
            raise NotFoundError(f"no query {query_id[:40]} on this node", code="unknown_query")
        answers = session.scalars(
            select(QueryAnswer).where(QueryAnswer.query_id == query_id).order_by(QueryAnswer.country)
        ).all()
        header = _run_header(run, answers)
        spec = parse_spec(run.spec)
        outcomes = [
            {"node_id": a.node_id, "country": a.country, "status": a.status, "code": a.code, "message": a.message,
             "cached": bool(a.answer and a.answer.get("cached")), "period": (a.answer or {}).get("period"),
             "seconds": a.seconds_ms / 1000}
            for a in answers
        ]  # fmt: skip
        usable = [
            CountryAnswer(a.node_id, a.country, float(a.answer["scale"]), a.answer["cells"])
            for a in answers
            if a.status == "answered" and a.answer is not None
        ]
    table = combine(spec, usable)
    left_out = [o for o in outcomes if o["status"] != "answered"]
    if not usable and run.status == "done":
        header["status"] = "no_answers"
    return {
        **header,
        "spec": spec.to_dict(),
        "rho": spec.rho,
        "outcomes": outcomes,
        "left_out": left_out,
        "table": table,
    }
