"""Generate the golden test vectors of the Palermo wire format (protocol/SPEC.md, section 9).

Everything is fixed: key seeds, node ids, message ids, times and box nonces, so the output is the
same on every run and in every implementation. ``python scripts/gen_vectors.py`` writes
``protocol/vectors/envelope.json``; ``--check`` exits 1 if that file differs from what would be
written. tests/unit/test_vectors.py imports :func:`build_vectors` and :func:`render`.

The private keys below are test keys, published on purpose. Never use them for anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing

from protocol import PROTOCOL_VERSION
from protocol.canonical import MAX_DEPTH, MAX_SAFE_INTEGER, b64encode, canonical_json, parse_json
from protocol.envelope import (
    SIGNING_CONTEXT,
    Header,
    Message,
    ReplyRef,
    SealedEnvelope,
    TimePolicy,
    seal,
)

VECTORS_PATH = Path(__file__).resolve().parent.parent / "protocol" / "vectors" / "envelope.json"

SENDER = "nld-police"
RECIPIENT = "rou-anitp"
THIRD = "ukr-npu"

# Seeds and raw X25519 private keys (32 bytes each).
SEEDS = {
    SENDER: {"signing_seed": b"\x01" * 32, "encryption_private": b"\x02" * 32},
    RECIPIENT: {"signing_seed": b"\x03" * 32, "encryption_private": b"\x04" * 32},
    THIRD: {"signing_seed": b"\x05" * 32, "encryption_private": b"\x06" * 32},
}

CREATED = 1767225600  # 2026-01-01T00:00:00Z
LIFETIME = 600  # what senders use (SPEC.md 4.7)
REQUEST_ID = "00112233445566778899aabbccddeeff"
REPLY_ID = "ffeeddccbbaa99887766554433221100"
PING_NONCE = "0123456789abcdef0123456789abcdef"
REQUEST_BOX_NONCE = bytes(range(24))
REPLY_BOX_NONCE = bytes(range(24, 48))
NEGATIVE_BOX_NONCE = bytes(range(48, 72))


class NodeKeys:
    """The fixed keys of one test node."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.signing = nacl.signing.SigningKey(SEEDS[node_id]["signing_seed"])
        self.encryption = nacl.public.PrivateKey(SEEDS[node_id]["encryption_private"])

    def describe(self) -> dict[str, str]:
        return {
            "signing_seed_hex": SEEDS[self.node_id]["signing_seed"].hex(),
            "signing_public_b64": b64encode(bytes(self.signing.verify_key)),
            "encryption_private_hex": SEEDS[self.node_id]["encryption_private"].hex(),
            "encryption_public_b64": b64encode(bytes(self.encryption.public_key)),
        }


def _hex_of(text: str) -> str:
    return text.encode("utf-8").hex()


# --- (a) canonical JSON ----------------------------------------------------------------------

CANONICAL_VALUES: list[tuple[str, Any]] = [
    ("key_order", {"b": 1, "a": 2, "aa": 3, "A": 4, "_": 5, "10": 6, "9": 7, "": 8}),
    ("nesting", {"outer": {"z": [3, {"y": None, "x": True}], "a": False}, "list": [[], {}, [[1]]]}),
    ("integers", [0, -1, 1, 42, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]),
    (
        "escapes",
        {
            "quote_backslash_slash": 'say "hi" \\ / ok',
            "short_escapes": "\b\f\n\r\t",
            "other_controls": "\x00\x01\x1f",
            "not_escaped": "\x7f\u2028\u2029<>&'",
        },
    ),
    (
        "non_ascii_names",
        {
            "prs_FirstName_cyrillic": "Ольга",
            "prs_SecondName_cyrillic": "Петренко-Шевчук",
            "prs_FirstName_arabic": "مريم",
            "prs_SecondName_arabic": "العلي",
            "prs_FirstName_chinese": "小明",
            "prs_SecondName_chinese": "王",
            "latin_diacritics": "Ștefan Mureșanu",
            "emoji_outside_bmp": "🙂",
            "decomposed_not_normalised": "Jose\u0301",
        },
    ),
    ("decimal_as_string", {"amount": "12.50", "epsilon": "0.1"}),
    ("empty_containers", {"array": [], "object": {}, "string": ""}),
    ("top_level_array", ["ping", 1, None]),
]

# JSON texts a parser accepts, and the canonical bytes they become.
PARSED_TEXTS: list[tuple[str, str]] = [
    ("whitespace_and_order", ' {\n  "b" : 1 ,\n  "a" : [ 1 , 2 ]\n} '),
    ("escaped_input_unescaped_output", '{"e":"\\u00e9\\u0041\\/\\ud83d\\ude42"}'),
    ("control_escapes_lowercase_hex", '{"c":"\\u001F\\u000A"}'),
    ("negative_zero", '{"n":-0}'),
    ("depth_limit_accepted", "[" * MAX_DEPTH + "0" + "]" * MAX_DEPTH),
]

# Inputs every implementation must refuse (hex, since some are not UTF-8).
REFUSED_INPUTS: list[tuple[str, bytes]] = [
    ("duplicate_key", b'{"a":1,"a":2}'),
    ("float", b'{"a":1.0}'),
    ("exponent", b'{"a":1e3}'),
    ("nan", b'{"a":NaN}'),
    ("infinity", b'{"a":-Infinity}'),
    ("integer_too_large", b'{"a":9007199254740992}'),
    ("integer_too_small", b'{"a":-9007199254740992}'),
    ("non_ascii_key", '{"é":1}'.encode()),
    ("lone_surrogate_escape", b'{"a":"\\ud800"}'),
    ("depth_limit_exceeded", b"[" * (MAX_DEPTH + 1) + b"0" + b"]" * (MAX_DEPTH + 1)),
    ("not_utf8", b'{"a":"\xff"}'),
    ("utf8_bom", b'\xef\xbb\xbf{"a":1}'),
    ("trailing_garbage", b'{"a":1}x'),
    ("truncated", b'{"a":'),
]


def canonical_vectors() -> dict[str, Any]:
    values = []
    for name, value in CANONICAL_VALUES:
        text = canonical_json(value).decode("utf-8")
        values.append({"name": name, "input": value, "canonical_text": text, "canonical_hex": _hex_of(text)})
    parsed = []
    for name, source in PARSED_TEXTS:
        text = canonical_json(parse_json(source.encode("utf-8"))).decode("utf-8")
        parsed.append(
            {"name": name, "input_text": source, "canonical_text": text, "canonical_hex": _hex_of(text)}
        )
    refused = [{"name": name, "input_hex": data.hex()} for name, data in REFUSED_INPUTS]
    return {"values": values, "parsed": parsed, "refused": refused}


# --- (b) envelopes ---------------------------------------------------------------------------


def _header(
    *,
    id: str = REQUEST_ID,
    type: str = "ping",
    sender: str = SENDER,
    recipient: str = RECIPIENT,
    created: int = CREATED,
    lifetime: int = LIFETIME,
    seq: int = 1,
    reply_to: ReplyRef | None = None,
) -> Header:
    return Header(
        id=id,
        type=type,
        sender=sender,
        recipient=recipient,
        created=created,
        expires=created + lifetime,
        seq=seq,
        reply_to=reply_to,
    )


def _seal(message: Message, by: NodeKeys, to: NodeKeys, nonce: bytes) -> SealedEnvelope:
    return seal(
        message,
        signing_key=by.signing,
        sender_encryption_key=by.encryption,
        recipient_encryption_key=to.encryption.public_key,
        nonce=nonce,
    )


def _describe_envelope(name: str, message: Message, sealed: SealedEnvelope, nonce: bytes) -> dict[str, Any]:
    # The inner document is read back out of the box, so the vector shows what was really sealed.
    to = NodeKeys(sealed.recipient)
    by = NodeKeys(sealed.sender)
    inner = nacl.public.Box(to.encryption, by.encryption.public_key).decrypt(sealed.box)
    signature = parse_json(inner)["signature"]
    return {
        "name": name,
        "sender": sealed.sender,
        "recipient": sealed.recipient,
        "header": message.header.to_dict(),
        "payload": message.payload,
        "signing_bytes_hex": message.signing_bytes().hex(),
        "signature_b64": signature,
        "inner_text": inner.decode("utf-8"),
        "box_nonce_hex": nonce.hex(),
        "box_b64": b64encode(sealed.box),
        "wire_text": sealed.to_bytes().decode("utf-8"),
        "envelope_hash_hex": sealed.hash,
        "open_at": message.header.created + 5,
    }


def envelope_vectors() -> list[dict[str, Any]]:
    nld, rou = NodeKeys(SENDER), NodeKeys(RECIPIENT)
    ping = Message(header=_header(), payload={"nonce": PING_NONCE})
    sealed_ping = _seal(ping, nld, rou, REQUEST_BOX_NONCE)
    pong = Message(
        header=_header(
            id=REPLY_ID,
            type="pong",
            sender=RECIPIENT,
            recipient=SENDER,
            created=CREATED + 1,
            seq=ping.header.seq,
            reply_to=ReplyRef(id=ping.header.id, hash=sealed_ping.hash),
        ),
        payload={"nonce": PING_NONCE},
    )
    sealed_pong = _seal(pong, rou, nld, REPLY_BOX_NONCE)
    return [
        _describe_envelope("ping_request", ping, sealed_ping, REQUEST_BOX_NONCE),
        _describe_envelope("pong_reply", pong, sealed_pong, REPLY_BOX_NONCE),
    ]


# --- (c) negative envelopes ------------------------------------------------------------------


def _negative(name: str, wire: bytes, error: str, *, open_at: int = CREATED + 5, note: str) -> dict[str, Any]:
    return {
        "name": name,
        "note": note,
        "wire_text": wire.decode("utf-8"),
        "recipient": RECIPIENT,
        "listed_sender": SENDER,
        "open_at": open_at,
        "error": error,
    }


def _non_canonical_b64(data: bytes) -> str:
    """Base64 that decodes to ``data`` but is not its canonical form: an unused low bit set."""
    text = b64encode(data)
    assert len(data) % 3, "needs padding to have unused bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = len(text.rstrip("=")) - 1
    return text[:last] + alphabet[alphabet.index(text[last]) | 1] + text[last + 1 :]


def _rewrap(sealed: SealedEnvelope, **fields: Any) -> bytes:
    wire = sealed.to_dict() | fields
    return canonical_json(wire)


def negative_vectors() -> list[dict[str, Any]]:
    nld, rou, ukr = NodeKeys(SENDER), NodeKeys(RECIPIENT), NodeKeys(THIRD)
    ping = Message(header=_header(), payload={"nonce": PING_NONCE})
    good = _seal(ping, nld, rou, NEGATIVE_BOX_NONCE)
    skew = TimePolicy().max_skew

    flipped = bytearray(good.box)
    flipped[len(flipped) // 2] ^= 0x01
    forged_signature = seal(
        ping,
        signing_key=ukr.signing,
        sender_encryption_key=nld.encryption,
        recipient_encryption_key=rou.encryption.public_key,
        nonce=NEGATIVE_BOX_NONCE,
    )
    other_box_key = seal(
        ping,
        signing_key=nld.signing,
        sender_encryption_key=ukr.encryption,
        recipient_encryption_key=rou.encryption.public_key,
        nonce=NEGATIVE_BOX_NONCE,
    )
    to_third = _seal(
        Message(header=_header(recipient=THIRD), payload=ping.payload), nld, rou, NEGATIVE_BOX_NONCE
    )
    claims_third = _seal(
        Message(header=_header(sender=THIRD), payload=ping.payload), nld, rou, NEGATIVE_BOX_NONCE
    )
    too_long = _seal(
        Message(header=_header(lifetime=TimePolicy().max_lifetime + 1), payload=ping.payload),
        nld,
        rou,
        NEGATIVE_BOX_NONCE,
    )
    wire = good.to_bytes()
    return [
        _negative(
            "flipped_box_byte",
            _rewrap(good, box=b64encode(bytes(flipped))),
            "decryption_failed",
            note="one bit of the ciphertext flipped",
        ),
        _negative(
            "signed_by_another_key",
            forged_signature.to_bytes(),
            "bad_signature",
            note=f"encrypted with {SENDER}'s key but signed with {THIRD}'s identity key",
        ),
        _negative(
            "encrypted_by_another_key",
            other_box_key.to_bytes(),
            "decryption_failed",
            note=f"signed by {SENDER} but encrypted with {THIRD}'s X25519 key",
        ),
        _negative(
            "outer_recipient_is_another_node",
            _rewrap(good, recipient=THIRD),
            "wrong_recipient",
            note=f"the clear recipient is {THIRD}; refused before decryption",
        ),
        _negative(
            "signed_recipient_is_another_node",
            _rewrap(to_third, recipient=RECIPIENT),
            "wrong_recipient",
            note=f"the signed header names {THIRD}; the clear recipient was changed to {RECIPIENT}",
        ),
        _negative(
            "signed_sender_differs",
            _rewrap(claims_third, sender=SENDER),
            "sender_mismatch",
            note=f"signed and encrypted with {SENDER}'s keys, but the signed header names {THIRD}",
        ),
        _negative(
            "expired",
            wire,
            "expired_envelope",
            open_at=CREATED + LIFETIME + skew + 1,
            note="opened one second after expires + allowed skew",
        ),
        _negative(
            "future_dated",
            wire,
            "future_dated",
            open_at=CREATED - skew - 1,
            note="opened one second before created - allowed skew",
        ),
        _negative(
            "lifetime_too_long",
            too_long.to_bytes(),
            "expired_envelope",
            note="expires - created is one second over the maximum lifetime",
        ),
        _negative(
            "unsupported_version",
            _rewrap(good, palermo=PROTOCOL_VERSION + 1),
            "unsupported_version",
            note="the clear protocol version is not 1",
        ),
        _negative("truncated", wire[:-10], "malformed_envelope", note="wire bytes cut short"),
        _negative(
            "non_canonical_base64",
            _rewrap(good, box=_non_canonical_b64(good.box)),
            "malformed_envelope",
            note="box decodes, but an unused bit of its last base64 character is set",
        ),
        _negative(
            "box_not_base64",
            _rewrap(good, box="*" + b64encode(good.box)[1:]),
            "malformed_envelope",
            note="box holds a character outside the RFC 4648 section 4 alphabet",
        ),
    ]


# --- output ----------------------------------------------------------------------------------


def build_vectors() -> dict[str, Any]:
    """All vectors as one JSON-ready object."""
    policy = TimePolicy()
    return {
        "description": (
            "Golden vectors of the Palermo wire format (protocol/SPEC.md). Generated by "
            "scripts/gen_vectors.py from fixed test keys; never use these keys elsewhere."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "signing_context_hex": SIGNING_CONTEXT.hex(),
        "time_policy": {"max_skew": policy.max_skew, "max_lifetime": policy.max_lifetime},
        "keys": {node_id: NodeKeys(node_id).describe() for node_id in SEEDS},
        "canonical": canonical_vectors(),
        "envelopes": envelope_vectors(),
        "refused_envelopes": negative_vectors(),
    }


def render(vectors: dict[str, Any]) -> str:
    """The file's exact text: sorted keys, two-space indent, UTF-8, trailing newline."""
    return json.dumps(vectors, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is out of date")
    args = parser.parse_args(argv)
    text = render(build_vectors())
    if args.check:
        current = VECTORS_PATH.read_text(encoding="utf-8") if VECTORS_PATH.exists() else ""
        if current != text:
            print(f"{VECTORS_PATH} is out of date; run: python scripts/gen_vectors.py", file=sys.stderr)
            return 1
        print(f"{VECTORS_PATH} is up to date")
        return 0
    VECTORS_PATH.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
