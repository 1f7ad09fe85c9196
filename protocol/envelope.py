"""Envelopes: every message between two nodes, signed by the sender and encrypted to the recipient.

Layers (see protocol/SPEC.md, "Envelopes"):

1. A :class:`Message` is a :class:`Header` and a JSON payload. Its signing bytes are
   ``SIGNING_CONTEXT || canonical_json({"header": ..., "payload": ...})`` and the sender signs
   them with its Ed25519 identity key. The recipient's node id is inside the signed header, so
   a recipient cannot forward a signed message to a third node as if it had been sent there.
2. The inner document ``{"header", "payload", "signature"}`` in canonical JSON is encrypted with
   NaCl ``crypto_box`` (X25519 + XSalsa20-Poly1305) from the sender's encryption key to the
   recipient's. ``Box`` alone is repudiable; the inner signature is what makes a message
   attributable to its sender for audit.
3. The :class:`SealedEnvelope` on the wire names sender and recipient in clear (so a node can
   refuse unknown senders before decrypting) and carries ``nonce || ciphertext`` as ``box``.
   The envelope hash, logged by both sides and named in receipts, is SHA-256 of those bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing

from protocol import PROTOCOL_VERSION
from protocol.canonical import (
    b64decode,
    b64encode,
    canonical_json,
    expect_type,
    parse_json,
    require_fields,
    sha256_hex,
)
from protocol.errors import (
    ExpiredError,
    InvalidRequestError,
    MalformedError,
    ProtocolError,
    VerificationError,
)

SIGNING_CONTEXT = b"palermo/envelope/v1\n"
NONCE_SIZE = nacl.public.Box.NONCE_SIZE
SIGNATURE_SIZE = 64
# \Z, not $: in Python "$" also matches before a trailing newline, so "nld\n" would pass.
MESSAGE_ID_RE = re.compile(r"^[0-9a-f]{32}\Z")
HASH_RE = re.compile(r"^[0-9a-f]{64}\Z")
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}\Z")
TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}\Z")
MAX_SEQ = 2**53 - 1

_HEADER_FIELDS = {"v", "id", "type", "sender", "recipient", "created", "expires", "seq", "reply_to"}
_REPLY_FIELDS = {"id", "hash"}
_INNER_FIELDS = {"header", "payload", "signature"}
_OUTER_FIELDS = {"palermo", "sender", "recipient", "box"}


def check_node_id(value: Any, *, what: str) -> str:
    """Node ids are 2-63 characters of lowercase letters, digits and '-', starting alphanumeric."""
    expect_type(value, str, what=what)
    if not NODE_ID_RE.match(value):
        raise MalformedError(f"{what}: expected a node id (a-z, 0-9, '-', 2-63 characters)")
    return str(value)


@dataclass(frozen=True)
class ReplyRef:
    """The request a reply answers: its message id and envelope hash (which makes a reply a receipt)."""

    id: str
    hash: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not MESSAGE_ID_RE.match(self.id):
            raise MalformedError("reply_to.id: expected 32 lowercase hex digits")
        if not isinstance(self.hash, str) or not HASH_RE.match(self.hash):
            raise MalformedError("reply_to.hash: expected 64 lowercase hex digits")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash}

    @classmethod
    def from_dict(cls, obj: Any) -> ReplyRef:
        require_fields(obj, what="reply_to", required=_REPLY_FIELDS)
        return cls(id=obj["id"], hash=obj["hash"])


@dataclass(frozen=True)
class Header:
    """The signed envelope header. An instance is always well-formed."""

    id: str
    type: str
    sender: str
    recipient: str
    created: int
    expires: int
    seq: int
    reply_to: ReplyRef | None = None
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        expect_type(self.version, int, what="header.v")
        if not isinstance(self.id, str) or not MESSAGE_ID_RE.match(self.id):
            raise MalformedError("header.id: expected 32 lowercase hex digits")
        if not isinstance(self.type, str) or not TYPE_RE.match(self.type):
            raise MalformedError("header.type: expected a message type name")
        check_node_id(self.sender, what="header.sender")
        check_node_id(self.recipient, what="header.recipient")
        if self.sender == self.recipient:
            raise MalformedError("header: sender and recipient are the same node")
        for name in ("created", "expires", "seq"):
            value = expect_type(getattr(self, name), int, what=f"header.{name}")
            if not 0 <= value <= MAX_SEQ:
                raise MalformedError(f"header.{name}: expected an integer from 0 to 2**53-1")
        if self.seq < 1:
            raise MalformedError("header.seq: expected a sequence number of at least 1")
        if self.expires <= self.created:
            raise MalformedError("header.expires: must be later than header.created")
        if self.reply_to is not None and not isinstance(self.reply_to, ReplyRef):
            raise MalformedError("header.reply_to: expected a reply reference or null")

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.version,
            "id": self.id,
            "type": self.type,
            "sender": self.sender,
            "recipient": self.recipient,
            "created": self.created,
            "expires": self.expires,
            "seq": self.seq,
            "reply_to": self.reply_to.to_dict() if self.reply_to else None,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Header:
        require_fields(obj, what="header", required=_HEADER_FIELDS)
        reply = obj["reply_to"]
        return cls(
            version=obj["v"],
            id=obj["id"],
            type=obj["type"],
            sender=obj["sender"],
            recipient=obj["recipient"],
            created=obj["created"],
            expires=obj["expires"],
            seq=obj["seq"],
            reply_to=None if reply is None else ReplyRef.from_dict(reply),
        )


@dataclass(frozen=True)
class Message:
    """A header and its payload: what the sender signs and the recipient acts on."""

    header: Header
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.header, Header):
            raise MalformedError("message.header: expected a Header")
        if not isinstance(self.payload, dict):
            raise MalformedError("message.payload: expected a JSON object")
        canonical_json(self.payload)  # refuse what has no canonical form, early

    def signing_bytes(self) -> bytes:
        """The exact bytes the sender signs."""
        return SIGNING_CONTEXT + canonical_json({"header": self.header.to_dict(), "payload": self.payload})


@dataclass(frozen=True)
class SealedEnvelope:
    """What travels between nodes: clear routing fields and the encrypted, signed message."""

    sender: str
    recipient: str
    box: bytes
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        expect_type(self.version, int, what="envelope.palermo")
        check_node_id(self.sender, what="envelope.sender")
        check_node_id(self.recipient, what="envelope.recipient")
        if not isinstance(self.box, bytes) or len(self.box) <= NONCE_SIZE + 16:
            raise MalformedError("envelope.box: too short to hold a nonce and an authenticated ciphertext")

    @property
    def hash(self) -> str:
        """Envelope hash: lowercase hex SHA-256 of ``nonce || ciphertext``."""
        return sha256_hex(self.box)

    def to_dict(self) -> dict[str, Any]:
        return {
            "palermo": self.version,
            "sender": self.sender,
            "recipient": self.recipient,
            "box": b64encode(self.box),
        }

    def to_bytes(self) -> bytes:
        """Wire bytes (canonical JSON)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedEnvelope:
        """Parse wire bytes into a well-formed envelope (nothing is verified yet).

        Raises MalformedError with code ``malformed_envelope``, or ``unsupported_version`` when
        ``palermo`` is an integer other than this protocol's version (checked before the other
        fields, so that a later version may change them and still get a clear answer).
        """
        try:
            obj = parse_json(data, what="envelope")
            version = obj.get("palermo") if isinstance(obj, dict) else None
            if isinstance(version, int) and not isinstance(version, bool) and version != PROTOCOL_VERSION:
                raise MalformedError(
                    f"envelope protocol version {version} is not supported (expected {PROTOCOL_VERSION})",
                    code="unsupported_version",
                )
            require_fields(obj, what="envelope", required=_OUTER_FIELDS)
            return cls(
                version=expect_type(obj["palermo"], int, what="envelope.palermo"),
                sender=check_node_id(obj["sender"], what="envelope.sender"),
                recipient=check_node_id(obj["recipient"], what="envelope.recipient"),
                box=b64decode(obj["box"], what="envelope.box"),
            )
        except MalformedError as e:
            if e.code == "unsupported_version":
                raise
            raise MalformedError(e.message, code="malformed_envelope") from e


def seal(
    message: Message,
    *,
    signing_key: nacl.signing.SigningKey,
    sender_encryption_key: nacl.public.PrivateKey,
    recipient_encryption_key: nacl.public.PublicKey,
    nonce: bytes,
) -> SealedEnvelope:
    """Sign ``message`` with the sender's identity key and encrypt it to the recipient.

    ``nonce`` must be 24 fresh random bytes (an argument so that test vectors are reproducible).
    """
    if len(nonce) != NONCE_SIZE:
        raise MalformedError(f"nonce: expected {NONCE_SIZE} bytes, got {len(nonce)}")
    signature = signing_key.sign(message.signing_bytes()).signature
    inner = canonical_json(
        {"header": message.header.to_dict(), "payload": message.payload, "signature": b64encode(signature)}
    )
    box = nacl.public.Box(sender_encryption_key, recipient_encryption_key)
    encrypted = box.encrypt(inner, nonce)
    return SealedEnvelope(
        version=message.header.version,
        sender=message.header.sender,
        recipient=message.header.recipient,
        box=bytes(encrypted),
    )


@dataclass(frozen=True)
class SenderKeys:
    """The public keys of the claimed sender, as the recipient's directory lists them."""

    verify_key: nacl.signing.VerifyKey
    encryption_key: nacl.public.PublicKey


@dataclass(frozen=True)
class TimePolicy:
    """How far clocks may disagree, and the longest validity an envelope may claim (seconds)."""

    max_skew: int = 120
    max_lifetime: int = 3600

    def __post_init__(self) -> None:
        # Fail closed: a negative skew or a non-positive lifetime is a configuration mistake.
        if expect_type(self.max_skew, int, what="max_skew") < 0:
            raise InvalidRequestError("max_skew: expected 0 or more seconds")
        if expect_type(self.max_lifetime, int, what="max_lifetime") < 1:
            raise InvalidRequestError("max_lifetime: expected at least 1 second")


def open_envelope(
    sealed: SealedEnvelope,
    *,
    recipient_id: str,
    recipient_encryption_key: nacl.public.PrivateKey,
    sender: SenderKeys,
    now: int,
    policy: TimePolicy = TimePolicy(),  # immutable, so a shared default is safe
) -> Message:
    """Decrypt, verify and check a sealed envelope; return the verified message.

    Raises (with ``code``): ``unsupported_version``, ``wrong_recipient``, ``decryption_failed``,
    ``malformed_envelope``, ``bad_signature``, ``sender_mismatch``, ``future_dated``,
    ``expired_envelope``. Replay and sequence checks need the node's state and happen there. An
    error raised after the signature verified carries the signed header in ``verified_header``.
    """
    if sealed.version != PROTOCOL_VERSION:
        raise MalformedError(
            f"envelope protocol version {sealed.version} is not supported (expected {PROTOCOL_VERSION})",
            code="unsupported_version",
        )
    if sealed.recipient != recipient_id:
        raise VerificationError("envelope is addressed to another node", code="wrong_recipient")
    try:
        inner_bytes = nacl.public.Box(recipient_encryption_key, sender.encryption_key).decrypt(sealed.box)
    except nacl.exceptions.CryptoError as e:
        raise VerificationError(
            "envelope does not decrypt with the sender's listed encryption key", code="decryption_failed"
        ) from e
    try:
        inner = require_fields(
            parse_json(inner_bytes, what="message"), what="message", required=_INNER_FIELDS
        )
        if canonical_json(inner) != inner_bytes:
            # One encoding only: what is decrypted is exactly what seal() produced (SPEC.md 4.4).
            raise MalformedError("message is not in canonical JSON")
        signature = b64decode(inner["signature"], what="message.signature", length=SIGNATURE_SIZE)
        message = Message(header=Header.from_dict(inner["header"]), payload=inner["payload"])
    except MalformedError as e:
        raise MalformedError(str(e), code="malformed_envelope") from e
    try:
        sender.verify_key.verify(message.signing_bytes(), signature)
    except nacl.exceptions.BadSignatureError as e:
        raise VerificationError(
            "signature does not verify with the sender's identity key", code="bad_signature"
        ) from e
    try:
        return _check_verified(message, sealed, recipient_id=recipient_id, now=now, policy=policy)
    except ProtocolError as e:
        e.verified_header = message.header  # signed by the sender: its id and type may be logged
        raise


def _check_verified(
    message: Message, sealed: SealedEnvelope, *, recipient_id: str, now: int, policy: TimePolicy
) -> Message:
    header = message.header
    if header.version != PROTOCOL_VERSION:
        raise MalformedError(
            f"message protocol version {header.version} is not supported", code="unsupported_version"
        )
    if header.sender != sealed.sender:
        raise VerificationError("signed sender differs from the envelope's sender", code="sender_mismatch")
    if header.recipient != recipient_id or header.recipient != sealed.recipient:
        raise VerificationError("signed recipient is another node", code="wrong_recipient")
    if header.created > now + policy.max_skew:
        raise ExpiredError(
            f"envelope created {header.created - now} s in the future (allowed skew {policy.max_skew} s)",
            code="future_dated",
        )
    if header.expires + policy.max_skew < now:
        raise ExpiredError(f"envelope expired {now - header.expires} s ago", code="expired_envelope")
    lifetime = header.expires - header.created
    if lifetime > policy.max_lifetime:
        raise ExpiredError(
            f"envelope claims a lifetime of {lifetime} s (at most {policy.max_lifetime} s)",
            code="expired_envelope",
        )
    return message
