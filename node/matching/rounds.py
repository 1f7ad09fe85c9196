"""A matching round with one peer, run by the initiator (protocol/SPEC.md section 12).

Direct mode: this node opens the round, intersects exact selectors with the peer by PSI, fetches
the peer's new and changed encodings, compares them with its own, stores the candidates and sends
them to the peer under the same match ids. Each stage is timed; a failure marks the round failed
with its error code and leaves every match found before untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from node.context import NodeContext
from node.errors import NodeError, OperatorError, PeerRefusal
from node.matching import local, store
from node.matching.engine import Candidate, link
from node.matching.gcpause import gc_paused
from node.matching.pairing import Pairing, current_epoch, pairing, state_digest
from node.matching.people import eligible
from node.matching.unit import send_encodings
from node.services import exchange_log
from node.services.exchange import send_request
from node.services.psi_parallel import point_pool
from node.services.psi_session import initiator_matches, initiator_points
from node.storage.models.matching import MatchRound
from protocol import matching as messages
from protocol import psi
from protocol.canonical import b64encode
from protocol.encoding import EncodedBatch, batch_from_payload
from protocol.errors import MalformedError, ProtocolError

Progress = Callable[[str, int, int], None]
STAGES = ("open", "features", "psi", "encodings", "encode", "compare", "send")


@dataclass
class Round:
    """What one round did: counts and seconds per stage (never personal data)."""

    round_id: str
    peer: str
    number: int
    epoch: int
    unit: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "round_id": self.round_id,
            "peer": self.peer,
            "number": self.number,
            "epoch": self.epoch,
            "mode": "linkage-unit" if self.unit else "direct",
            "unit": self.unit,
            **self.stats,
            "seconds": {**self.seconds, "total": round(sum(self.seconds.values()), 3)},
        }


def run_round(
    node: NodeContext, peer_id: str, *, unit: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Run one round with ``peer_id`` now and return its summary: direct mode, or through the
    linkage unit ``unit`` (a third member that compares without the pair key).

    Raises OperatorError (unknown peer), TransportError, RemoteRefusal (the peer refused a step)
    or PeerRefusal (the peer answered something invalid); the round is then marked failed.
    """
    from node.jobs import round_lock

    keyed = pairing(node, peer_id, current_epoch(node))
    try:
        with round_lock(node.settings.home, peer_id), gc_paused():
            return _locked_round(node, keyed, unit, progress)
    except NodeError as e:
        if e.code == "locked":
            raise OperatorError(
                f"a matching round with {peer_id} is already running on this node", code="match_round_running"
            ) from e
        raise


def _locked_round(
    node: NodeContext, keyed: Pairing, unit: str | None, progress: Progress | None
) -> dict[str, Any]:
    current = _start(node, keyed, unit)
    try:
        _run(node, keyed, current, progress)
    except (NodeError, ProtocolError) as e:
        _finish(node, current, status="failed", code=e.code)
        raise
    except Exception:
        _finish(node, current, status="failed", code="internal_error")
        raise
    _finish(node, current, status="done", code=None)
    return current.summary()


def _start(node: NodeContext, keyed: Pairing, unit: str | None) -> Round:
    now = node.clock()
    round_id = node.random_bytes(16).hex()
    with node.db.transaction() as session:
        store.abandon_running(session, keyed.peer, role="initiator", now=now)
        last = session.execute(
            select(func.max(MatchRound.number)).where(
                MatchRound.peer == keyed.peer, MatchRound.role == "initiator"
            )
        ).scalar_one()
        number = (last or 0) + 1
        session.add(
            MatchRound(
                round_id=round_id,
                peer=keyed.peer,
                role="initiator",
                mode="linkage-unit" if unit else "direct",
                unit=unit,
                number=number,
                epoch=keyed.epoch,
                status="running",
                stage="open",
                started_at=now,
            )
        )
    return Round(round_id=round_id, peer=keyed.peer, number=number, epoch=keyed.epoch, unit=unit)


def _finish(node: NodeContext, current: Round, *, status: str, code: str | None) -> None:
    with node.db.transaction() as session:
        found = session.get(MatchRound, current.round_id)
        if found is not None:
            found.status, found.finished_at, found.error_code = status, node.clock(), code
            found.stage = "done" if status == "done" else found.stage
            found.stats = current.summary()


@contextmanager
def _stage(node: NodeContext, current: Round, name: str, progress: Progress | None) -> Iterator[None]:
    """Record the stage on the round (``palermo match rounds`` shows it), report it, and time it."""
    with node.db.transaction() as session:
        store.update_round(session, current.round_id, stage=name, stats={})
    if progress:
        progress(name, 0, 1)
    started = time.monotonic()
    yield
    current.seconds[name] = round(time.monotonic() - started, 3)


def _run(node: NodeContext, keyed: Pairing, current: Round, progress: Progress | None) -> None:
    timeout = node.settings.match_timeout_seconds
    with _stage(node, current, "features", progress):
        with node.db.read() as session:
            persons = eligible(session)
        refs, feats = local.load_features(node, persons)
    current.stats["own_records"] = len(refs)
    with _stage(node, current, "open", progress):
        opened = send_request(node, keyed.peer, "match.open", {
            "round_id": current.round_id, "number": current.number,
            "mode": "linkage-unit" if current.unit else "direct", "unit": current.unit or "",
            "epoch": keyed.epoch, "layout": keyed.layout.to_dict(), "record_count": len(refs),
        }, timeout=timeout)  # fmt: skip
        reply = _reply(opened.reply.payload, "match.opened")
        if reply["round_id"] != current.round_id:
            raise PeerRefusal("the peer opened another round", code="match_round_mismatch", http_status=502)
        current.stats["peer_records"] = reply["record_count"]
    with _stage(node, current, "psi", progress):
        exact = _psi(node, keyed, current, refs, feats, peer_records=reply["record_count"])
    found = (
        _through_unit(node, keyed, current, refs, feats, exact, progress)
        if current.unit
        else _direct(node, keyed, current, refs, feats, exact, progress)
    )
    with _stage(node, current, "send", progress):
        _send_candidates(node, keyed, current, found)


# (own person, peer's row handle, candidate fields as sent: band, weight, probability, evidence)
Found = tuple[str, bytes, dict[str, Any]]


def _direct(
    node: NodeContext,
    keyed: Pairing,
    current: Round,
    refs: Sequence[str],
    feats: Sequence[Any],
    exact: Sequence[tuple[str, bytes, str]],
    progress: Progress | None,
) -> list[Found]:
    """Direct mode: bring the peer's encodings up to date here and compare them with our own."""
    with ThreadPoolExecutor(1, thread_name_prefix="encode") as background:
        # Own rows are encoded while the peer prepares its pages: this process mostly waits then.
        encoding = background.submit(local.encode_persons, keyed, refs, feats)
        with _stage(node, current, "encodings", progress):
            _fetch_encodings(node, keyed, current, progress)
        with _stage(node, current, "encode", progress):
            own = encoding.result()
    with _stage(node, current, "compare", progress), node.db.read() as session:
        theirs = store.peer_batch(session, keyed.peer, keyed.epoch, keyed.layout)
        found = _compare(node, keyed, current, own, theirs, refs, exact, progress)
    return [(refs[c.a], bytes(theirs.handles[c.b]), store.wire_fields(c)) for c in found]


def _through_unit(
    node: NodeContext,
    keyed: Pairing,
    current: Round,
    refs: Sequence[str],
    feats: Sequence[Any],
    exact: Sequence[tuple[str, bytes, str]],
    progress: Progress | None,
) -> list[Found]:
    """Linkage-unit mode (SPEC 12.10): both sides send encodings to the unit, which compares."""
    assert current.unit is not None
    unit, timeout = current.unit, node.settings.match_timeout_seconds
    own_handles = keyed.handles(list(refs))
    by_ref = dict(zip(refs, own_handles, strict=True))
    pairs = sorted({(by_ref[ref], handle, kind) for ref, handle, kind in exact if ref in by_ref})
    with _stage(node, current, "encodings", progress):
        send_request(node, unit, "linkage.open", {
            "round_id": current.round_id, "peer": keyed.peer, "epoch": keyed.epoch,
            "layout": keyed.layout.to_dict(), "exact": [[b64encode(a), b64encode(b), k] for a, b, k in pairs],
        }, timeout=timeout)  # fmt: skip
        forwarded = send_request(
            node,
            keyed.peer,
            "encodings.forward",
            {"round_id": current.round_id, "unit": unit},
            timeout=timeout,
        )
        current.stats["peer_encodings"] = _reply(forwarded.reply.payload, "encodings.forwarded")["rows"]
        send_encodings(node, unit, current.round_id, keyed, refs, feats)
        current.stats["encodings_sent"] = len(refs)
    with _stage(node, current, "compare", progress):
        compared = send_request(
            node, unit, "linkage.compare", {"round_id": current.round_id}, timeout=timeout
        )
        reply = _reply(compared.reply.payload, "linkage.candidates")
    own_by_handle = dict(zip(own_handles, refs, strict=True))
    if reply["round_id"] != current.round_id or any(c["a"] not in own_by_handle for c in reply["candidates"]):
        raise PeerRefusal("the unit's candidates name rows this node did not send", code="match_unknown_handle",
                          http_status=502)  # fmt: skip
    bands = {band: 0 for band in messages.BANDS}
    for c in reply["candidates"]:
        bands[c["band"]] += 1
    current.stats.update(candidates=bands, exact_pairs=len(pairs))
    return [
        (own_by_handle[c["a"]], c["b"], {k: c[k] for k in ("band", "weight", "probability", "evidence")})
        for c in reply["candidates"]
    ]


def _reply(payload: Any, type_name: str) -> dict[str, Any]:
    try:
        return messages.check(type_name, payload)
    except MalformedError as e:
        raise PeerRefusal(
            f"the peer's {type_name} is malformed", code="invalid_payload", http_status=502
        ) from e


# ---- exact selectors ---------------------------------------------------------------------------------


def _psi(
    node: NodeContext,
    keyed: Pairing,
    current: Round,
    refs: Sequence[str],
    feats: Sequence[Any],
    *,
    peer_records: int,
) -> list[tuple[str, bytes, str]]:
    """Intersect exact selectors with the peer, one PSI session per bucket (SPEC 12.2).

    Returns (own person, peer handle, kind) per matched selector holder."""
    table = local.selector_table(refs, feats)
    buckets = messages.psi_buckets(len(refs), peer_records)
    current.stats.update(
        psi_own_selectors=len(table.values), psi_peer_selectors=0, psi_matched=0, psi_sessions=0
    )
    parts = [(index, part) for index, part in enumerate(local.split(table, keyed, buckets)) if part.values]
    lock = threading.Lock()

    def session(index: int, part: local.SelectorTable) -> list[tuple[str, bytes, str]]:
        session_id = messages.psi_session_id(current.round_id, index)
        return _psi_session(node, keyed, current, part, session_id, len(refs), peer_records, pool, lock)

    # Two sessions in flight: while the peer answers one, this node blinds the next, so neither
    # side's single-threaded steps (messages, checks, storage) leave a core idle.
    with point_pool(node.settings.match_workers or None) as pool, ThreadPoolExecutor(2) as sessions:
        found = list(sessions.map(lambda item: session(*item), parts))
    return [pair for pairs in found for pair in pairs]


def _psi_session(
    node: NodeContext,
    keyed: Pairing,
    current: Round,
    table: local.SelectorTable,
    session_id: bytes,
    records: int,
    peer_records: int,
    pool: Any,
    lock: threading.Lock,
) -> list[tuple[str, bytes, str]]:
    timeout = node.settings.match_timeout_seconds
    scalar = psi.new_scalar(node.random_bytes(psi.SCALAR_SEED_SIZE))
    sent = initiator_points(
        table.values, session_id=session_id, scalar=scalar,
        shuffle_seed=node.random_bytes(psi.SHUFFLE_SEED_SIZE), pool=pool,
    )  # fmt: skip
    request = psi.build_request(
        session_id=session_id, round=current.number, record_count=records, points=sent.points
    )
    answered = send_request(node, keyed.peer, "psi.request", request.to_payload(), timeout=timeout)
    try:
        response = psi.parse_response(
            answered.reply.payload, request=request, max_points=node.settings.psi_max_points
        )
        psi.check_response_limits(
            response, selectors_per_record=node.settings.psi_selectors_per_record, record_cap=peer_records
        )
        matched = initiator_matches(response, sent, scalar=scalar, pool=pool)
    except ProtocolError as e:
        raise PeerRefusal(
            f"the peer's PSI response is invalid: {e.message}", code=e.code, http_status=502
        ) from e
    del scalar
    result = psi.build_result(response, positions=sorted(matched.theirs))
    with node.db.transaction() as session:
        exchange_log.append(
            session,
            time=node.clock(),
            kind="psi_session",
            direction="out",
            peer=keyed.peer,
            message_id=answered.request.header.id,
            message_type="psi.request",
            outcome="answered",
            detail={"own_selectors": len(table.values), "peer_selectors": len(response.blinded)},
        )
    with lock:
        current.stats["psi_peer_selectors"] += len(response.blinded)
        current.stats["psi_matched"] += len(matched.own)
        current.stats["psi_sessions"] += 1
    handed = send_request(node, keyed.peer, "psi.result", result.to_payload(), timeout=timeout)
    reply = _reply(handed.reply.payload, "psi.handles")
    if reply["session_id"] != session_id.hex() or len(reply["handles"]) != len(result.positions):
        raise PeerRefusal(
            "the peer's handles do not answer the PSI result", code="psi_bad_handles", http_status=502
        )
    by_position = dict(zip(result.positions, reply["handles"], strict=True))
    out: list[tuple[str, bytes, str]] = []
    for own_index, position in zip(matched.own, matched.theirs, strict=True):
        for ref, kind in table.owners[own_index]:
            out.extend((ref, handle, kind) for handle in by_position[position])
    return out


# ---- encodings -----------------------------------------------------------------------------------------


def _fetch_encodings(node: NodeContext, keyed: Pairing, current: Round, progress: Progress | None) -> None:
    """Bring what is held of the peer's encodings up to date, page by page; the next page is asked
    for while this one is stored."""
    with node.db.transaction() as session:
        store.drop_other_epochs(session, keyed.peer, keyed.epoch)
        state = state_digest(store.peer_entries(session, keyed.peer, keyed.epoch))

    def fetch(page: int) -> tuple[dict[str, Any], EncodedBatch]:
        payload = {"round_id": current.round_id, "epoch": keyed.epoch, "page": page, "state": state}
        answered = send_request(
            node, keyed.peer, "encodings.request", payload, timeout=node.settings.match_timeout_seconds
        )
        reply = _reply(answered.reply.payload, "encodings.batch")
        if reply["round_id"] != current.round_id or reply["page"] != page:
            raise PeerRefusal("the peer sent another page", code="encoding_bad_page", http_status=502)
        try:
            return reply, batch_from_payload(reply["encodings"], epoch=keyed.epoch, layout=keyed.layout)
        except ProtocolError as e:
            raise PeerRefusal(
                f"the peer's encodings are invalid: {e.message}", code=e.code, http_status=502
            ) from e

    received = removed = page = 0
    full = False
    with ThreadPoolExecutor(1, thread_name_prefix="encodings") as fetcher:
        pending = fetcher.submit(fetch, 0)
        while True:
            reply, batch = pending.result()
            if not reply["last"]:
                pending = fetcher.submit(fetch, page + 1)
            with node.db.transaction() as session:
                store.apply_batch(
                    session, keyed.peer, keyed.epoch, batch, removed=reply["removed"], full=reply["full"]
                )
            received, removed = received + len(batch), removed + len(reply["removed"])
            full = full or reply["full"]
            if progress:
                progress("encodings", received, received + (0 if reply["last"] else 1))
            if reply["last"]:
                break
            page += 1
    current.stats.update(encodings_received=received, encodings_removed=removed, encodings_full=full)


# ---- comparison and candidates --------------------------------------------------------------------------


def _compare(
    node: NodeContext,
    keyed: Pairing,
    current: Round,
    own: EncodedBatch,
    theirs: EncodedBatch,
    refs: Sequence[str],
    exact: Sequence[tuple[str, bytes, str]],
    progress: Progress | None,
) -> list[Candidate]:
    """Link own rows (in ``refs`` order) with the peer's, with the PSI matches as exact evidence."""
    own_rows = {ref: i for i, ref in enumerate(refs)}
    their_rows = {bytes(h): i for i, h in enumerate(theirs.handles)}
    pairs = sorted(
        {(own_rows[ref], their_rows[handle], kind) for ref, handle, kind in exact if handle in their_rows}
    )
    current.stats["exact_pairs"] = len(pairs)
    current.stats["peer_encodings"] = len(theirs)
    result = link(
        own,
        theirs,
        blocking_seed=keyed.blocking_seed,
        exact=pairs,
        workers=node.settings.match_workers or 2,
        progress=progress,
    )
    bands: dict[str, int] = {band: 0 for band in messages.BANDS}
    for c in result.candidates:
        bands[c.band] += 1
    current.stats["candidates"] = bands
    current.stats["candidate_pairs"] = result.pairs_blocked
    current.stats["comparisons"] = result.comparisons
    return list(result.candidates)


def _send_candidates(node: NodeContext, keyed: Pairing, current: Round, found: Sequence[Found]) -> None:
    """Store the candidates under stable match ids, then send them to the peer in parts.

    A pair found in an earlier round keeps its match id, so a round that failed while sending is
    repaired by the next one.
    """
    with node.db.read() as session:
        known = store.known_matches(session, keyed.peer)
    rows: list[tuple[str, bytes, dict[str, Any]]] = []
    for ref, handle, fields in found:
        match_id = known.get((ref, handle)) or node.random_bytes(16).hex()
        rows.append((ref, handle, {"match_id": match_id, "handle": b64encode(handle), **fields}))
    with node.db.transaction() as session:
        store.save_own_candidates(session, keyed.peer, current.round_id, rows, now=node.clock())
    size = messages.MAX_CANDIDATES
    parts = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
    for number, part in enumerate(parts):
        payload = {
            "round_id": current.round_id,
            "part": number,
            "last": number == len(parts) - 1,
            "candidates": [c for _, _, c in part],
        }
        send_request(
            node, keyed.peer, "match.candidates", payload, timeout=node.settings.match_timeout_seconds
        )
