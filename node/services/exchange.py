"""Receiving and sending envelopes: verification, replay checks, logging, dispatch.

Every envelope this node sends or receives, accepted or refused, is appended to the exchange
log (hashes and metadata only), in the same transaction as the first change made in acting on
it, or before. A received request is logged once its handler's outcome is known, as one entry.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import protocol.matching
import protocol.psi
import protocol.query.messages
import protocol.translog.witness  # noqa: F401  (register their message types)
from node.context import NodeContext
from node.errors import NodeError, OperatorError, PeerRefusal, RemoteRefusal, TransportError
from node.services import exchange_log
from node.services.channels import accept_incoming, next_outgoing_seq
from node.services.directory import current_directory
from node.services.handlers import handle_request
from protocol.canonical import b64encode, parse_json, sha256_hex
from protocol.directory import Member
from protocol.envelope import (
    Header,
    Message,
    ReplyRef,
    SealedEnvelope,
    SenderKeys,
    TimePolicy,
    open_envelope,
    seal,
)
from protocol.errors import ProtocolError, VerificationError
from protocol.messages import check_payload, message_type
from protocol.refusal import RefusalReceipt, sign_refusal, verify_refusal

log = logging.getLogger("palermo.exchange")
SEQUENCE_RETRIES = (
    10  # parallel requests to one peer (an analyst's queries, a round's PSI sessions) race for seqs
)

# HTTP status for each refusal code (protocol/SPEC.md, "Exchanges over HTTP").
REFUSAL_STATUS = {
    "malformed_envelope": 400,
    "unsupported_version": 400,
    "unknown_sender": 403,
    "wrong_recipient": 403,
    "decryption_failed": 403,
    "bad_signature": 403,
    "sender_mismatch": 403,
    "future_dated": 400,
    "expired_envelope": 400,
    "unknown_message_type": 422,
    "invalid_payload": 422,
    "unexpected_reply": 422,
    "replayed_message": 409,
    "sequence_regressed": 409,
    "directory_expired": 503,
    "no_directory": 503,
}


def _time_policy(node: NodeContext) -> TimePolicy:
    return TimePolicy(
        max_skew=node.settings.clock_skew_seconds,
        max_lifetime=max(3600, node.settings.envelope_lifetime_seconds),
    )


def _open(node: NodeContext, sealed: SealedEnvelope, member: Member, now: int) -> Message:
    """Decrypt and verify ``sealed`` with the keys the directory lists for ``member``."""
    return open_envelope(
        sealed,
        recipient_id=node.node_id,
        recipient_encryption_key=node.keys.encryption,
        sender=SenderKeys(verify_key=member.verify_key, encryption_key=member.public_key),
        now=now,
        policy=_time_policy(node),
    )


def _record_accepted(
    node: NodeContext, sealed: SealedEnvelope, message: Message, *, seq: int | None, reply_to: str = ""
) -> None:
    """Remember the message id (and, for a request, the channel's seq) and log it as accepted, atomically."""
    header = message.header
    with node.db.transaction() as session:
        _remember(session, node, header, seq=seq)
        _log_accepted(session, node=node, sealed=sealed, header=header, reply_to=reply_to)


def _remember(session: Session, node: NodeContext, header: Header, *, seq: int | None) -> None:
    """Steps 17-18 of protocol/SPEC.md 4.8 (raises PeerRefusal); the transaction is the caller's."""
    forget_after = header.expires + node.settings.clock_skew_seconds
    accept_incoming(session, peer=header.sender, message_id=header.id, seq=seq, forget_after=forget_after)


def _log_accepted(
    session: Session, *, node: NodeContext, sealed: SealedEnvelope, header: Header, reply_to: str = ""
) -> None:
    """Log an envelope received as accepted (``header`` is the verified one)."""
    detail = {"reply_to": reply_to} if reply_to else None
    _log_envelope(session, node, sealed, header, direction="in", outcome="accepted", detail=detail)


def _refusal(error: NodeError | ProtocolError) -> PeerRefusal:
    if isinstance(error, PeerRefusal):
        return error
    return PeerRefusal(error.message, code=error.code, http_status=REFUSAL_STATUS.get(error.code, 400))


def _log_refused(
    node: NodeContext, *, peer: str, envelope_hash: str, size: int, code: str, header: Header | None
) -> None:
    """Log a refused envelope. ``header`` only once its signature verified: then its id and type are
    the sender's, authenticated; before that only the clear ``peer`` it claims, its hash and size."""
    with node.db.transaction() as session:
        exchange_log.append(
            session,
            time=node.clock(),
            kind="envelope",
            direction="in",
            peer=peer,
            message_id=header.id if header else "",
            message_type=header.type if header else "",
            envelope_hash=envelope_hash,
            size=size,
            outcome="refused",
            code=code,
        )
    log.warning("envelope refused", extra={"peer": peer, "code": code, "envelope_hash": envelope_hash})


def receive(node: NodeContext, body: bytes) -> bytes:
    """Verify, log and act on a request envelope from a peer; return the reply's wire bytes.

    Raises PeerRefusal (with a stable code and HTTP status) for anything refused, by the checks or
    by the handler. The envelope gets one log entry: ``refused`` with that code, or ``accepted``,
    committed with the first unit of work the handler commits (else with the reply's entry), so
    nothing the handler changes is ever committed without it. A handler that committed work and
    then refused leaves both entries.
    """
    sealed, message = _checked_request(node, body)
    log_request = functools.partial(_log_accepted, node=node, sealed=sealed, header=message.header)
    try:
        handled = handle_request(node, message, log_request=log_request)
        reply, header = _seal_reply(node, message, sealed, handled.reply_type, handled.payload)
    except (NodeError, ProtocolError) as e:
        refusal = _refusal(e)
        _log_refused_request(node, body, sealed, message, refusal.code)
        raise _with_receipt(node, refusal, sealed) from e
    except Exception:  # the peer gets a 500 internal_error (node/app/errors.py): log that too
        _log_refused_request(node, body, sealed, message, "internal_error")
        raise
    with node.db.transaction() as session:
        if not handled.logged:
            log_request(session)
        _log_out(session, node, reply, header, outcome="sent", reply_to=sealed.hash)
    return reply.to_bytes()


def _checked_request(node: NodeContext, body: bytes) -> tuple[SealedEnvelope, Message]:
    """Steps 1-18 of protocol/SPEC.md 4.8, the replay state committed; a refusal is logged and raised."""
    sealed: SealedEnvelope | None = None
    message: Message | None = None
    try:
        sealed = SealedEnvelope.from_bytes(body)
        message = _open_request(node, sealed)  # verified: from here on, its header is the sender's
        _accept_request(node, message)
    except (NodeError, ProtocolError) as e:
        refusal = _refusal(e)
        if refusal.code == "malformed":
            refusal = PeerRefusal(refusal.message, code="malformed_envelope", http_status=400)
        _log_refused_request(node, body, sealed, message, refusal.code, verified=_verified_header(e))
        raise _with_receipt(node, refusal, sealed) from e
    return sealed, message


def _with_receipt(node: NodeContext, refusal: PeerRefusal, sealed: SealedEnvelope | None) -> PeerRefusal:
    """Sign a refusal receipt for an envelope addressed to this node (SPEC 5.7); others get none."""
    if sealed is not None and sealed.recipient == node.node_id:
        receipt = sign_refusal(
            node.node_id, sealed.hash, refusal.code, node.clock(), signing_key=node.keys.signing
        )
        refusal.receipt = receipt.to_dict()
    return refusal


def _log_refused_request(
    node: NodeContext,
    body: bytes,
    sealed: SealedEnvelope | None,
    message: Message | None,
    code: str,
    *,
    verified: Header | None = None,
) -> None:
    """``message`` is None until the signature verified: nothing inside an envelope is logged before.

    ``verified``: the signed header of an envelope refused after its signature verified.
    """
    _log_refused(
        node,
        peer=sealed.sender if sealed else "",
        envelope_hash=sealed.hash if sealed else "",
        size=len(body),
        code=code,
        header=message.header if message else verified,
    )


def _verified_header(error: Exception) -> Header | None:
    header = getattr(error, "verified_header", None)
    return header if isinstance(header, Header) else None


def _open_request(node: NodeContext, sealed: SealedEnvelope) -> Message:
    """Steps 3-13 of protocol/SPEC.md 4.8: the clear fields, the directory, decryption, signature."""
    now = node.clock()
    if sealed.recipient != node.node_id:
        raise PeerRefusal("envelope is addressed to another node", code="wrong_recipient", http_status=403)
    directory = current_directory(node, now=now)
    member = directory.member(sealed.sender)
    if member is None or sealed.sender == node.node_id:
        raise PeerRefusal(
            "the sender is not a member of this node's directory", code="unknown_sender", http_status=403
        )
    return _open(node, sealed, member, now)


def _accept_request(node: NodeContext, message: Message) -> None:
    """Steps 14-18: type, payload, request kind; then remember the id and the channel's seq.

    Logged only once the handler's outcome is known (``receive``): a refusal by the handler is then
    the envelope's one entry. The replay state is committed first, so no envelope is acted on twice.
    """
    header = message.header
    check_payload(header.type, message.payload)
    if message_type(header.type).kind != "request" or header.reply_to is not None:
        raise PeerRefusal(
            "a reply can only arrive in the response to its request", code="unexpected_reply", http_status=422
        )
    with node.db.transaction() as session:
        _remember(session, node, header, seq=header.seq)


def _seal_reply(
    node: NodeContext,
    request: Message,
    sealed_request: SealedEnvelope,
    reply_type: str,
    payload: dict[str, Any],
) -> tuple[SealedEnvelope, Header]:
    now = node.clock()
    peer = current_directory(node, now=now).member(request.header.sender)
    assert peer is not None  # verified in _open_request
    header = Header(
        id=node.random_bytes(16).hex(),
        type=reply_type,
        sender=node.node_id,
        recipient=request.header.sender,
        created=now,
        expires=now + node.settings.envelope_lifetime_seconds,
        seq=request.header.seq,
        reply_to=ReplyRef(id=request.header.id, hash=sealed_request.hash),
    )
    return _seal(node, Message(header=header, payload=payload), peer), header


def _seal(node: NodeContext, message: Message, peer: Member) -> SealedEnvelope:
    return seal(
        message,
        signing_key=node.keys.signing,
        sender_encryption_key=node.keys.encryption,
        recipient_encryption_key=peer.public_key,
        nonce=node.random_bytes(24),
    )


def _log_out(
    session: Any,
    node: NodeContext,
    sealed: SealedEnvelope,
    header: Header,
    *,
    outcome: str,
    code: str = "",
    reply_to: str = "",
    receipt: dict[str, Any] | None = None,
) -> None:
    """Log an envelope sent; a reply names the envelope hash of the request it answers (its receipt),
    a refused one the peer's signed refusal receipt when it sent one."""
    detail = {**({"reply_to": reply_to} if reply_to else {}), **(receipt or {})}
    _log_envelope(session, node, sealed, header, direction="out", outcome=outcome, code=code, detail=detail)


def _log_envelope(
    session: Any,
    node: NodeContext,
    sealed: SealedEnvelope,
    header: Header,
    *,
    direction: str,
    outcome: str,
    code: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    exchange_log.append(
        session,
        time=node.clock(),
        kind="envelope",
        direction=direction,
        peer=header.sender if direction == "in" else header.recipient,
        message_id=header.id,
        message_type=header.type,
        envelope_hash=sealed.hash,
        size=len(sealed.box),
        outcome=outcome,
        code=code,
        detail=detail or None,
    )


@dataclass(frozen=True)
class Exchange:
    """A request this node sent and the verified reply it got."""

    request: Message
    request_hash: str
    reply: Message
    reply_hash: str


def send_request(
    node: NodeContext,
    peer_id: str,
    type_name: str,
    payload: dict[str, Any],
    *,
    message_id: str | None = None,
    timeout: float | None = None,
) -> Exchange:
    """Sign, encrypt, log and POST a request to ``peer_id``; verify and log its reply.

    Raises OperatorError (unknown peer, invalid payload), TransportError (network),
    RemoteRefusal (the peer refused; ``code`` is the peer's code) or PeerRefusal (the reply is bad).
    A ``sequence_regressed`` refusal (another thread or process of this node sent concurrently) is
    retried, up to SEQUENCE_RETRIES times in all.
    """
    mtype = message_type(type_name)
    if mtype.kind != "request":
        raise OperatorError(f"'{type_name}' is not a request type")
    payload = check_payload(type_name, payload)
    message_id = message_id or node.random_bytes(16).hex()
    for attempt in range(SEQUENCE_RETRIES):
        try:
            return _send_once(node, peer_id, type_name, payload, message_id, timeout)
        except RemoteRefusal as e:
            if e.code != "sequence_regressed" or attempt == SEQUENCE_RETRIES - 1:
                raise
            # Another request of this node to the same peer took a later seq and arrived first:
            # send again with a new seq, after a short, growing pause so racing senders spread out.
            time.sleep(0.002 * (attempt + 1) * (1 + node.random_bytes(1)[0] / 255))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class PreparedRequest:
    """A request that is signed, sealed and logged as sent, ready to be posted to ``peer``."""

    message: Message
    sealed: SealedEnvelope
    peer: Member


def prepare_request(
    node: NodeContext, peer_id: str, type_name: str, payload: dict[str, Any], *, message_id: str | None = None
) -> PreparedRequest:
    """Take the channel's next seq, sign and seal the request, and log it as sent (one transaction).

    Raises OperatorError ``unknown_peer`` when ``peer_id`` is not another member of the directory.
    """
    now = node.clock()
    peer = current_directory(node, now=now).member(peer_id)
    if peer is None or peer_id == node.node_id:
        raise OperatorError(
            f"'{peer_id}' is not a peer in this node's directory", code="unknown_peer", http_status=404
        )
    with node.db.transaction() as session:
        header = Header(
            id=message_id or node.random_bytes(16).hex(),
            type=type_name,
            sender=node.node_id,
            recipient=peer_id,
            created=now,
            expires=now + node.settings.envelope_lifetime_seconds,
            seq=next_outgoing_seq(session, peer_id),
        )
        message = Message(header=header, payload=payload)
        sealed = _seal(node, message, peer)
        _log_out(session, node, sealed, header, outcome="sent")
    return PreparedRequest(message=message, sealed=sealed, peer=peer)


def _send_once(
    node: NodeContext,
    peer_id: str,
    type_name: str,
    payload: dict[str, Any],
    message_id: str,
    timeout: float | None,
) -> Exchange:
    prepared = prepare_request(node, peer_id, type_name, payload, message_id=message_id)
    return post_prepared(node, prepared, timeout=timeout)


def post_prepared(node: NodeContext, prepared: PreparedRequest, *, timeout: float | None = None) -> Exchange:
    """POST a prepared request and verify and log its reply (as ``send_request`` does, without retries)."""
    message, sealed, peer, header = prepared.message, prepared.sealed, prepared.peer, prepared.message.header
    peer_id, type_name = peer.node_id, header.type
    try:
        response = node.peer_transport().post_envelope(peer.url, sealed.to_bytes(), timeout=timeout)
    except TransportError as e:
        with node.db.transaction() as session:
            _log_out(session, node, sealed, header, outcome="failed", code=e.code)
        raise
    if response.status != 200:
        error = _error_object(response.body)
        code, text = _remote_error(error)
        receipt = _remote_receipt(error, peer, sealed, code)
        with node.db.transaction() as session:
            _log_out(session, node, sealed, header, outcome="refused_by_peer", code=code, receipt=receipt)
        raise RemoteRefusal(f"{peer_id} refused the {type_name}: {text}", code=code)
    return _accept_reply(node, message, sealed, response.body, peer)


def _error_object(body: bytes) -> dict[str, Any]:
    """A peer's error body as an object ({} when it is not one)."""
    try:
        obj = parse_json(body[:4096], what="error")
    except ProtocolError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _remote_receipt(
    error: dict[str, Any], peer: Member, sealed: SealedEnvelope, code: str
) -> dict[str, Any] | None:
    """The log detail of the peer's signed refusal receipt, if the error carries one that verifies."""
    if "receipt" not in error:
        return None
    try:
        receipt = RefusalReceipt.from_dict(error["receipt"])
        verify_refusal(receipt, public_key=peer.signing_key, node=peer.node_id, envelope_hash=sealed.hash)
        if receipt.code != code:
            raise VerificationError("the receipt names another code", code="receipt_mismatch")
    except ProtocolError as e:
        log.warning("a peer's refusal receipt is not valid", extra={"peer": peer.node_id, "code": e.code})
        return None
    return {
        "receipt_time": receipt.time,
        "receipt_signature": b64encode(receipt.signature),
        "receipt_key": sha256_hex(peer.signing_key),
    }


def _remote_error(error: dict[str, Any]) -> tuple[str, str]:
    code, text = error.get("error"), error.get("message")
    if isinstance(code, str) and isinstance(text, str) and len(code) < 64:
        return code, text[:300]
    return "peer_error", "the peer answered with an error that is not a Palermo error"


def _accept_reply(
    node: NodeContext, request: Message, sealed_request: SealedEnvelope, body: bytes, peer: Member
) -> Exchange:
    now = node.clock()
    sealed: SealedEnvelope | None = None
    reply: Message | None = None
    try:
        sealed = SealedEnvelope.from_bytes(body)
        if sealed.sender != peer.node_id:
            raise PeerRefusal("the reply comes from another node", code="sender_mismatch", http_status=403)
        reply = _open(node, sealed, peer, now)
        _check_reply(request, sealed_request, reply)
        _record_accepted(node, sealed, reply, seq=None, reply_to=sealed_request.hash)
    except (NodeError, ProtocolError) as e:
        refusal = _refusal(e)
        _log_refused(
            node,
            peer=peer.node_id,
            envelope_hash=sealed.hash if sealed else sha256_hex(body),
            size=len(body),
            code=refusal.code,
            header=reply.header if reply else _verified_header(e),
        )
        raise refusal from e
    return Exchange(request=request, request_hash=sealed_request.hash, reply=reply, reply_hash=sealed.hash)


def _check_reply(request: Message, sealed_request: SealedEnvelope, reply: Message) -> None:
    expected = ReplyRef(id=request.header.id, hash=sealed_request.hash)
    if reply.header.reply_to != expected or reply.header.seq != request.header.seq:
        raise PeerRefusal(
            "the reply does not answer the request it came back for", code="reply_mismatch", http_status=400
        )
    if reply.header.type not in message_type(request.header.type).reply_types:
        raise PeerRefusal(
            f"a {request.header.type} cannot be answered by a {reply.header.type}",
            code="unexpected_reply",
            http_status=422,
        )
    check_payload(reply.header.type, reply.payload)
