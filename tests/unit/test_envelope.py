"""Envelopes: round trips, tamper tables and property tests (protocol/SPEC.md, section 4).

Every refusal asserts its exact code. Inner documents are built by hand where a test needs one
that seal() would never produce; ``signed_inner`` signs them properly, so a refusal can only come
from the check under test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import nacl.public
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import PROTOCOL_VERSION
from protocol.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, b64encode, canonical_json
from protocol.envelope import (
    NONCE_SIZE,
    SIGNING_CONTEXT,
    Header,
    Message,
    ReplyRef,
    SealedEnvelope,
    SenderKeys,
    TimePolicy,
    open_envelope,
    seal,
)
from protocol.errors import InvalidRequestError, MalformedError, ProtocolError

NOW = 1767225600
SKEW = TimePolicy().max_skew
MAX_LIFETIME = TimePolicy().max_lifetime
NONCE = bytes(range(NONCE_SIZE))
REQUEST_ID = "0123456789abcdef0123456789abcdef"
HASH = "ab" * 32
PING = {"nonce": "00112233445566778899aabbccddeeff"}


class Node:
    def __init__(self, node_id: str, seed: int) -> None:
        self.id = node_id
        self.signing = nacl.signing.SigningKey(bytes([seed]) * 32)
        self.encryption = nacl.public.PrivateKey(bytes([seed + 1]) * 32)

    @property
    def listed(self) -> SenderKeys:
        """The keys a directory lists for this node."""
        return SenderKeys(verify_key=self.signing.verify_key, encryption_key=self.encryption.public_key)


NLD = Node("nld-police", 1)
ROU = Node("rou-anitp", 3)
UKR = Node("ukr-npu", 5)


def header(**overrides: Any) -> Header:
    fields: dict[str, Any] = {
        "id": REQUEST_ID,
        "type": "ping",
        "sender": NLD.id,
        "recipient": ROU.id,
        "created": NOW,
        "expires": NOW + 600,
        "seq": 1,
    } | overrides
    return Header(**fields)


def header_dict(**overrides: Any) -> dict[str, Any]:
    return header().to_dict() | overrides


def seal_message(
    message: Message | None = None,
    *,
    signer: Node = NLD,
    box_sender: Node = NLD,
    to: Node = ROU,
    nonce: bytes = NONCE,
) -> SealedEnvelope:
    return seal(
        message or Message(header=header(), payload=dict(PING)),
        signing_key=signer.signing,
        sender_encryption_key=box_sender.encryption,
        recipient_encryption_key=to.encryption.public_key,
        nonce=nonce,
    )


def open_sealed(
    sealed: SealedEnvelope,
    *,
    now: int = NOW,
    me: Node = ROU,
    listed: Node = NLD,
    policy: TimePolicy | None = None,
) -> Message:
    return open_envelope(
        sealed,
        recipient_id=me.id,
        recipient_encryption_key=me.encryption,
        sender=listed.listed,
        now=now,
        policy=policy or TimePolicy(),
    )


def open_wire(wire: bytes, **kwargs: Any) -> Message:
    return open_sealed(SealedEnvelope.from_bytes(wire), **kwargs)


def code_of(action: Callable[[], object]) -> str:
    with pytest.raises(ProtocolError) as e:
        action()
    return e.value.code


DROP = object()  # as a field's new value: delete the field


def wire(sealed: SealedEnvelope, **outer: Any) -> bytes:
    """Wire bytes of ``sealed`` with some outer fields replaced (DROP deletes a field)."""
    obj = sealed.to_dict() | outer
    return canonical_json({k: v for k, v in obj.items() if v is not DROP})


def box_bytes(inner: bytes, *, box_sender: Node = NLD, to: Node = ROU, nonce: bytes = NONCE) -> bytes:
    return bytes(nacl.public.Box(box_sender.encryption, to.encryption.public_key).encrypt(inner, nonce))


def wire_with_inner(inner: bytes, **outer: Any) -> bytes:
    """A correctly encrypted envelope around arbitrary inner bytes."""
    obj = {"palermo": 1, "sender": NLD.id, "recipient": ROU.id, "box": b64encode(box_bytes(inner))} | outer
    return canonical_json(obj)


def signed_inner(hdr: Any, payload: Any = None, *, signer: Node = NLD, **extra: Any) -> dict[str, Any]:
    """An inner document whose signature is valid over whatever ``hdr`` and ``payload`` are."""
    payload = dict(PING) if payload is None else payload
    signature = signer.signing.sign(SIGNING_CONTEXT + canonical_json({"header": hdr, "payload": payload}))
    return {"header": hdr, "payload": payload, "signature": b64encode(signature.signature)} | extra


# --- round trip ------------------------------------------------------------------------------


def test_seal_open_round_trip() -> None:
    message = Message(
        header=header(), payload={"nonce": PING["nonce"], "name": "Ольга", "n": [1, {"x": None}]}
    )
    sealed = seal_message(message)
    assert sealed.sender == NLD.id and sealed.recipient == ROU.id and sealed.version == PROTOCOL_VERSION
    assert sealed.box[:NONCE_SIZE] == NONCE
    assert SealedEnvelope.from_bytes(sealed.to_bytes()) == sealed
    opened = open_wire(sealed.to_bytes())
    assert opened == message
    assert opened.payload["name"] == "Ольга"


def test_reply_round_trip() -> None:
    request = seal_message()
    reply_header = Header(
        id="f" * 32,
        type="pong",
        sender=ROU.id,
        recipient=NLD.id,
        created=NOW + 1,
        expires=NOW + 601,
        seq=1,
        reply_to=ReplyRef(id=REQUEST_ID, hash=request.hash),
    )
    reply = seal_message(Message(header=reply_header, payload=dict(PING)), signer=ROU, box_sender=ROU, to=NLD)
    opened = open_wire(reply.to_bytes(), me=NLD, listed=ROU)
    assert opened.header.reply_to == ReplyRef(id=REQUEST_ID, hash=request.hash)


def test_envelope_hash_is_sha256_of_box() -> None:
    sealed = seal_message()
    assert sealed.hash == hashlib.sha256(sealed.box).hexdigest()
    assert seal_message(nonce=bytes(24)).hash != sealed.hash  # a fresh nonce, a fresh hash


def test_box_is_nonce_mac_and_canonical_inner() -> None:
    message = Message(header=header(), payload=dict(PING))
    sealed = seal_message(message)
    inner = nacl.public.Box(ROU.encryption, NLD.encryption.public_key).decrypt(sealed.box)
    assert len(sealed.box) == NONCE_SIZE + 16 + len(inner)
    signature = NLD.signing.sign(message.signing_bytes()).signature
    assert inner == canonical_json(
        {"header": header().to_dict(), "payload": PING, "signature": b64encode(signature)}
    )


def test_signing_bytes_have_the_context_string() -> None:
    message = Message(header=header(), payload=dict(PING))
    assert SIGNING_CONTEXT == b"palermo/envelope/v1\n"
    assert message.signing_bytes() == SIGNING_CONTEXT + canonical_json(
        {"header": header().to_dict(), "payload": PING}
    )


def test_open_is_stateless_so_replay_is_the_nodes_check() -> None:
    # open_envelope has no memory: the node refuses replays (replayed_message, sequence_regressed).
    sealed = seal_message()
    assert open_sealed(sealed) == open_sealed(sealed)


def test_returns_the_decrypted_message_not_the_callers() -> None:
    payload = dict(PING)
    sealed = seal_message(Message(header=header(), payload=payload))
    payload["nonce"] = "f" * 32
    assert open_sealed(sealed).payload == PING


# --- the box ---------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 12, 23, 24, 39, 40, 41, -2, -1])
def test_flipped_box_byte(position: int) -> None:
    sealed = seal_message()
    box = bytearray(sealed.box)
    box[position] ^= 0x80
    assert code_of(lambda: open_wire(wire(sealed, box=b64encode(bytes(box))))) == "decryption_failed"


@pytest.mark.parametrize("keep", [41, 60, -1])
def test_truncated_box_does_not_decrypt(keep: int) -> None:
    sealed = seal_message()
    assert code_of(lambda: open_wire(wire(sealed, box=b64encode(sealed.box[:keep])))) == "decryption_failed"


@pytest.mark.parametrize("keep", [0, 24, 40])
def test_box_too_short_is_malformed(keep: int) -> None:
    sealed = seal_message()
    assert code_of(lambda: open_wire(wire(sealed, box=b64encode(sealed.box[:keep])))) == "malformed_envelope"


def test_box_appended_byte_does_not_decrypt() -> None:
    sealed = seal_message()
    assert code_of(lambda: open_wire(wire(sealed, box=b64encode(sealed.box + b"\0")))) == "decryption_failed"


# --- the outer wire object -------------------------------------------------------------------

GOOD = seal_message()
GOOD_B64 = b64encode(GOOD.box)


def _non_canonical(text: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = len(text.rstrip("=")) - 1
    assert text.endswith("=")
    return text[:last] + alphabet[alphabet.index(text[last]) ^ 1] + text[last + 1 :]


OUTER_BAD: list[tuple[str, str, bytes]] = [  # name, what the refusal says, wire bytes
    ("empty", "not well-formed JSON", b""),
    ("not_json", "not well-formed JSON", b"palermo"),
    ("truncated", "not well-formed JSON", GOOD.to_bytes()[:-1]),
    ("array", "expected a JSON object", b"[]"),
    ("string", "expected a JSON object", b'"envelope"'),
    ("null", "expected a JSON object", b"null"),
    ("missing_palermo", "missing field(s) palermo", wire(GOOD, palermo=DROP)),
    ("missing_sender", "missing field(s) sender", wire(GOOD, sender=DROP)),
    ("missing_recipient", "missing field(s) recipient", wire(GOOD, recipient=DROP)),
    ("missing_box", "missing field(s) box", wire(GOOD, box=DROP)),
    ("unknown_field", "unknown field(s) hint", wire(GOOD, hint="x")),
    ("palermo_string", "envelope.palermo", wire(GOOD, palermo="1")),
    ("palermo_bool", "envelope.palermo", wire(GOOD, palermo=True)),
    ("palermo_array", "envelope.palermo", wire(GOOD, palermo=[])),
    ("palermo_float", "float is not allowed", GOOD.to_bytes().replace(b'"palermo":1', b'"palermo":1.0')),
    ("sender_uppercase", "envelope.sender", wire(GOOD, sender="NLD-police")),
    ("sender_too_short", "envelope.sender", wire(GOOD, sender="n")),
    ("sender_too_long", "envelope.sender", wire(GOOD, sender="n" * 64)),
    ("sender_leading_dash", "envelope.sender", wire(GOOD, sender="-nld")),
    ("sender_trailing_newline", "envelope.sender", wire(GOOD, sender="nld-police\n")),
    ("sender_integer", "envelope.sender", wire(GOOD, sender=7)),
    ("recipient_with_space", "envelope.recipient", wire(GOOD, recipient="rou anitp")),
    ("recipient_non_ascii", "envelope.recipient", wire(GOOD, recipient="rоu-anitp")),  # Cyrillic "о"
    ("box_not_base64", "not valid base64", wire(GOOD, box="*" + GOOD_B64[1:])),
    ("box_non_canonical_base64", "not in canonical form", wire(GOOD, box=_non_canonical(GOOD_B64))),
    ("box_missing_padding", "not valid base64", wire(GOOD, box=GOOD_B64.rstrip("="))),
    ("box_urlsafe", "not valid base64", wire(GOOD, box=GOOD_B64.replace("+", "-").replace("/", "_"))),
    ("box_with_newline", "not valid base64", wire(GOOD, box=GOOD_B64[:40] + "\n" + GOOD_B64[40:])),
    ("box_integer", "envelope.box", wire(GOOD, box=12)),
    ("box_array", "envelope.box", wire(GOOD, box=[GOOD_B64])),
    ("duplicate_key", "duplicate key", GOOD.to_bytes()[:-1] + b',"sender":"ukr-npu"}'),
    ("not_utf8", "not UTF-8", GOOD.to_bytes().replace(b"nld-police", b"nld-\xffolice")),
    ("lone_surrogate", "lone surrogate", GOOD.to_bytes().replace(b"nld-police", b"nld-\\ud800")),
    ("deep", "nested deeper", b'{"palermo":1,"x":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"),
    ("very_deep", "not well-formed JSON", b"[" * 200_000 + b"]" * 200_000),
    ("huge_integer", "not well-formed JSON", b'{"palermo":' + b"9" * 5000 + b"}"),
    ("integer_beyond_range", "integer outside", wire(GOOD)[:-1] + b',"x":9007199254740992}'),
]


@pytest.mark.parametrize(
    ("says", "data"), [(w, d) for _, w, d in OUTER_BAD], ids=[n for n, _, _ in OUTER_BAD]
)
def test_outer_refused(says: str, data: bytes) -> None:
    with pytest.raises(MalformedError) as e:
        SealedEnvelope.from_bytes(data)
    assert e.value.code == "malformed_envelope"
    assert says in str(e.value)


def test_depth_is_refused_as_depth() -> None:
    # The depth limit, not the unknown field, is what refuses this one.
    data = b'{"palermo":1,"x":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"
    with pytest.raises(MalformedError, match="nested deeper than 32"):
        SealedEnvelope.from_bytes(data)
    inner = canonical_json(signed_inner(header_dict(), {"x": []})).replace(
        b"[]", b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    )
    with pytest.raises(MalformedError, match="nested deeper than 32"):
        open_wire(wire_with_inner(inner))


@pytest.mark.parametrize("version", [0, 2, -1, MAX_SAFE_INTEGER])
def test_outer_unsupported_version(version: int) -> None:
    assert code_of(lambda: SealedEnvelope.from_bytes(wire(GOOD, palermo=version))) == "unsupported_version"


def test_unsupported_version_is_reported_before_other_fields() -> None:
    # A later version may change the outer fields and still gets a clear answer.
    data = canonical_json({"palermo": 2, "route": {"to": "rou-anitp"}, "blob": "x"})
    assert code_of(lambda: SealedEnvelope.from_bytes(data)) == "unsupported_version"


def test_outer_accepts_any_json_layout() -> None:
    # Outer fields are routing hints, checked against the signed header; only the inner
    # document has to be canonical.
    pretty = b'{\n  "sender": "nld-police", "recipient": "rou-anitp",\n  "box": "%s", "palermo": 1\n}' % (
        GOOD_B64.encode()
    )
    assert open_wire(pretty).payload == PING


def test_sealed_envelope_constructor_checks() -> None:
    assert (
        code_of(lambda: SealedEnvelope(sender="nld-police", recipient="rou-anitp", box=b"x" * 40))
        == "malformed"
    )
    assert code_of(lambda: SealedEnvelope(sender="NLD", recipient="rou-anitp", box=GOOD.box)) == "malformed"
    assert (
        code_of(
            lambda: SealedEnvelope(sender="nld-police", recipient="rou-anitp", box=GOOD.box, version=True)
        )
        == "malformed"
    )


def test_open_refuses_constructed_envelope_of_other_version() -> None:
    sealed = SealedEnvelope(sender=NLD.id, recipient=ROU.id, box=GOOD.box, version=2)
    assert code_of(lambda: open_sealed(sealed)) == "unsupported_version"


# --- the inner document ----------------------------------------------------------------------

GOOD_INNER = signed_inner(header_dict())

INNER_BAD: list[tuple[str, str, bytes]] = [  # name, what the refusal says, inner bytes
    ("not_json", "not well-formed JSON", b"not json"),
    ("empty_object", "missing field(s) header, payload, signature", b"{}"),
    ("array", "expected a JSON object", canonical_json([GOOD_INNER])),
    ("not_utf8", "not UTF-8", canonical_json(GOOD_INNER).replace(b"nld-police", b"nld-\xffolice")),
    ("lone_surrogate", "lone surrogate", canonical_json(GOOD_INNER).replace(b'"ping"', b'"\\ud800"')),
    ("duplicate_key", "duplicate key", canonical_json(GOOD_INNER)[:-1] + b',"signature":"x"}'),
    (
        "not_canonical_whitespace",
        "not in canonical JSON",
        canonical_json(GOOD_INNER).replace(b'"header":', b'"header": '),
    ),
    (
        "not_canonical_order",
        "not in canonical JSON",
        b'{"signature":%s,"header":%s,"payload":%s}'
        % (
            canonical_json(GOOD_INNER["signature"]),
            canonical_json(GOOD_INNER["header"]),
            canonical_json(GOOD_INNER["payload"]),
        ),
    ),
    (
        "not_canonical_escape",
        "not in canonical JSON",
        canonical_json(GOOD_INNER).replace(b'"ping"', b'"p\\u0069ng"'),
    ),
    (
        "missing_header",
        "missing field(s) header",
        canonical_json({k: v for k, v in GOOD_INNER.items() if k != "header"}),
    ),
    (
        "missing_payload",
        "missing field(s) payload",
        canonical_json({k: v for k, v in GOOD_INNER.items() if k != "payload"}),
    ),
    (
        "missing_signature",
        "missing field(s) signature",
        canonical_json({k: v for k, v in GOOD_INNER.items() if k != "signature"}),
    ),
    ("unknown_field", "unknown field(s) note", canonical_json(GOOD_INNER | {"note": "x"})),
    ("signature_not_base64", "message.signature", canonical_json(GOOD_INNER | {"signature": "!" * 88})),
    (
        "signature_63_bytes",
        "expected 64 bytes",
        canonical_json(GOOD_INNER | {"signature": b64encode(bytes(63))}),
    ),
    (
        "signature_65_bytes",
        "expected 64 bytes",
        canonical_json(GOOD_INNER | {"signature": b64encode(bytes(65))}),
    ),
    ("signature_integer", "message.signature", canonical_json(GOOD_INNER | {"signature": 0})),
    ("payload_array", "message.payload", canonical_json(signed_inner(header_dict(), []))),
    ("payload_string", "message.payload", canonical_json(signed_inner(header_dict(), "x"))),
    ("payload_null", "message.payload", canonical_json(GOOD_INNER | {"payload": None})),
    ("header_array", "header: expected a JSON object", canonical_json(signed_inner([header_dict()]))),
    (
        "deep_payload",
        "nested deeper",
        canonical_json(signed_inner(header_dict(), {"x": []})).replace(
            b"[]", b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
        ),
    ),
    (
        "float_in_payload",
        "float is not allowed",
        canonical_json(GOOD_INNER).replace(b'"payload":{', b'"payload":{"f":1.5,'),
    ),
]


@pytest.mark.parametrize(
    ("says", "inner"), [(w, i) for _, w, i in INNER_BAD], ids=[n for n, _, _ in INNER_BAD]
)
def test_inner_refused(says: str, inner: bytes) -> None:
    with pytest.raises(MalformedError) as e:
        open_wire(wire_with_inner(inner))
    assert e.value.code == "malformed_envelope"
    assert says in str(e.value)


def test_hand_built_good_inner_is_accepted() -> None:
    # The baseline of the tables: with nothing changed, the hand-built document opens.
    assert open_wire(wire_with_inner(canonical_json(GOOD_INNER))).header == header()


HEADER_FIELDS = ["v", "id", "type", "sender", "recipient", "created", "expires", "seq", "reply_to"]
HEADER_BAD: list[tuple[str, dict[str, Any], str]] = [
    # name, change to the header (DROP deletes a field), what the refusal must say
    *[(f"missing_{name}", {name: DROP}, f"missing field(s) {name}") for name in HEADER_FIELDS],
    ("unknown_field", {"priority": 1}, "unknown field(s) priority"),
    ("v_string", {"v": "1"}, "header.v"),
    ("v_bool", {"v": True}, "header.v"),
    ("id_uppercase", {"id": REQUEST_ID.upper()}, "header.id"),
    ("id_short", {"id": REQUEST_ID[:-1]}, "header.id"),
    ("id_trailing_newline", {"id": REQUEST_ID + "\n"}, "header.id"),
    ("id_integer", {"id": 1}, "header.id"),
    ("type_uppercase", {"type": "Ping"}, "header.type"),
    ("type_empty", {"type": ""}, "header.type"),
    ("type_trailing_newline", {"type": "ping\n"}, "header.type"),
    ("type_too_long", {"type": "p" * 65}, "header.type"),
    ("sender_bad", {"sender": "NLD"}, "header.sender"),
    ("sender_trailing_newline", {"sender": NLD.id + "\n"}, "header.sender"),
    ("recipient_bad", {"recipient": "rou_anitp"}, "header.recipient"),
    ("sender_is_recipient", {"sender": ROU.id}, "same node"),
    ("created_string", {"created": str(NOW)}, "header.created"),
    ("created_bool", {"created": True}, "header.created"),
    ("created_negative", {"created": -1}, "header.created"),
    ("expires_bool", {"expires": False}, "header.expires"),
    ("expires_equals_created", {"expires": NOW}, "header.expires"),
    ("expires_before_created", {"expires": NOW - 1}, "header.expires"),
    ("seq_zero", {"seq": 0}, "header.seq"),
    ("seq_negative", {"seq": -1}, "header.seq"),
    ("seq_bool", {"seq": True}, "header.seq"),
    ("seq_string", {"seq": "1"}, "header.seq"),
    ("seq_array", {"seq": []}, "header.seq"),
    ("reply_to_string", {"reply_to": "x"}, "reply_to"),
    ("reply_to_empty", {"reply_to": {}}, "reply_to: missing field(s) hash, id"),
    ("reply_to_missing_hash", {"reply_to": {"id": REQUEST_ID}}, "reply_to: missing field(s) hash"),
    (
        "reply_to_extra",
        {"reply_to": {"id": REQUEST_ID, "hash": HASH, "seq": 1}},
        "reply_to: unknown field(s) seq",
    ),
    ("reply_to_bad_id", {"reply_to": {"id": "x", "hash": HASH}}, "reply_to.id"),
    ("reply_to_hash_uppercase", {"reply_to": {"id": REQUEST_ID, "hash": HASH.upper()}}, "reply_to.hash"),
    ("reply_to_hash_short", {"reply_to": {"id": REQUEST_ID, "hash": HASH[:-2]}}, "reply_to.hash"),
    ("reply_to_hash_newline", {"reply_to": {"id": REQUEST_ID, "hash": HASH + "\n"}}, "reply_to.hash"),
]


def signed_header_wire(change: dict[str, Any]) -> bytes:
    hdr = {k: v for k, v in (header_dict() | change).items() if v is not DROP}
    return wire_with_inner(canonical_json(signed_inner(hdr)))  # correctly signed


def test_header_table_baseline_opens() -> None:
    # Each row of HEADER_BAD differs from this in exactly its change.
    assert open_wire(signed_header_wire({})).header == header()
    assert open_wire(signed_header_wire({"reply_to": {"id": REQUEST_ID, "hash": HASH}})).header.reply_to


@pytest.mark.parametrize(
    ("change", "says"), [(c, w) for _, c, w in HEADER_BAD], ids=[n for n, _, _ in HEADER_BAD]
)
def test_signed_header_refused(change: dict[str, Any], says: str) -> None:
    with pytest.raises(MalformedError) as e:
        open_wire(signed_header_wire(change))
    assert e.value.code == "malformed_envelope"
    assert says in str(e.value)


@pytest.mark.parametrize(
    "raw", [b'"seq":1.0', b'"created":1767225600.0', b'"seq":1e0'], ids=["seq", "created", "exp"]
)
def test_float_for_int_refused(raw: bytes) -> None:
    inner = canonical_json(GOOD_INNER)
    field = raw.split(b":")[0]
    start = inner.index(field + b":")
    end = inner.index(b",", start)
    with pytest.raises(MalformedError, match="float is not allowed") as e:
        open_wire(wire_with_inner(inner[:start] + raw + inner[end:]))
    assert e.value.code == "malformed_envelope"


def test_signed_header_of_other_version() -> None:
    inner = canonical_json(signed_inner(header_dict(v=2)))
    assert code_of(lambda: open_wire(wire_with_inner(inner))) == "unsupported_version"


HEADER_INVALID: list[tuple[str, dict[str, Any]]] = [
    ("seq_zero", {"seq": 0}),
    ("seq_bool", {"seq": True}),
    ("created_float", {"created": float(NOW)}),
    ("expires_not_after_created", {"expires": NOW}),
    ("seq_too_large", {"seq": MAX_SAFE_INTEGER + 1}),
    ("sender_is_recipient", {"recipient": NLD.id}),
    ("reply_to_dict", {"reply_to": {"id": REQUEST_ID, "hash": HASH}}),
    ("version_string", {"version": "1"}),
]


@pytest.mark.parametrize("change", [c for _, c in HEADER_INVALID], ids=[n for n, _ in HEADER_INVALID])
def test_header_cannot_be_built_invalid(change: dict[str, Any]) -> None:
    assert code_of(lambda: header(**change)) == "malformed"


def test_message_cannot_be_built_invalid() -> None:
    assert code_of(lambda: Message(header=header(), payload=[])) == "malformed"  # type: ignore[arg-type]
    assert code_of(lambda: Message(header=header(), payload={"f": 0.5})) == "malformed"
    assert code_of(lambda: Message(header=header_dict(), payload={})) == "malformed"  # type: ignore[arg-type]


def test_seal_refuses_a_short_nonce() -> None:
    assert code_of(lambda: seal_message(nonce=bytes(23))) == "malformed"


# --- signatures, keys and binding ------------------------------------------------------------


def test_signature_by_another_key() -> None:
    assert code_of(lambda: open_sealed(seal_message(signer=UKR))) == "bad_signature"


def test_encrypted_by_another_sender_key() -> None:
    assert code_of(lambda: open_sealed(seal_message(box_sender=UKR))) == "decryption_failed"


def test_encrypted_to_another_recipient_key() -> None:
    # Outer recipient is right, but the box was made for another node's key.
    assert code_of(lambda: open_sealed(seal_message(to=UKR))) == "decryption_failed"


def test_signature_without_context_string() -> None:
    hdr, payload = header_dict(), dict(PING)
    bare = NLD.signing.sign(canonical_json({"header": hdr, "payload": payload})).signature
    inner = canonical_json({"header": hdr, "payload": payload, "signature": b64encode(bare)})
    assert code_of(lambda: open_wire(wire_with_inner(inner))) == "bad_signature"


SIGNED_CHANGES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("id", {"id": "f" * 32}, None),
    ("type", {"type": "pong"}, None),
    ("created", {"created": NOW - 1}, None),
    ("expires", {"expires": NOW + 599}, None),
    ("seq", {"seq": 2}, None),
    ("reply_to", {"reply_to": {"id": REQUEST_ID, "hash": HASH}}, None),
    ("payload", {}, {"nonce": "f" * 32}),
]


@pytest.mark.parametrize(
    ("hdr_change", "payload"), [(h, p) for _, h, p in SIGNED_CHANGES], ids=[n for n, _, _ in SIGNED_CHANGES]
)
def test_signed_content_changed_after_signing(
    hdr_change: dict[str, Any], payload: dict[str, Any] | None
) -> None:
    # Someone holding the box keys (a compromised X25519 key) changes the message but keeps
    # the signature.
    changed = GOOD_INNER | {"header": header_dict(**hdr_change), "payload": payload or PING}
    assert code_of(lambda: open_wire(wire_with_inner(canonical_json(changed)))) == "bad_signature"


def test_outer_recipient_is_another_node() -> None:
    assert code_of(lambda: open_wire(wire(GOOD, recipient=UKR.id))) == "wrong_recipient"


def test_wrong_recipient_is_refused_before_decryption() -> None:
    garbage = b64encode(bytes(100))
    assert code_of(lambda: open_wire(wire(GOOD, recipient=UKR.id, box=garbage))) == "wrong_recipient"


def test_signed_recipient_is_another_node() -> None:
    # Sealed for ROU's key but the signed header names UKR: the surreptitious-forwarding check.
    sealed = seal_message(Message(header=header(recipient=UKR.id), payload=dict(PING)))
    assert code_of(lambda: open_wire(wire(sealed, recipient=ROU.id))) == "wrong_recipient"


def test_sender_mismatch() -> None:
    # Signed and encrypted with NLD's keys, but the signed header claims UKR sent it.
    sealed = seal_message(Message(header=header(sender=UKR.id), payload=dict(PING)))
    assert sealed.sender == UKR.id
    assert code_of(lambda: open_wire(wire(sealed, sender=NLD.id))) == "sender_mismatch"


def test_outer_sender_changed_fails_with_that_senders_keys() -> None:
    # Relabelling the clear sender makes the node use the other member's keys.
    assert code_of(lambda: open_wire(wire(GOOD, sender=UKR.id), listed=UKR)) == "decryption_failed"


# --- time ------------------------------------------------------------------------------------

TIMES: list[tuple[str, int, int, int, str | None]] = [
    # name, created, expires, now, expected code (None: accepted)
    ("fresh", NOW, NOW + 600, NOW, None),
    ("created_within_skew", NOW + SKEW, NOW + SKEW + 600, NOW, None),
    ("created_beyond_skew", NOW + SKEW + 1, NOW + SKEW + 601, NOW, "future_dated"),
    ("far_future", NOW + 86400, NOW + 86400 + 600, NOW, "future_dated"),
    ("expires_now", NOW - 600, NOW, NOW, None),
    ("expired_within_skew", NOW - 600 - SKEW, NOW - SKEW, NOW, None),
    ("expired_beyond_skew", NOW - 601 - SKEW, NOW - SKEW - 1, NOW, "expired_envelope"),
    ("long_ago", 1, 601, NOW, "expired_envelope"),
    ("maximum_lifetime", NOW, NOW + MAX_LIFETIME, NOW, None),
    ("lifetime_too_long", NOW, NOW + MAX_LIFETIME + 1, NOW, "expired_envelope"),
    ("lifetime_far_too_long", 0, MAX_SAFE_INTEGER, NOW, "expired_envelope"),
]


@pytest.mark.parametrize(
    ("created", "expires", "now", "expected"), [t[1:] for t in TIMES], ids=[t[0] for t in TIMES]
)
def test_time_window(created: int, expires: int, now: int, expected: str | None) -> None:
    sealed = seal_message(Message(header=header(created=created, expires=expires), payload=dict(PING)))
    if expected is None:
        assert open_sealed(sealed, now=now).header.created == created
    else:
        assert code_of(lambda: open_sealed(sealed, now=now)) == expected


def test_time_policy_is_applied() -> None:
    sealed = seal_message(Message(header=header(created=NOW + 10, expires=NOW + 20), payload=dict(PING)))
    assert code_of(lambda: open_sealed(sealed, policy=TimePolicy(max_skew=9))) == "future_dated"
    assert open_sealed(sealed, policy=TimePolicy(max_skew=10)).header.seq == 1
    assert (
        code_of(lambda: open_sealed(sealed, policy=TimePolicy(max_skew=10, max_lifetime=9)))
        == "expired_envelope"
    )


@pytest.mark.parametrize(("skew", "lifetime"), [(-1, 3600), (120, 0), (120, -5)])
def test_time_policy_fails_closed(skew: int, lifetime: int) -> None:
    with pytest.raises(InvalidRequestError):
        TimePolicy(max_skew=skew, max_lifetime=lifetime)


# --- check order -----------------------------------------------------------------------------


def test_order_version_before_recipient() -> None:
    assert code_of(lambda: open_wire(wire(GOOD, palermo=2, recipient=UKR.id))) == "unsupported_version"


def test_order_signature_before_time() -> None:
    # Without the right key, nobody learns whether the times would have passed.
    stale = Message(header=header(created=1, expires=601), payload=dict(PING))
    assert code_of(lambda: open_sealed(seal_message(stale, signer=UKR))) == "bad_signature"


def test_order_binding_before_time() -> None:
    stale = Message(header=header(sender=UKR.id, created=1, expires=601), payload=dict(PING))
    assert code_of(lambda: open_wire(wire(seal_message(stale), sender=NLD.id))) == "sender_mismatch"


def test_order_future_before_lifetime() -> None:
    sealed = seal_message(Message(header=header(created=NOW + 1000, expires=NOW + 9000), payload=dict(PING)))
    assert code_of(lambda: open_sealed(sealed)) == "future_dated"


# --- what errors say -------------------------------------------------------------------------


def test_errors_do_not_echo_payload() -> None:
    message = Message(header=header(), payload={"nonce": PING["nonce"], "prs_FirstName": "Ольга"})
    inner = canonical_json(signed_inner(header_dict(seq=0), message.payload))
    with pytest.raises(MalformedError) as e:
        open_wire(wire_with_inner(inner))
    assert "Ольга" not in str(e.value) and "header.seq" in str(e.value)


# --- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(max_codepoint=127), max_size=8), children, max_size=4
        )
    ),
    max_leaves=25,
)
payloads = st.dictionaries(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=12), json_values, max_size=6
)


@settings(deadline=None, max_examples=150)
@given(
    payload=payloads,
    seq=st.integers(1, MAX_SAFE_INTEGER),
    lifetime=st.integers(1, MAX_LIFETIME),
    nonce=st.binary(min_size=24, max_size=24),
)
def test_property_seal_open_round_trip(
    payload: dict[str, Any], seq: int, lifetime: int, nonce: bytes
) -> None:
    message = Message(header=header(seq=seq, expires=NOW + lifetime), payload=payload)
    sealed = seal_message(message, nonce=nonce)
    assert open_wire(sealed.to_bytes()) == message


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_property_from_bytes_raises_only_its_codes(data: bytes) -> None:
    try:
        SealedEnvelope.from_bytes(data)
    except MalformedError as e:
        assert e.code in {"malformed_envelope", "unsupported_version"}


@settings(deadline=None, max_examples=200)
@given(st.binary(min_size=1, max_size=300))
def test_property_any_decrypted_bytes_are_refused_cleanly(inner: bytes) -> None:
    # Whatever a listed sender encrypts, opening it ends in a ProtocolError, never a crash.
    try:
        open_wire(wire_with_inner(inner))
    except ProtocolError as e:
        assert e.code in {"malformed_envelope", "bad_signature"}
