"""The responder's side of a matching round (protocol/SPEC.md section 12): one handler per request.

Each handler checks the request against this node's state and policy first and changes nothing
when it refuses (the exchange layer logs the refusal with its code). The responder never
compares: it blinds, names the handles behind matched positions, pages out its encodings and
stores the candidates the initiator found, by its own persons.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import PeerRefusal
from node.matching import local, store
from node.matching.gcpause import gc_paused_call
from node.matching.pairing import Pairing, acceptable_epochs, pairing
from node.matching.people import Eligible, content_hashes, count_eligible, eligible
from node.services import exchange_log
from node.services.directory import current_directory
from node.services.handlers import handler
from node.services.psi_session import responder_answer
from node.storage.models.matching import EncodingSent, MatchRound, PsiSession
from protocol import matching as messages
from protocol import psi
from protocol.canonical import b64encode
from protocol.encoding import MAX_ROWS, Layout, batch_to_payload
from protocol.envelope import Message
from protocol.errors import MalformedError, ProtocolError

DAY = 86_400
PAGE_ROWS = MAX_ROWS
_TABLES_LOCK = threading.Lock()


def _refuse(message: str, code: str, status: int = 422) -> PeerRefusal:
    return PeerRefusal(message, code=code, http_status=status)


def _running_round(session: Session, round_id: str, peer: str, *, lock: bool = False) -> MatchRound:
    """The running round ``round_id`` that ``peer`` opened (locked until the transaction ends if
    ``lock``: its stats are about to be updated by one of several concurrent requests)."""
    found = session.get(MatchRound, round_id, with_for_update=lock)
    if found is None or found.peer != peer or found.role != "responder":
        raise _refuse("no matching round with that id was opened by this peer", "match_unknown_round", 404)
    if found.status != "running":
        raise _refuse("that matching round is already over", "match_round_closed", 409)
    return found


@handler("match.open")
def open_round(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("match.open", message.payload)
    peer, now = message.header.sender, node.clock()
    if fields["epoch"] not in acceptable_epochs(node):
        raise _refuse("the round names a key epoch this node does not use now", "encoding_wrong_epoch")
    try:
        layout = Layout.from_dict(fields["layout"])
    except MalformedError as e:
        raise _refuse("the round's encoding layout is malformed", "encoding_wrong_layout") from e
    if layout != pairing(node, peer, fields["epoch"]).layout:
        raise _refuse("the round's encoding layout differs from this node's", "encoding_wrong_layout")
    _check_unit(node, fields["mode"], fields["unit"], peer)
    with node.db.transaction() as session:
        if session.get(MatchRound, fields["round_id"]) is not None:
            raise _refuse("a round with that id was already opened", "match_round_exists", 409)
        recent = session.execute(
            select(func.count())
            .select_from(MatchRound)
            .where(MatchRound.peer == peer, MatchRound.started_at > now - DAY)
        ).scalar_one()
        if recent >= node.settings.match_max_rounds_per_day:
            raise _refuse(
                f"the peer already started {recent} rounds today; this node allows "
                f"{node.settings.match_max_rounds_per_day}",
                "match_round_limit",
                429,
            )
        store.abandon_running(session, peer, role="responder", now=now)
        records = count_eligible(session)
        session.add(
            MatchRound(
                round_id=fields["round_id"],
                peer=peer,
                role="responder",
                mode=fields["mode"],
                unit=fields["unit"] or None,
                number=fields["number"],
                epoch=fields["epoch"],
                status="running",
                stage="opened",
                started_at=now,
                stats={"peer_records": fields["record_count"], "own_records": records},
            )
        )
    return "match.opened", {"round_id": fields["round_id"], "record_count": records}


def _round_of_session(session: Session, session_id: bytes, peer: str) -> tuple[MatchRound, int, int]:
    """The running round of ``peer`` and the bucket this PSI session id belongs to (SPEC 12.2),
    locked until the transaction ends."""
    rounds = session.scalars(
        select(MatchRound)
        .where(MatchRound.peer == peer, MatchRound.role == "responder", MatchRound.status == "running")
        .with_for_update()
    )
    for found in rounds:
        stats = found.stats or {}
        buckets = messages.psi_buckets(stats.get("peer_records", 0), stats.get("own_records", 0))
        for index in range(buckets):
            if messages.psi_session_id(found.round_id, index) == session_id:
                return found, index, buckets
    raise _refuse("no running round of this peer has that PSI session", "match_unknown_round", 404)


def _check_unit(node: NodeContext, mode: str, unit: str, peer: str) -> None:
    """In linkage-unit mode the unit must be a third member with that role; in direct mode there is none."""
    if mode == "direct":
        if unit:
            raise _refuse("a direct round names no linkage unit", "invalid_payload")
        return
    member = current_directory(node, now=node.clock()).member(unit)
    if member is None or unit in (node.node_id, peer) or "linkage-unit" not in member.roles:
        raise _refuse("the round's linkage unit is not a third member with that role", "unknown_linkage_unit")


def _round_buckets(
    node: NodeContext, round_id: str, keyed: Pairing, buckets: int
) -> list[local.SelectorTable]:
    """Own selectors of a round split into its PSI buckets, computed once per process and round."""
    with _TABLES_LOCK:  # a round's sessions may arrive at once in two threads
        tables: dict[str, list[local.SelectorTable]] = node.cache.setdefault("psi_round_tables", {})
        if round_id not in tables:
            with node.db.read() as session:
                persons = eligible(session)
            table = local.selector_table(*local.load_features(node, persons))
            tables.clear()  # one round at a time per peer; keep only the latest
            tables[round_id] = local.split(table, keyed, buckets)
        return tables[round_id]


@handler("psi.request")
@gc_paused_call
def psi_request(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    """Answer one PSI session of a round. The session and its selectors are claimed against the
    round's allowance in one locked transaction before any work, so requests sent at once (a
    round's buckets, or a hostile peer's copies) can never together exceed it."""
    peer, now = message.header.sender, node.clock()
    request = psi.parse_request(message.payload, max_points=node.settings.psi_max_points)
    session_hex = request.session_id.hex()
    with node.db.transaction() as session:
        found, index, buckets = _round_of_session(session, request.session_id, peer)
        _claim_session(node, session, found, request, index=index, now=now)
        keyed = pairing(node, peer, found.epoch)
        declared = int((found.stats or {})["own_records"])
        round_id = found.round_id
    try:
        table = _round_buckets(node, round_id, keyed, buckets)[index]
        started = time.monotonic()
        scalar = psi.new_scalar(node.random_bytes(psi.SCALAR_SEED_SIZE))
        seed = node.random_bytes(psi.SHUFFLE_SEED_SIZE)
        answer = responder_answer(
            request,
            table.values,
            scalar=scalar,
            shuffle_seed=seed,
            workers=node.settings.match_workers or None,
        )
        del scalar
        response = answer.response(request, record_count=declared)
    except ProtocolError:  # points outside the group: nothing was answered, the claim is undone
        with node.db.transaction() as session:
            _release_session(session, round_id, session_hex, len(request.points))
        raise
    except BaseException:  # the claim stays spent: a failure must not give selectors back to retry
        with node.db.transaction() as session:
            session.execute(
                update(PsiSession).where(PsiSession.session_id == session_hex).values(status="failed")
            )
        raise
    with node.db.transaction() as session:
        claimed = session.get(PsiSession, session_hex)
        assert claimed is not None
        claimed.status, claimed.shuffle_seed = "answered", seed
        claimed.owners = [[list(pair) for pair in holders] for holders in table.owners]
        current = session.scalars(
            select(MatchRound).where(MatchRound.round_id == round_id).with_for_update()
        ).one()
        previous = current.stats or {}
        store.update_round(session, round_id, stage="psi", stats={
            "psi_own_selectors": previous.get("psi_own_selectors", 0) + len(answer.blinded),
            "psi_seconds": round(previous.get("psi_seconds", 0) + time.monotonic() - started, 3),
        })  # fmt: skip
        exchange_log.append(
            session,
            time=now,
            kind="psi_session",
            direction="in",
            peer=peer,
            message_id=message.header.id,
            message_type="psi.request",
            outcome="answered",
            detail={"peer_selectors": len(request.points), "own_selectors": len(answer.blinded)},
        )
    return "psi.response", response.to_payload()


def _release_session(session: Session, round_id: str, session_hex: str, points: int) -> None:
    """Undo :func:`_claim_session` for a request refused as a whole."""
    session.execute(delete(PsiSession).where(PsiSession.session_id == session_hex))
    found = session.get(MatchRound, round_id, with_for_update=True)
    if found is not None:
        spent = int((found.stats or {}).get("psi_peer_selectors", 0))
        store.update_round(session, round_id, stats={"psi_peer_selectors": max(0, spent - points)})


def _claim_session(
    node: NodeContext, session: Session, found: MatchRound, request: psi.PSIRequest, *, index: int, now: int
) -> None:
    """Check the request against the node's limits and the round's allowance, then record the
    session as being answered and its selectors as spent (``found`` is locked by the caller)."""
    peer, session_hex = found.peer, request.session_id.hex()
    if session.get(PsiSession, session_hex) is not None:
        raise _refuse("this PSI session was already answered", "psi_session_used", 409)
    used = session.execute(
        select(func.count(func.distinct(PsiSession.round_id))).where(
            PsiSession.peer == peer,
            PsiSession.created_at > now - DAY,
            PsiSession.round_id != found.round_id,
        )
    ).scalar_one()
    stats = found.stats or {}
    declared_by_peer = int(stats.get("peer_records", 0))
    psi.check_request_limits(
        request,
        selectors_per_record=node.settings.psi_selectors_per_record,
        sessions_used=used,
        max_sessions=node.settings.match_max_rounds_per_day,
        record_cap=declared_by_peer,
    )
    total = int(stats.get("psi_peer_selectors", 0)) + len(request.points)
    allowance = node.settings.psi_selectors_per_record * min(request.record_count, declared_by_peer)
    if total > allowance:  # the round's sessions together stay within the same allowance
        raise psi.LimitError(
            f"{total} selectors in this round exceed the allowance of {allowance}",
            code=psi.TOO_MANY_SELECTORS,
        )
    session.add(
        PsiSession(
            session_id=session_hex,
            peer=peer,
            round_id=found.round_id,
            bucket=index,
            created_at=now,
            status="answering",
            request_count=len(request.points),
        )
    )
    store.update_round(session, found.round_id, stage="psi", stats={"psi_peer_selectors": total})


@handler("psi.result")
@gc_paused_call
def psi_result(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    peer = message.header.sender
    with node.db.transaction() as session:
        state = session.get(PsiSession, _session_hex(message.payload))
        if state is None or state.peer != peer or state.status != "answered" or state.owners is None:
            raise _refuse("no PSI session of this peer is waiting for a result", "psi_unknown_session", 404)
        found = _running_round(session, state.round_id, peer, lock=True)
        result = psi.parse_result(
            message.payload,
            session_id=bytes.fromhex(state.session_id),
            round=found.number,
            blinded_count=len(state.owners),
        )
        assert state.shuffle_seed is not None
        permutation = psi.shuffle_order(len(state.owners), seed=state.shuffle_seed)
        keyed = pairing(node, peer, found.epoch)
        holders = [state.owners[permutation[j]] for j in result.positions]
        handles = [
            [b64encode(h) for h in keyed.handles(sorted({ref for ref, _ in pair}))] for pair in holders
        ]
        state.status, state.owners, state.shuffle_seed = "resulted", None, None
        matched = int((found.stats or {}).get("psi_matched", 0)) + len(result.positions)
        store.update_round(session, found.round_id, stage="psi", stats={"psi_matched": matched})
    return "psi.handles", {"session_id": result.session_id.hex(), "handles": handles}


def _session_hex(payload: Any) -> str:
    value = payload.get("session_id") if isinstance(payload, dict) else None
    if not isinstance(value, str) or not messages.HEX32_RE.fullmatch(value):
        raise MalformedError("psi.result.session_id: expected 32 lowercase hex digits", code="psi_malformed")
    return value


@handler("encodings.request")
@gc_paused_call
def encodings_request(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("encodings.request", message.payload)
    peer, page = message.header.sender, fields["page"]
    with node.db.transaction() as session:
        found = _running_round(session, fields["round_id"], peer)
        if fields["epoch"] != found.epoch:
            raise _refuse("the request names another key epoch than its round", "encoding_wrong_epoch")
        keyed = pairing(node, peer, found.epoch)
        work = dict(found.work or {})
        if page == 0 and "send" not in work:
            work = _plan_sending(session, keyed, fields["state"])
            found.work = work  # written once: the plan of a large register is megabytes
        elif page > int((found.stats or {}).get("encodings_pages", 0)) or "send" not in work:
            raise _refuse("encodings are sent page by page, from page 0", "encoding_bad_page", 409)
        round_id = found.round_id
    send: list[str] = work["send"]
    wanted = send[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    with node.db.read() as session:  # read once: the features and the record of what was sent agree
        hashes = content_hashes(session, wanted)
    refs, feats = local.load_features(node, [Eligible(ref, hashes[ref]) for ref in wanted if ref in hashes])
    batch = local.encode_persons(keyed, refs, feats)
    last = (page + 1) * PAGE_ROWS >= len(send)
    with node.db.transaction() as session:
        store.record_sent(session, keyed, refs, batch, hashes=hashes)
        current = _running_round(session, round_id, peer, lock=True)
        stats = {
            "encodings_sent": min(len(send), (page + 1) * PAGE_ROWS),
            "encodings_full": work["full"],
            "encodings_pages": max(int((current.stats or {}).get("encodings_pages", 0)), page + 1),
        }
        if last:
            stats["encodings_removed"] = len(work["removed"])
        store.update_round(session, round_id, stage="encodings", stats=stats)
    return "encodings.batch", {
        "round_id": fields["round_id"],
        "page": page,
        "last": last,
        "full": work["full"] and page == 0,
        "removed": work["removed"] if page == 0 else [],
        "encodings": batch_to_payload(batch),
    }


def _plan_sending(session: Session, keyed: Pairing, peer_state: str) -> dict[str, Any]:
    """Which persons to send this round: all if the peer's state differs from ours, else new and changed."""
    persons = eligible(session)
    sent = store.sent_state(session, keyed.peer, keyed.epoch)
    full = peer_state != store.sent_digest(sent)
    if full:
        session.execute(
            delete(EncodingSent).where(EncodingSent.peer == keyed.peer, EncodingSent.epoch == keyed.epoch)
        )
        sent = {}
    held = {p.person_ref: p.content_hash for p in persons}
    by_ref = {row.person_ref: row for row in sent.values()}
    send = [ref for ref, digest in held.items() if ref not in by_ref or by_ref[ref].content_hash != digest]
    gone = [row.handle for row in sent.values() if row.person_ref not in held]
    if gone:
        store.forget_sent(session, keyed, gone)
    return {
        "send": send,
        "removed": [b64encode(h) for h in gone],
        "full": full,
    }


@handler("encodings.forward")
@gc_paused_call
def forward_encodings(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    """Linkage-unit mode: send every eligible person's encoding to the round's unit, page by page."""
    from node.matching.unit import send_encodings

    fields = messages.check("encodings.forward", message.payload)
    peer = message.header.sender
    with node.db.transaction() as session:
        found = _running_round(session, fields["round_id"], peer)
        if found.mode != "linkage-unit" or found.unit != fields["unit"]:
            raise _refuse("this round does not use that linkage unit", "unknown_linkage_unit")
        if (found.stats or {}).get("forwarded") is not None:
            raise _refuse("this round's encodings were already forwarded", "encodings_forwarded", 409)
        store.update_round(session, found.round_id, stage="encodings", stats={"forwarded": 0})
        keyed, round_id, unit = pairing(node, peer, found.epoch), found.round_id, fields["unit"]
        persons = eligible(session)
    refs, feats = local.load_features(node, persons)
    send_encodings(node, unit, round_id, keyed, refs, feats)
    with node.db.transaction() as session:
        store.update_round(session, round_id, stats={"forwarded": len(refs), "encodings_sent": len(refs)})
    return "encodings.forwarded", {"round_id": round_id, "rows": len(refs)}


def _owners(session: Session, node: NodeContext, found: MatchRound, handles: list[bytes]) -> dict[bytes, str]:
    """Own person behind each handle: those sent to the peer (direct) or to the unit (linkage-unit)."""
    if found.mode == "direct":
        return store.sent_owners(session, found.peer, found.epoch, handles)
    refs = [p.person_ref for p in eligible(session)]
    wanted = set(handles)
    by_handle = zip(pairing(node, found.peer, found.epoch).handles(refs), refs, strict=True)
    return {h: ref for h, ref in by_handle if h in wanted}


@handler("match.candidates")
@gc_paused_call
def candidates(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("match.candidates", message.payload)
    peer, now = message.header.sender, node.clock()
    with node.db.transaction() as session:
        found = _running_round(session, fields["round_id"], peer)
        handles = [c["handle"] for c in fields["candidates"]]
        owners = _owners(session, node, found, handles)
        unknown = sum(1 for h in handles if h not in owners)
        if unknown:
            raise _refuse(f"{unknown} candidates name a handle this node never sent", "match_unknown_handle")
        store.save_peer_candidates(session, peer, found.round_id, fields["candidates"], owners, now=now)
        counts = dict((found.stats or {}).get("candidates", {}))
        for c in fields["candidates"]:
            counts[c["band"]] = counts.get(c["band"], 0) + 1
        store.update_round(session, found.round_id, stage="candidates", stats={"candidates": counts})
        if fields["last"]:
            session.execute(
                update(MatchRound)
                .where(MatchRound.round_id == found.round_id)
                .values(status="done", stage="done", finished_at=now, work=None)
            )
    return "receipt", {}
