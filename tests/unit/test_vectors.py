"""The golden vectors in protocol/vectors/envelope.json (protocol/SPEC.md, section 9).

The file must be exactly what scripts/gen_vectors.py writes, and every vector must hold when
checked both through the protocol package and with bare PyNaCl primitives, as another
implementation would check it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import nacl.bindings
import nacl.public
import nacl.signing
import pytest

from protocol.canonical import canonical_json, parse_json
from protocol.envelope import SIGNING_CONTEXT, SealedEnvelope, SenderKeys, TimePolicy, open_envelope
from protocol.errors import MalformedError, ProtocolError
from protocol.messages import check_payload

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "protocol" / "vectors" / "envelope.json"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_vectors", ROOT / "scripts" / "gen_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_vectors", module)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
KEYS: dict[str, dict[str, str]] = VECTORS["keys"]


def test_committed_file_is_what_the_script_writes() -> None:
    assert VECTORS_FILE.read_text(encoding="utf-8") == GENERATOR.render(GENERATOR.build_vectors())


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "envelope.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(GENERATOR, "VECTORS_PATH", stale)
    assert GENERATOR.main(["--check"]) == 1
    assert GENERATOR.main([]) == 0
    assert GENERATOR.main(["--check"]) == 0


def test_file_format() -> None:
    text = VECTORS_FILE.read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(VECTORS, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_vector_set_is_complete() -> None:
    assert VECTORS["signing_context_hex"] == SIGNING_CONTEXT.hex()
    assert VECTORS["time_policy"] == {"max_skew": 120, "max_lifetime": 3600}
    assert [e["name"] for e in VECTORS["envelopes"]] == ["ping_request", "pong_reply"]
    errors = {v["error"] for v in VECTORS["refused_envelopes"]}
    expected = {
        "decryption_failed",
        "bad_signature",
        "wrong_recipient",
        "sender_mismatch",
        "expired_envelope",
    }
    assert expected | {"future_dated", "unsupported_version", "malformed_envelope"} == errors
    names = {case["name"] for case in VECTORS["canonical"]["values"]}
    assert {"key_order", "escapes", "non_ascii_names", "nesting"} <= names


def test_keys_derive_from_their_seeds() -> None:
    for described in KEYS.values():
        signing = nacl.signing.SigningKey(bytes.fromhex(described["signing_seed_hex"]))
        assert base64.b64encode(bytes(signing.verify_key)).decode() == described["signing_public_b64"]
        public = nacl.bindings.crypto_scalarmult_base(bytes.fromhex(described["encryption_private_hex"]))
        assert base64.b64encode(public).decode() == described["encryption_public_b64"]


# --- canonical JSON --------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["canonical"]["values"], ids=lambda c: c["name"])
def test_canonical_value(case: dict[str, Any]) -> None:
    produced = canonical_json(case["input"])
    assert produced == case["canonical_text"].encode("utf-8") == bytes.fromhex(case["canonical_hex"])


@pytest.mark.parametrize("case", VECTORS["canonical"]["parsed"], ids=lambda c: c["name"])
def test_canonical_parsed(case: dict[str, Any]) -> None:
    produced = canonical_json(parse_json(case["input_text"].encode("utf-8")))
    assert produced == case["canonical_text"].encode("utf-8") == bytes.fromhex(case["canonical_hex"])


@pytest.mark.parametrize("case", VECTORS["canonical"]["refused"], ids=lambda c: c["name"])
def test_canonical_refused(case: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse_json(bytes.fromhex(case["input_hex"]))


# --- envelopes -------------------------------------------------------------------------------


def _private_encryption(node_id: str) -> nacl.public.PrivateKey:
    return nacl.public.PrivateKey(bytes.fromhex(KEYS[node_id]["encryption_private_hex"]))


def _listed(node_id: str) -> SenderKeys:
    return SenderKeys(
        verify_key=nacl.signing.VerifyKey(base64.b64decode(KEYS[node_id]["signing_public_b64"])),
        encryption_key=nacl.public.PublicKey(base64.b64decode(KEYS[node_id]["encryption_public_b64"])),
    )


@pytest.mark.parametrize("vector", VECTORS["envelopes"], ids=lambda v: v["name"])
def test_envelope_opens(vector: dict[str, Any]) -> None:
    sealed = SealedEnvelope.from_bytes(vector["wire_text"].encode("utf-8"))
    assert sealed.hash == vector["envelope_hash_hex"]
    message = open_envelope(
        sealed,
        recipient_id=vector["recipient"],
        recipient_encryption_key=_private_encryption(vector["recipient"]),
        sender=_listed(vector["sender"]),
        now=vector["open_at"],
        policy=TimePolicy(**VECTORS["time_policy"]),
    )
    assert message.header.to_dict() == vector["header"]
    assert message.payload == vector["payload"]
    assert check_payload(message.header.type, message.payload) == vector["payload"]
    assert message.signing_bytes().hex() == vector["signing_bytes_hex"]


@pytest.mark.parametrize("vector", VECTORS["envelopes"], ids=lambda v: v["name"])
def test_envelope_with_bare_primitives(vector: dict[str, Any]) -> None:
    """Check each layer as an implementation in another language would, without protocol/."""
    wire = json.loads(vector["wire_text"])
    assert wire == {
        "palermo": 1,
        "sender": vector["sender"],
        "recipient": vector["recipient"],
        "box": vector["box_b64"],
    }
    assert vector["wire_text"] == json.dumps(wire, sort_keys=True, separators=(",", ":"))
    box = base64.b64decode(vector["box_b64"], validate=True)
    assert box[:24].hex() == vector["box_nonce_hex"]
    assert hashlib.sha256(box).hexdigest() == vector["envelope_hash_hex"]

    recipient_private = bytes.fromhex(KEYS[vector["recipient"]]["encryption_private_hex"])
    sender_public = base64.b64decode(KEYS[vector["sender"]]["encryption_public_b64"])
    inner = nacl.bindings.crypto_box_open(box[24:], box[:24], sender_public, recipient_private)
    assert inner == vector["inner_text"].encode("utf-8")

    document = json.loads(inner)
    assert document == {
        "header": vector["header"],
        "payload": vector["payload"],
        "signature": vector["signature_b64"],
    }
    signed = {"header": document["header"], "payload": document["payload"]}
    signing_bytes = b"palermo/envelope/v1\n" + json.dumps(
        signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert signing_bytes.hex() == vector["signing_bytes_hex"]
    verify_key = base64.b64decode(KEYS[vector["sender"]]["signing_public_b64"])
    signature = base64.b64decode(vector["signature_b64"], validate=True)
    assert nacl.bindings.crypto_sign_open(signature + signing_bytes, verify_key) == signing_bytes
    assert document["header"]["sender"] == vector["sender"]
    assert document["header"]["recipient"] == vector["recipient"]


def test_pong_answers_the_ping() -> None:
    ping, pong = VECTORS["envelopes"]
    assert pong["header"]["reply_to"] == {"id": ping["header"]["id"], "hash": ping["envelope_hash_hex"]}
    assert pong["header"]["seq"] == ping["header"]["seq"]
    assert pong["payload"] == ping["payload"]
    assert (pong["sender"], pong["recipient"]) == (ping["recipient"], ping["sender"])


@pytest.mark.parametrize("vector", VECTORS["refused_envelopes"], ids=lambda v: v["name"])
def test_refused_envelope(vector: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as e:
        sealed = SealedEnvelope.from_bytes(vector["wire_text"].encode("utf-8"))
        open_envelope(
            sealed,
            recipient_id=vector["recipient"],
            recipient_encryption_key=_private_encryption(vector["recipient"]),
            sender=_listed(vector["listed_sender"]),
            now=vector["open_at"],
            policy=TimePolicy(**VECTORS["time_policy"]),
        )
    assert e.value.code == vector["error"]
