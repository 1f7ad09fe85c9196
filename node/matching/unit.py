"""A linkage unit: a third member that compares two nodes' encodings without holding their key (SPEC 12.10).

The initiator opens the round here (naming its peer and the exact pairs PSI found, by row
handle), both parties send their encodings page by page, and the initiator asks for the
comparison. The unit answers with candidate pairs by row handle and deletes the encodings at
once. It never sees a selector, a name or a key; it learns the two set sizes, the exact pairs
by opaque handle and the candidates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import PeerRefusal
from node.matching import local, store
from node.matching.engine import link
from node.matching.features import Features
from node.matching.gcpause import gc_paused_call
from node.matching.pairing import Pairing
from node.services.directory import current_directory
from node.services.exchange import send_request
from node.services.handlers import handler
from node.storage.models.matching import LinkageRound, LinkageRow
from protocol import matching as messages
from protocol.canonical import b64encode
from protocol.encoding import MAX_ROWS, Layout, batch_from_payload, batch_to_payload
from protocol.envelope import Message
from protocol.errors import MalformedError, ProtocolError

UNIT_ROLE = "linkage-unit"


def _refuse(message: str, code: str, status: int = 422) -> PeerRefusal:
    return PeerRefusal(message, code=code, http_status=status)


@handler("linkage.open")
def open_linkage(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("linkage.open", message.payload)
    initiator, now = message.header.sender, node.clock()
    directory = current_directory(node, now=now)
    own = directory.member(node.node_id)
    if own is None or UNIT_ROLE not in own.roles:
        raise _refuse("this node is not a linkage unit of the federation", "not_a_linkage_unit", 403)
    peer = directory.member(fields["peer"])
    if peer is None or fields["peer"] in (initiator, node.node_id):
        raise _refuse("the round's other party is not another member", "unknown_peer", 404)
    try:
        Layout.from_dict(fields["layout"])
    except MalformedError as e:
        raise _refuse("the round's encoding layout is malformed", "encoding_wrong_layout") from e
    with node.db.transaction() as session:
        if session.get(LinkageRound, fields["round_id"]) is not None:
            raise _refuse("a round with that id was already opened", "match_round_exists", 409)
        session.add(
            LinkageRound(
                round_id=fields["round_id"], initiator=initiator, peer=fields["peer"], epoch=fields["epoch"],
                layout=fields["layout"], exact=message.payload["exact"], status="open",
                next_page={"a": 0, "b": 0}, created_at=now,
            )
        )  # fmt: skip
    return "linkage.opened", {"round_id": fields["round_id"]}


def _open_round(session: Session, round_id: str, sender: str) -> tuple[LinkageRound, str]:
    found = session.get(LinkageRound, round_id)
    if found is None or sender not in (found.initiator, found.peer):
        raise _refuse("no linkage round with that id names this node", "match_unknown_round", 404)
    if found.status != "open":
        raise _refuse("that linkage round is already over", "match_round_closed", 409)
    return found, "a" if sender == found.initiator else "b"


@handler("linkage.encodings")
@gc_paused_call
def encodings(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("linkage.encodings", message.payload)
    with node.db.transaction() as session:
        found, party = _open_round(session, fields["round_id"], message.header.sender)
        expected = found.next_page.get(party)
        if expected == "done" or fields["page"] != expected:
            raise _refuse("encodings are sent page by page, once, from page 0", "encoding_bad_page", 409)
        try:
            batch = batch_from_payload(
                fields["encodings"], epoch=found.epoch, layout=Layout.from_dict(found.layout)
            )
        except ProtocolError as e:
            raise _refuse(f"the encodings are invalid: {e.message}", e.code) from e
        rows = store.batch_rows(batch, round_id=found.round_id, party=party)
        known = set(
            session.scalars(
                select(LinkageRow.handle).where(
                    LinkageRow.round_id == found.round_id,
                    LinkageRow.party == party,
                    LinkageRow.handle.in_([r["handle"] for r in rows]),
                )
            )
        ) if rows else set()  # fmt: skip
        if known:
            raise _refuse("a row handle was already sent in this round", "encoding_duplicate_handle", 409)
        for start in range(0, len(rows), store.CHUNK):
            session.execute(insert(LinkageRow), rows[start : start + store.CHUNK])
        found.next_page = {**found.next_page, party: "done" if fields["last"] else expected + 1}
    return "receipt", {}


@handler("linkage.compare")
@gc_paused_call
def compare(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    fields = messages.check("linkage.compare", message.payload)
    with node.db.read() as session:
        found, party = _open_round(session, fields["round_id"], message.header.sender)
        if party != "a":
            raise _refuse("only the round's initiator asks for the comparison", "not_the_initiator", 403)
        if found.next_page != {"a": "done", "b": "done"}:
            raise _refuse("both parties' encodings have not all arrived", "encodings_incomplete", 409)
        layout, epoch = Layout.from_dict(found.layout), found.epoch
        batches = [store.rows_to_batch(_rows(session, found.round_id, p), layout, epoch) for p in ("a", "b")]
        exact = list(found.exact or [])
    rows_a = {bytes(h): i for i, h in enumerate(batches[0].handles)}
    rows_b = {bytes(h): i for i, h in enumerate(batches[1].handles)}
    pairs = sorted(
        {(rows_a[a], rows_b[b], kind) for a, b, kind in (messages.EXACT_PAIR(e, "exact") for e in exact)
         if a in rows_a and b in rows_b}
    )  # fmt: skip
    seed = hashlib.sha256(b"palermo/linkage-unit/blocking" + bytes.fromhex(fields["round_id"])).digest()
    result = link(
        batches[0], batches[1], blocking_seed=seed, exact=pairs, workers=node.settings.match_workers or 2
    )
    candidates = [
        {
            "a": b64encode(bytes(batches[0].handles[c.a])),
            "b": b64encode(bytes(batches[1].handles[c.b])),
            **store.wire_fields(c),
        }
        for c in result.candidates
    ]
    with node.db.transaction() as session:
        session.execute(delete(LinkageRow).where(LinkageRow.round_id == fields["round_id"]))
        done = session.get(LinkageRound, fields["round_id"])
        if done is not None:
            done.status, done.finished_at, done.exact = "done", node.clock(), None
            done.stats = {"rows_a": len(batches[0]), "rows_b": len(batches[1]), "exact_pairs": len(pairs),
                          "candidates": result.by_band(), "pairs_compared": result.pairs_blocked}  # fmt: skip
    return "linkage.candidates", {"round_id": fields["round_id"], "candidates": candidates}


def send_encodings(
    node: NodeContext,
    unit: str,
    round_id: str,
    keyed: Pairing,
    refs: Sequence[str],
    feats: Sequence[Features],
) -> None:
    """Send a party's encodings of ``refs`` to the linkage unit, page by page (either party uses it)."""
    pages = max(1, -(-len(refs) // MAX_ROWS))
    for page in range(pages):
        part = slice(page * MAX_ROWS, (page + 1) * MAX_ROWS)
        batch = local.encode_persons(keyed, refs[part], feats[part])
        payload = {
            "round_id": round_id,
            "page": page,
            "last": page == pages - 1,
            "encodings": batch_to_payload(batch),
        }
        send_request(node, unit, "linkage.encodings", payload, timeout=node.settings.match_timeout_seconds)


def _rows(session: Session, round_id: str, party: str) -> list[Any]:
    query = (
        select(LinkageRow.handle, LinkageRow.filters, LinkageRow.presence, LinkageRow.year)
        .where(LinkageRow.round_id == round_id, LinkageRow.party == party)
        .order_by(LinkageRow.handle)
    )
    return list(session.execute(query).all())
