"""Receiving and sending envelopes: verification, replay checks, logging, dispatch.

Every envelope this node sends or receives, accepted or refused, is appended to the exchange
log before it is acted on (hashes and metadata only).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

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
from protocol.canonical import parse_json, sha256_hex
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
from protocol.errors import ProtocolError
from protocol.messages import check_payload, message_type

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
    node: NodeContext,
    sealed: SealedEnvelope,
    message: Message,
    *,
    seq: int | None,
    now: int,
    reply_to: str = "",
) -> None:
    """Remember the message id (and, for a request, the channel's seq) and log it as accepted, atomically."""
    header = message.header
    with node.db.transaction() as session:
        accept_incoming(
            session,
            peer=header.sender,
            message_id=header.id,
            seq=seq,
            forget_after=header.expires + node.settings.clock_skew_seconds,
        )
        exchange_log.append(
            session,
            time=now,
            kind="envelope",
            direction="in",
            peer=header.sender,
            message_id=header.id,
            message_type=header.type,
            envelope_hash=sealed.hash,
            size=len(sealed.box),
            outcome="accepted",
            detail={"reply_to": reply_to} if reply_to else None,
        )


def _refusal(error: NodeError | ProtocolError) -> PeerRefusal:
    if isinstance(error, PeerRefusal):
        return error
    return PeerRefusal(error.message, code=error.code, http_status=REFUSAL_STATUS.get(error.code, 400))


def _log_refused(
    node: NodeContext, *, peer: str, envelope_hash: str, size: int, code: str, header: Header | None
) -> None:
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

    Raises PeerRefusal (with a stable code and HTTP status) for anything refused; the refusal
    is logged and nothing else changes.
    """
    sealed: SealedEnvelope | None = None
    message: Message | None = None
    try:
        sealed = SealedEnvelope.from_bytes(body)
        message = _verify_request(node, sealed)
    except (NodeError, ProtocolError) as e:
        refusal = _refusal(e)
        if refusal.code == "malformed":
            refusal = PeerRefusal(refusal.message, code="malformed_envelope", http_status=400)
        _log_refused(
            node,
            peer=sealed.sender if sealed else "",
            envelope_hash=sealed.hash if sealed else "",
            size=len(body),
            code=refusal.code,
            header=message.header if message else None,
        )
        raise refusal from e
    try:
        reply_type, reply_payload = handle_request(node, message)
    except (NodeError, ProtocolError) as e:  # the handler refused: it changed nothing
        refusal = _refusal(e)
        _log_refused(
            node,
            peer=sealed.sender,
            envelope_hash=sealed.hash,
            size=len(body),
            code=refusal.code,
            header=message.header,
        )
        raise refusal from e
    return _seal_reply(node, message, sealed, reply_type, reply_payload)


def _verify_request(node: NodeContext, sealed: SealedEnvelope) -> Message:
    now = node.clock()
    if sealed.recipient != node.node_id:
        raise PeerRefusal("envelope is addressed to another node", code="wrong_recipient", http_status=403)
    directory = current_directory(node, now=now)
    member = directory.member(sealed.sender)
    if member is None or sealed.sender == node.node_id:
        raise PeerRefusal(
            "the sender is not a member of this node's directory", code="unknown_sender", http_status=403
        )
    message = _open(node, sealed, member, now)
    header = message.header
    check_payload(header.type, message.payload)
    if message_type(header.type).kind != "request" or header.reply_to is not None:
        raise PeerRefusal(
            "a reply can only arrive in the response to its request", code="unexpected_reply", http_status=422
        )
    _record_accepted(node, sealed, message, seq=header.seq, now=now)
    return message


def _seal_reply(
    node: NodeContext,
    request: Message,
    sealed_request: SealedEnvelope,
    reply_type: str,
    payload: dict[str, Any],
) -> bytes:
    now = node.clock()
    peer = current_directory(node, now=now).member(request.header.sender)
    assert peer is not None  # verified in _verify_request
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
    reply = _seal(node, Message(header=header, payload=payload), peer)
    with node.db.transaction() as session:
        _log_out(session, node, reply, header, outcome="sent", reply_to=sealed_request.hash)
    return reply.to_bytes()


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
) -> None:
    """Log an envelope sent; a reply names the envelope hash of the request it answers (its receipt)."""
    exchange_log.append(
        session,
        time=node.clock(),
        kind="envelope",
        direction="out",
        peer=header.recipient,
        message_id=header.id,
        message_type=header.type,
        envelope_hash=sealed.hash,
        size=len(sealed.box),
        outcome=outcome,
        code=code,
        detail={"reply_to": reply_to} if reply_to else None,
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
        code, text = _remote_error(response.body)
        with node.db.transaction() as session:
            _log_out(session, node, sealed, header, outcome="refused_by_peer", code=code)
        raise RemoteRefusal(f"{peer_id} refused the {type_name}: {text}", code=code)
    return _accept_reply(node, message, sealed, response.body, peer)


def _remote_error(body: bytes) -> tuple[str, str]:
    try:
        obj = parse_json(body[:4096], what="error")
        code, text = obj.get("error"), obj.get("message")
        if isinstance(code, str) and isinstance(text, str) and len(code) < 64:
            return code, text[:300]
    except (ProtocolError, AttributeError):
        pass
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
        _record_accepted(node, sealed, reply, seq=None, now=now, reply_to=sealed_request.hash)
    except (NodeError, ProtocolError) as e:
        refusal = _refusal(e)
        _log_refused(
            node,
            peer=peer.node_id,
            envelope_hash=sealed.hash if sealed else sha256_hex(body),
            size=len(body),
            code=refusal.code,
            header=reply.header if reply else None,
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
