"""What follows a match: the focal points' decisions and disclosures of named fields (SPEC section 12.6-12.7).

A decision is recorded here and sent to the peer through the outbox; a match both sides
confirmed is a confirmed cross-border link. Only a confirmed link can be followed by a disclosure
request; the owner approves or refuses it, the strictest handling code of the person's cases
limits which fields may be asked, and only approved fields travel, once, in an envelope.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import NotFoundError, OperatorError, PeerRefusal
from node.matching.people import PERSON_COLUMNS, contexts, person_rows
from node.services import exchange_log, outbox
from node.services.handlers import handler
from node.storage.models.matching import Disclosure, Match
from node.storage.models.records import Case, CasePerson, Person
from protocol import matching as messages
from protocol.envelope import Message

LIMIT = 1000


def status_of(match: Match) -> str:
    """candidate | confirmed (by both: a confirmed link) | confirmed_here | confirmed_by_peer | rejected."""
    decisions = (match.own_decision, match.peer_decision)
    if "rejected" in decisions:
        return "rejected"
    if decisions == ("confirmed", "confirmed"):
        return "confirmed"
    if match.own_decision == "confirmed":
        return "confirmed_here"
    if match.peer_decision == "confirmed":
        return "confirmed_by_peer"
    return "candidate"


def _public(match: Match, context: Any) -> dict[str, Any]:
    return {
        "match_id": match.match_id,
        "peer": match.peer,
        "band": match.band,
        "score": match.weight,
        "probability": match.probability,
        "evidence": list(match.evidence),
        "status": status_of(match),
        "own_decision": match.own_decision,
        "peer_decision": match.peer_decision,
        "prs_PersonId": match.person_ref,
        "cas_CaseIds": list(context.case_ids) if context else [],
        "roles": list(context.roles) if context else [],
        "round_id": match.round_id,
        "created_at": match.created_at,
        "updated_at": match.updated_at,
    }


def list_matches(
    node: NodeContext,
    *,
    peer: str | None = None,
    band: str | None = None,
    status: str | None = None,
    limit: int = LIMIT,
) -> list[dict[str, Any]]:
    """Matches, best first, with only this side's case and person ids."""
    if band is not None and band not in messages.BANDS:
        raise OperatorError(f"unknown band {band!r}: expected one of {', '.join(messages.BANDS)}")
    statuses = ("candidate", "confirmed", "confirmed_here", "confirmed_by_peer", "rejected")
    if status is not None and status not in statuses:
        raise OperatorError(f"unknown status {status!r}: expected one of {', '.join(statuses)}")
    with node.db.read() as session:
        query = select(Match).order_by(Match.weight.desc(), Match.match_id)
        if peer:
            query = query.where(Match.peer == peer)
        if band:
            query = query.where(Match.band == band)
        found = [m for m in session.scalars(query) if status is None or status_of(m) == status][:limit]
        known = contexts(session, [m.person_ref for m in found])
        return [_public(m, known.get(m.person_ref)) for m in found]


def show_match(node: NodeContext, match_id: str) -> dict[str, Any]:
    with node.db.read() as session:
        match = _match(session, match_id)
        return _public(match, contexts(session, [match.person_ref]).get(match.person_ref))


def _match(session: Session, match_id: str) -> Match:
    found = session.get(Match, match_id) if messages.HEX32_RE.fullmatch(match_id or "") else None
    if found is None:
        raise NotFoundError(f"no match {match_id!r} on this node", code="match_unknown")
    return found


def review(node: NodeContext, match_id: str, decision: str, *, by: str) -> dict[str, Any]:
    """Record the focal point's decision and send it to the peer (through the outbox)."""
    if decision not in messages.DECISIONS:
        raise OperatorError(f"a decision is one of {', '.join(messages.DECISIONS)}")
    now = node.clock()
    with node.db.transaction() as session:
        match = _match(session, match_id)
        match.own_decision, match.own_decided_at, match.own_decided_by = decision, now, by
        outbox.enqueue(
            node, match.peer, "match.decision", {"match_id": match_id, "decision": decision}, session=session
        )
        exchange_log.append(
            session, time=now, kind="match_decision", direction="out", peer=match.peer, outcome=decision
        )
    return show_match(node, match_id)


def _shared_match(session: Session, match_id: str, peer: str) -> Match:
    """The match ``match_id`` if it is shared with ``peer``; else the peer's request is refused."""
    match = session.get(Match, match_id)
    if match is None or match.peer != peer:
        raise PeerRefusal(
            "no match with that id is shared with this peer", code="match_unknown", http_status=404
        )
    return match


@handler("match.decision")
def _peer_decision(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("match.decision", message.payload)
    peer, now = message.header.sender, node.clock()
    with node.db.transaction() as session:
        match = _shared_match(session, fields["match_id"], peer)
        match.peer_decision, match.peer_decided_at = fields["decision"], now
        exchange_log.append(
            session, time=now, kind="match_decision", direction="in", peer=peer, outcome=fields["decision"]
        )
    return "receipt", {}


# ---- disclosures -------------------------------------------------------------------------------------


def _disclosure_public(row: Disclosure) -> dict[str, Any]:
    return {
        "disclosure_id": row.disclosure_id,
        "direction": row.direction,
        "peer": row.peer,
        "match_id": row.match_id,
        "fields": list(row.fields),
        "status": row.status,
        "handling_code": row.handling_code,
        "values": row.values if row.direction == "out" else None,
        "reason": row.reason,
        "created_at": row.created_at,
        "requested_by": row.requested_by,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
    }


def list_disclosures(
    node: NodeContext, *, direction: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    if direction not in (None, "in", "out"):
        raise OperatorError("direction is 'in' (asked of this node) or 'out' (asked by this node)")
    with node.db.read() as session:
        query = select(Disclosure).order_by(Disclosure.created_at.desc(), Disclosure.disclosure_id)
        if direction:
            query = query.where(Disclosure.direction == direction)
        if status:
            query = query.where(Disclosure.status == status)
        return [_disclosure_public(row) for row in session.scalars(query.limit(LIMIT))]


def request_disclosure(node: NodeContext, match_id: str, fields: list[str], *, by: str) -> dict[str, Any]:
    """Ask the peer of a confirmed link for named fields, now: a refusal (handling code, unknown
    match) comes back at once and nothing is stored; so does an unreachable peer."""
    from node.services.exchange import send_request

    unknown = [f for f in fields if f not in messages.DISCLOSABLE_FIELDS]
    if not fields or unknown or len(set(fields)) != len(fields):
        raise OperatorError(
            "name one or more distinct disclosable fields: " + ", ".join(messages.DISCLOSABLE_FIELDS)
        )
    with node.db.read() as session:
        match = _match(session, match_id)
        peer, confirmed = match.peer, status_of(match) == "confirmed"
    if not confirmed:
        raise OperatorError(
            "only a match confirmed on both sides can be followed by a disclosure request",
            code="match_not_confirmed",
            http_status=409,
        )
    disclosure_id = node.random_bytes(16).hex()
    payload = {"disclosure_id": disclosure_id, "match_id": match_id, "fields": list(fields)}
    send_request(node, peer, "disclosure.request", payload)
    now = node.clock()
    with node.db.transaction() as session:
        session.add(
            Disclosure(
                disclosure_id=disclosure_id, direction="out", peer=peer, match_id=match_id,
                fields=list(fields), status="pending", created_at=now, requested_by=by,
            )
        )  # fmt: skip
        exchange_log.append(
            session, time=now, kind="disclosure", direction="out", peer=peer, outcome="requested"
        )
    return show_disclosure(node, disclosure_id)


def show_disclosure(node: NodeContext, disclosure_id: str) -> dict[str, Any]:
    with node.db.read() as session:
        return _disclosure_public(_disclosure(session, disclosure_id))


def _disclosure(session: Session, disclosure_id: str) -> Disclosure:
    found = (
        session.get(Disclosure, disclosure_id) if messages.HEX32_RE.fullmatch(disclosure_id or "") else None
    )
    if found is None:
        raise NotFoundError(f"no disclosure {disclosure_id!r} on this node", code="disclosure_unknown")
    return found


def _askable(handling_code: str, fields: list[str]) -> list[str]:
    """The fields the handling code does not let a peer ask for."""
    allowed = messages.ASKABLE_BY_HANDLING_CODE.get(handling_code, ())
    return [f for f in fields if f not in allowed]


@handler("disclosure.request")
def _disclosure_request(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("disclosure.request", message.payload)
    peer, now = message.header.sender, node.clock()
    with node.db.transaction() as session:
        match = _shared_match(session, fields["match_id"], peer)
        if status_of(match) != "confirmed":
            raise PeerRefusal(
                "the match is not confirmed on both sides", code="match_not_confirmed", http_status=409
            )
        if session.get(Disclosure, fields["disclosure_id"]) is not None:
            raise PeerRefusal("a disclosure with that id exists", code="disclosure_exists", http_status=409)
        context = contexts(session, [match.person_ref]).get(match.person_ref)
        code = context.handling_code if context else "H3"
        forbidden = _askable(code, fields["fields"])
        if forbidden:
            raise PeerRefusal(
                f"handling code {code} does not allow asking for {', '.join(forbidden)}",
                code="disclosure_forbidden",
                http_status=403,
            )
        session.add(
            Disclosure(
                disclosure_id=fields["disclosure_id"], direction="in", peer=peer, match_id=match.match_id,
                fields=fields["fields"], status="pending", handling_code=code, created_at=now,
            )
        )  # fmt: skip
        exchange_log.append(
            session, time=now, kind="disclosure", direction="in", peer=peer, outcome="requested"
        )
    return "receipt", {}


def decide_disclosure(
    node: NodeContext, disclosure_id: str, approve: bool, *, by: str, reason: str | None = None
) -> dict[str, Any]:
    """Approve (send the fields' current values) or refuse a pending disclosure asked of this node."""
    if reason is not None and len(reason) > 200:
        raise OperatorError("a reason is at most 200 characters (and should name no person)")
    now = node.clock()
    with node.db.transaction() as session:
        row = _disclosure(session, disclosure_id)
        if row.direction != "in" or row.status != "pending":
            raise OperatorError(
                "only a pending disclosure asked of this node can be approved or refused",
                code="disclosure_not_pending",
                http_status=409,
            )
        match = _match(session, row.match_id)
        context = contexts(session, [match.person_ref]).get(match.person_ref)
        code = context.handling_code if context else "H3"
        if approve and _askable(code, list(row.fields)):
            raise OperatorError(
                f"the person's cases now carry handling code {code}, which does not allow these fields; "
                "refuse the request",
                code="disclosure_forbidden",
                http_status=409,
            )
        values = _values(session, match.person_ref, list(row.fields)) if approve else {}
        row.status = "approved" if approve else "refused"
        row.decided_at, row.decided_by, row.reason, row.handling_code = now, by, reason, code
        payload = {
            "disclosure_id": disclosure_id,
            "decision": "approved" if approve else "refused",
            "handling_code": code,
            "values": values,
        }
        outbox.enqueue(node, row.peer, "disclosure.response", payload, session=session)
        exchange_log.append(
            session, time=now, kind="disclosure", direction="out", peer=row.peer, outcome=row.status
        )
    return show_disclosure(node, disclosure_id)


def _values(session: Session, ref: str, fields: list[str]) -> dict[str, Any]:
    """The current values of ``fields`` for one own person; case fields as lists over its cases."""
    person = person_rows(session, [ref]).get(ref, {})
    out: dict[str, Any] = {}
    person_fields = set(PERSON_COLUMNS.values())
    cases = session.execute(
        select(CasePerson.role, Case.status, Case.registration_date, CasePerson.type_of_exploitation)
        .join(Person, CasePerson.person_id == Person.id)
        .join(Case, Case.id == CasePerson.case_id)
        .where(Person.person_id == ref)
        .order_by(Case.case_id)
    ).all()
    columns = {"role": 0, "cas_Status": 1, "cas_RegistrationDate": 2}
    for name in fields:
        if name in person_fields:
            value = person.get(name)
            out[name] = value if value is None or isinstance(value, list) else str(value)
        elif name == "vic_TypeOfExploitation":
            out[name] = sorted({v for row in cases for v in (row[3] or [])})
        else:
            out[name] = sorted({str(row[columns[name]]) for row in cases if row[columns[name]] is not None})
    return out


@handler("disclosure.response")
def _disclosure_response(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("disclosure.response", message.payload)
    peer, now = message.header.sender, node.clock()
    with node.db.transaction() as session:
        row = session.get(Disclosure, fields["disclosure_id"])
        if row is None or row.peer != peer or row.direction != "out":
            raise PeerRefusal(
                "this node asked this peer for no such disclosure", code="disclosure_unknown", http_status=404
            )
        if row.status != "pending":
            raise PeerRefusal(
                "that disclosure was already answered", code="disclosure_answered", http_status=409
            )
        extra = sorted(set(fields["values"]) - set(row.fields))
        if extra or (fields["decision"] == "refused" and fields["values"]):
            raise PeerRefusal(
                "the response carries fields that were not asked for", code="disclosure_unrequested_fields"
            )
        row.status = fields["decision"]
        row.values = fields["values"] if fields["decision"] == "approved" else None
        row.handling_code, row.decided_at = fields["handling_code"], now
        exchange_log.append(
            session, time=now, kind="disclosure", direction="in", peer=peer, outcome=row.status
        )
    return "receipt", {}
