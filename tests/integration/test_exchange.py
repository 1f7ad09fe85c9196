"""Envelopes between nodes: the round trip, every refusal the issue names, the log and replay state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing
import pytest
from federation import Federation, build_federation, member_of, signed_directory
from sqlalchemy import func, select

from node.errors import OperatorError, RemoteRefusal
from node.services.channels import next_outgoing_seq
from node.services.exchange import send_request
from node.storage.models.exchange import Channel, SeenMessage
from protocol.canonical import canonical_json
from protocol.envelope import Header, Message, SealedEnvelope, seal


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    # rou, the receiver in most tests, is first, so it runs on the parametrised database
    return build_federation(
        make_home, [("rou", "ROU"), ("nld", "NLD"), ("ukr", "UKR")], database_url=database_url
    )


def _log_rows(fed: Federation, node_id: str) -> list[dict[str, Any]]:
    from node.services.exchange_log import recent_entries

    return list(reversed(recent_entries(fed.nodes[node_id], limit=1000)))


def _state(fed: Federation, node_id: str) -> tuple[int, list[tuple[str, str, int]]]:
    with fed.nodes[node_id].db.transaction() as s:
        seen = s.execute(select(func.count()).select_from(SeenMessage)).scalar_one()
        channels = [
            (c.peer, c.direction, c.last_seq)
            for c in s.execute(select(Channel).order_by(Channel.peer, Channel.direction)).scalars()
        ]
    return seen, channels


def _envelope(
    fed: Federation, *, sender: str = "nld", recipient: str = "rou", **overrides: Any
) -> SealedEnvelope:
    """A ping from ``sender`` sealed with its real keys unless overridden; takes a real seq."""
    node = fed.nodes[sender]
    with node.db.transaction() as s:
        seq = overrides.pop("seq", None) or next_outgoing_seq(s, recipient)
    now = fed.clock()
    header = Header(
        id=overrides.pop("id", node.random_bytes(16).hex()),
        type=overrides.pop("type", "ping"),
        sender=overrides.pop("header_sender", sender),
        recipient=overrides.pop("header_recipient", recipient),
        created=overrides.pop("created", now),
        expires=overrides.pop("expires", now + 300),
        seq=seq,
    )
    payload = overrides.pop("payload", {"nonce": "ab" * 16})
    target_key = (
        fed.nodes[recipient].keys.encryption.public_key
        if recipient in fed.nodes
        else overrides.pop("recipient_key")
    )
    sealed = seal(
        Message(header=header, payload=payload),
        signing_key=overrides.pop("signing_key", node.keys.signing),
        sender_encryption_key=overrides.pop("encryption_key", node.keys.encryption),
        recipient_encryption_key=target_key,
        nonce=node.random_bytes(24),
    )
    assert not overrides, overrides
    return sealed


def _post(fed: Federation, node_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
    response = fed.clients[node_id].post("/peer/v1/envelopes", data=body, content_type="application/json")
    try:
        return response.status_code, json.loads(response.get_data())
    except ValueError:
        return response.status_code, {}


def test_ping_round_trip_is_logged_on_both_sides(fed: Federation) -> None:
    exchange = send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "cd" * 16})
    assert exchange.reply.header.type == "pong"
    assert exchange.reply.payload == {"nonce": "cd" * 16}
    assert (
        exchange.reply.header.reply_to is not None
        and exchange.reply.header.reply_to.hash == exchange.request_hash
    )
    nld = [
        (e["direction"], e["outcome"], e["message_type"], e["envelope_hash"])
        for e in _log_rows(fed, "nld")
        if e["kind"] == "envelope"
    ]
    rou = [
        (e["direction"], e["outcome"], e["message_type"], e["envelope_hash"])
        for e in _log_rows(fed, "rou")
        if e["kind"] == "envelope"
    ]
    # the reply is the receipt: both sides log it with the hash of the request it answers
    for node_id in ("nld", "rou"):
        pong = next(e for e in _log_rows(fed, node_id) if e["message_type"] == "pong")
        assert pong["detail"] == {"reply_to": exchange.request_hash}
    installed = [e for e in _log_rows(fed, "rou") if e["kind"] == "directory"]
    assert [(e["outcome"], e["detail"]["version"]) for e in installed] == [("installed", 1)]
    assert nld == [
        ("out", "sent", "ping", exchange.request_hash),
        ("in", "accepted", "pong", exchange.reply_hash),
    ]
    assert rou == [
        ("in", "accepted", "ping", exchange.request_hash),
        ("out", "sent", "pong", exchange.reply_hash),
    ]


def test_sequence_numbers_increase_per_channel(fed: Federation) -> None:
    for _ in range(3):
        send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "00" * 16})
    send_request(fed.nodes["nld"], "ukr", "ping", {"nonce": "00" * 16})
    _, channels = _state(fed, "rou")
    assert ("nld", "in", 3) in channels
    _, channels = _state(fed, "nld")
    assert ("rou", "out", 3) in channels and ("ukr", "out", 1) in channels


BadCase = Callable[[Federation], bytes]


def _replace_json(body: bytes, **changes: Any) -> bytes:
    obj = json.loads(body)
    obj.update(changes)
    return json.dumps(obj).encode()


def _stranger(fed: Federation) -> bytes:
    """A node with valid-looking keys that is not in the directory."""
    stranger_sign, stranger_box = nacl.signing.SigningKey.generate(), nacl.public.PrivateKey.generate()
    sealed = _envelope(fed, header_sender="nld", signing_key=stranger_sign, encryption_key=stranger_box)
    return _replace_json(sealed.to_bytes(), sender="mallory")


BAD_INPUTS: list[tuple[str, BadCase, int, str]] = [
    ("malformed JSON", lambda f: b"{not json", 400, "malformed_envelope"),
    ("truncated JSON", lambda f: _envelope(f).to_bytes()[:-7], 400, "malformed_envelope"),
    ("not an object", lambda f: b"[1,2,3]", 400, "malformed_envelope"),
    (
        "wrong field type",
        lambda f: _replace_json(_envelope(f).to_bytes(), box=12345),
        400,
        "malformed_envelope",
    ),
    (
        "unknown outer field",
        lambda f: _replace_json(_envelope(f).to_bytes(), extra="x"),
        400,
        "malformed_envelope",
    ),
    (
        "unknown protocol version",
        lambda f: _replace_json(_envelope(f).to_bytes(), palermo=2),
        400,
        "unsupported_version",
    ),
    ("unknown sender", _stranger, 403, "unknown_sender"),
    (
        "wrong recipient (outer)",
        lambda f: _replace_json(_envelope(f, recipient="ukr").to_bytes(), recipient="rou"),
        403,
        "decryption_failed",
    ),
    (
        "wrong recipient (addressed elsewhere)",
        lambda f: _envelope(f, recipient="ukr").to_bytes(),
        403,
        "wrong_recipient",
    ),
    (
        "signed recipient differs",
        lambda f: _envelope(f, header_recipient="ukr").to_bytes(),
        403,
        "wrong_recipient",
    ),
    (
        "bad signature (wrong key)",
        lambda f: _envelope(f, signing_key=nacl.signing.SigningKey.generate()).to_bytes(),
        403,
        "bad_signature",
    ),
    (
        "encrypted by another key",
        lambda f: _envelope(f, encryption_key=nacl.public.PrivateKey.generate()).to_bytes(),
        403,
        "decryption_failed",
    ),
    ("flipped byte", lambda f: _flip(_envelope(f)), 403, "decryption_failed"),
    (
        "signed sender differs",
        lambda f: _replace_json(_envelope(f, header_sender="ukr").to_bytes(), sender="nld"),
        403,
        "sender_mismatch",
    ),
    (
        "expired",
        lambda f: _envelope(f, created=f.clock() - 1000, expires=f.clock() - 500).to_bytes(),
        400,
        "expired_envelope",
    ),
    (
        "future-dated",
        lambda f: _envelope(f, created=f.clock() + 1000, expires=f.clock() + 1300).to_bytes(),
        400,
        "future_dated",
    ),
    (
        "unknown message type",
        lambda f: _envelope(f, type="launch", payload={}).to_bytes(),
        422,
        "unknown_message_type",
    ),
    ("bad payload", lambda f: _envelope(f, payload={"nonce": 5}).to_bytes(), 422, "invalid_payload"),
    ("reply posted as a request", lambda f: _envelope(f, type="pong").to_bytes(), 422, "unexpected_reply"),
]


def _flip(sealed: SealedEnvelope) -> bytes:
    box = bytearray(sealed.box)
    box[len(box) // 2] ^= 0x01
    return SealedEnvelope(sender=sealed.sender, recipient=sealed.recipient, box=bytes(box)).to_bytes()


@pytest.mark.parametrize(("name", "make", "status", "code"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_envelope_is_refused_logged_and_changes_nothing(
    fed: Federation, name: str, make: BadCase, status: int, code: str
) -> None:
    body = make(fed)
    before = _state(fed, "rou")
    got_status, error = _post(fed, "rou", body)
    assert (got_status, error.get("error")) == (status, code)
    assert isinstance(error.get("message"), str) and error["message"]
    assert _state(fed, "rou") == before
    last = _log_rows(fed, "rou")[-1]
    assert (last["direction"], last["outcome"], last["code"]) == ("in", "refused", code)
    # the node keeps serving: a genuine ping still works
    assert send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "11" * 16}).reply.header.type == "pong"


def test_replayed_message_is_refused(fed: Federation) -> None:
    body = _envelope(fed).to_bytes()
    assert _post(fed, "rou", body)[0] == 200
    status, error = _post(fed, "rou", body)
    assert (status, error["error"]) == (409, "replayed_message")


def test_sequence_going_backwards_is_refused(fed: Federation) -> None:
    first, second = _envelope(fed), _envelope(fed)
    assert _post(fed, "rou", second.to_bytes())[0] == 200
    status, error = _post(fed, "rou", first.to_bytes())
    assert (status, error["error"]) == (409, "sequence_regressed")


def test_clock_skew_within_the_allowance_is_accepted(fed: Federation) -> None:
    skew = fed.nodes["rou"].settings.clock_skew_seconds
    body = _envelope(fed, created=fed.clock() + skew - 1, expires=fed.clock() + skew + 300).to_bytes()
    assert _post(fed, "rou", body)[0] == 200


def test_body_over_the_cap_is_refused(fed: Federation) -> None:
    fed.set_setting("rou", max_body_bytes=2048)
    status, error = _post(fed, "rou", b"{" + b" " * 4096 + b"}")
    assert (status, error["error"]) == (413, "body_too_large")


def test_expired_directory_stops_all_exchange(fed: Federation) -> None:
    fed.clock.now = fed.directory.expires + 1
    with pytest.raises(OperatorError) as raised:
        send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "22" * 16})
    assert raised.value.code == "directory_expired"
    fed.clock.now = fed.directory.expires + 1
    status, error = _post(fed, "rou", _envelope(fed).to_bytes())
    assert (status, error["error"]) == (503, "directory_expired")


def test_peer_refusal_is_reported_with_the_peers_code(fed: Federation) -> None:
    # ukr is dropped from rou's directory (version 2): rou no longer accepts ukr's envelopes
    members = [member_of(fed.nodes["nld"]), member_of(fed.nodes["rou"])]
    from node.services.directory import install_directory

    install_directory(
        fed.nodes["rou"],
        signed_directory(members, fed.governance, version=2, expires=fed.clock() + 86400),
        initial=False,
    )
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["ukr"], "rou", "ping", {"nonce": "33" * 16})
    assert raised.value.code == "unknown_sender"
    last = _log_rows(fed, "ukr")[-1]
    assert (last["direction"], last["outcome"], last["code"]) == ("out", "refused_by_peer", "unknown_sender")


def test_no_payload_or_personal_data_in_the_log(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "5a" * 16})
    for node_id in ("nld", "rou"):
        dumped = canonical_json(_log_rows(fed, node_id)).decode()
        assert "5a" * 16 not in dumped
