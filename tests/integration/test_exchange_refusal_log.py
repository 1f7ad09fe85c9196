"""What the receiver's exchange log holds for a refused request envelope.

Once the signature verified, a refusal names the message id and type (they are the sender's,
authenticated); before, only the claimed peer, the envelope hash and the size. A request the
handler refuses is one entry, ``refused`` with the handler's code, which reconcile lists against
the sender's ``sent`` entry. Work a handler commits is committed with the envelope's entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing
import pytest
from federation import Federation, build_federation

from node.context import NodeContext
from node.errors import PeerRefusal, RemoteRefusal
from node.services import exchange_log
from node.services.audit_bundle import export_bundle
from node.services.exchange import PreparedRequest, prepare_request, receive, send_request
from node.services.exchange_log import recent_entries
from node.services.handlers import HANDLERS, Handler
from protocol.envelope import Header, Message, SealedEnvelope, seal
from protocol.translog.bundle import read_lines
from protocol.translog.reconcile import reconcile

NONCE = {"nonce": "ab" * 16}
BAD_QUERY = {"query_id": "cd" * 16, "spec": {"measure": "victims"}}  # refused by the handler


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    # rou, the receiver, is first, so it runs on the parametrised database
    return build_federation(make_home, [("rou", "ROU"), ("nld", "NLD")], database_url=database_url)


def _entries_for(fed: Federation, envelope_hash: str) -> list[dict[str, Any]]:
    """rou's entries for one envelope, oldest first."""
    rows = reversed(recent_entries(fed.nodes["rou"], limit=1000))
    return [e for e in rows if e["envelope_hash"] == envelope_hash]


def _post(fed: Federation, body: bytes) -> tuple[int, str]:
    response = fed.clients["rou"].post("/peer/v1/envelopes", data=body, content_type="application/json")
    return response.status_code, json.loads(response.get_data()).get("error", "")


def _prepared(
    fed: Federation, type_name: str = "ping", payload: dict[str, Any] | None = None
) -> PreparedRequest:
    return prepare_request(fed.nodes["nld"], "rou", type_name, NONCE if payload is None else payload)


def _refused_entry(fed: Federation, sealed: SealedEnvelope, body: bytes, code: str) -> dict[str, Any]:
    """The one refused entry rou logged for ``sealed``, checked for the fields every refusal has."""
    refused = [e for e in _entries_for(fed, sealed.hash) if e["outcome"] == "refused"]
    assert len(refused) == 1, refused
    entry = refused[0]
    assert (entry["kind"], entry["direction"], entry["code"]) == ("envelope", "in", code)
    assert entry["peer"] == "nld"  # the sender named in clear (and, once verified, in the signed header)
    assert entry["size"] == len(body) and entry["detail"] == {}
    return entry


# --- refusals after the signature verified carry the authenticated id and type --------------------


def test_a_replay_is_logged_with_its_message_id_and_type(fed: Federation) -> None:
    prepared = _prepared(fed)
    body = prepared.sealed.to_bytes()
    assert _post(fed, body) == (200, "")
    assert _post(fed, body) == (409, "replayed_message")
    entry = _refused_entry(fed, prepared.sealed, body, "replayed_message")
    assert (entry["message_id"], entry["message_type"]) == (prepared.message.header.id, "ping")


def test_a_sequence_regression_is_logged_with_its_message_id_and_type(fed: Federation) -> None:
    first, second = _prepared(fed), _prepared(fed)
    assert _post(fed, second.sealed.to_bytes())[0] == 200
    body = first.sealed.to_bytes()
    assert _post(fed, body) == (409, "sequence_regressed")
    entry = _refused_entry(fed, first.sealed, body, "sequence_regressed")
    assert (entry["message_id"], entry["message_type"]) == (first.message.header.id, "ping")


@pytest.mark.parametrize(
    ("type_name", "payload", "status", "code"),
    [
        ("ping", {"nonce": 5}, 422, "invalid_payload"),
        ("launch", {}, 422, "unknown_message_type"),
        ("pong", NONCE, 422, "unexpected_reply"),
    ],
)
def test_a_verified_envelope_refused_for_its_content_is_logged_with_its_id_and_type(
    fed: Federation, type_name: str, payload: dict[str, Any], status: int, code: str
) -> None:
    prepared = _prepared(fed, type_name, payload)
    body = prepared.sealed.to_bytes()
    assert _post(fed, body) == (status, code)
    entry = _refused_entry(fed, prepared.sealed, body, code)
    assert (entry["message_id"], entry["message_type"]) == (prepared.message.header.id, type_name)


def _forged(fed: Federation, *, signing: bool) -> SealedEnvelope:
    """A ping claiming to be nld's, signed (or boxed) with a key that is not nld's."""
    nld, now = fed.nodes["nld"], fed.clock()
    header = Header(
        id="ef" * 16, type="ping", sender="nld", recipient="rou", created=now, expires=now + 300, seq=1
    )
    return seal(
        Message(header=header, payload=NONCE),
        signing_key=nacl.signing.SigningKey.generate() if signing else nld.keys.signing,
        sender_encryption_key=nld.keys.encryption if signing else nacl.public.PrivateKey.generate(),
        recipient_encryption_key=fed.nodes["rou"].keys.encryption.public_key,
        nonce=bytes(24),
    )


@pytest.mark.parametrize(
    ("created", "expires", "code"),
    [(3600, 3900, "future_dated"), (-7200, -3600, "expired_envelope"), (0, 86400 * 30, "expired_envelope")],
)
def test_a_signed_envelope_refused_for_its_times_is_logged_with_its_id_and_type(
    fed: Federation, created: int, expires: int, code: str
) -> None:
    nld, now = fed.nodes["nld"], fed.clock()
    header = Header(
        id="9a" * 16,
        type="ping",
        sender="nld",
        recipient="rou",
        created=now + created,
        expires=now + expires,
        seq=1,
    )
    sealed = seal(
        Message(header=header, payload=NONCE),
        signing_key=nld.keys.signing,
        sender_encryption_key=nld.keys.encryption,
        recipient_encryption_key=fed.nodes["rou"].keys.encryption.public_key,
        nonce=bytes(24),
    )
    body = sealed.to_bytes()
    status, refused = _post(fed, body)
    assert refused == code and status >= 400
    entry = _refused_entry(fed, sealed, body, code)
    assert (entry["message_id"], entry["message_type"]) == ("9a" * 16, "ping")  # signed: authenticated


@pytest.mark.parametrize(("signing", "code"), [(True, "bad_signature"), (False, "decryption_failed")])
def test_nothing_from_inside_an_unverified_envelope_is_logged(
    fed: Federation, signing: bool, code: str
) -> None:
    sealed = _forged(fed, signing=signing)
    body = sealed.to_bytes()
    assert _post(fed, body) == (403, code)
    entry = _refused_entry(fed, sealed, body, code)
    assert (entry["message_id"], entry["message_type"]) == ("", "")


# --- a handler's refusal is the envelope's one entry ---------------------------------------------


def test_a_request_the_handler_refuses_is_one_refused_entry(fed: Federation) -> None:
    prepared = _prepared(fed, "query.request", BAD_QUERY)
    body = prepared.sealed.to_bytes()
    assert _post(fed, body) == (422, "invalid_query")
    entries = _entries_for(fed, prepared.sealed.hash)
    assert len(entries) == 1, entries
    entry = _refused_entry(fed, prepared.sealed, body, "invalid_query")
    assert (entry["message_id"], entry["message_type"]) == (prepared.message.header.id, "query.request")
    # its id was still remembered: the same envelope again is a replay, not a second try
    assert _post(fed, body) == (409, "replayed_message")


def test_reconcile_lists_a_request_the_handler_refused(fed: Federation, tmp_path: Path) -> None:
    send_request(fed.nodes["nld"], "rou", "ping", NONCE)
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "rou", "query.request", BAD_QUERY)
    assert raised.value.code == "invalid_query"
    sent = next(e for e in recent_entries(fed.nodes["nld"]) if e["outcome"] == "sent")
    refused = _entries_for(fed, sent["envelope_hash"])
    assert [(e["outcome"], e["message_id"]) for e in refused] == [("refused", sent["message_id"])]
    lines = {}
    for node_id in ("nld", "rou"):
        path = tmp_path / f"{node_id}.bundle"
        export_bundle(fed.nodes[node_id], path)
        lines[node_id] = list(read_lines([path.read_bytes()]))
    report = reconcile(lines["nld"], lines["rou"])
    assert report.ok, report.problems
    assert [p.message for p in report.refusals] == [
        f"nld entry {sent['index']}: query.request {sent['message_id']} (envelope {sent['envelope_hash']}) "
        f"sent to rou: refused by rou: invalid_query (rou entry {refused[0]['index']})"
    ]


class _Crash(BaseException):
    """The process dying: nothing after it runs (not an Exception, so nothing catches it)."""


def _working_handler(then: BaseException | None) -> Handler:
    """A ping handler that commits some work (a log entry of its own), then raises ``then``."""

    def handle(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
        with node.db.transaction() as session:
            exchange_log.append(session, time=node.clock(), kind="test_work", outcome="done")
        if then is not None:
            raise then
        return "pong", {"nonce": message.payload["nonce"]}

    return handle


def test_work_a_handler_commits_is_committed_with_the_envelopes_entry(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(HANDLERS, "ping", _working_handler(_Crash()))
    prepared = _prepared(fed)
    with pytest.raises(_Crash):
        receive(fed.nodes["rou"], prepared.sealed.to_bytes())
    newest = recent_entries(fed.nodes["rou"], limit=2)
    assert sorted((e["kind"], e["outcome"], e["envelope_hash"]) for e in newest) == [
        ("envelope", "accepted", prepared.sealed.hash),
        ("test_work", "done", ""),
    ]


def test_a_handler_that_committed_work_and_then_refused_leaves_both_entries(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = PeerRefusal("changed its mind", code="test_refusal", http_status=409)
    monkeypatch.setitem(HANDLERS, "ping", _working_handler(refusal))
    prepared = _prepared(fed)
    assert _post(fed, prepared.sealed.to_bytes()) == (409, "test_refusal")
    entries = _entries_for(fed, prepared.sealed.hash)
    assert [(e["outcome"], e["code"]) for e in entries] == [("accepted", ""), ("refused", "test_refusal")]


def test_a_handler_that_commits_work_and_accepts_leaves_one_accepted_entry(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(HANDLERS, "ping", _working_handler(None))
    prepared = _prepared(fed)
    assert _post(fed, prepared.sealed.to_bytes())[0] == 200
    entries = _entries_for(fed, prepared.sealed.hash)
    assert [(e["outcome"], e["message_id"]) for e in entries] == [("accepted", prepared.message.header.id)]


def test_a_handler_that_fails_unexpectedly_is_one_refused_internal_error(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
        raise RuntimeError("a bug")

    monkeypatch.setitem(HANDLERS, "ping", broken)
    prepared = _prepared(fed)
    body = prepared.sealed.to_bytes()
    with pytest.raises(RuntimeError):
        receive(fed.nodes["rou"], body)
    assert len(_entries_for(fed, prepared.sealed.hash)) == 1
    entry = _refused_entry(fed, prepared.sealed, body, "internal_error")
    assert (entry["message_id"], entry["message_type"]) == (prepared.message.header.id, "ping")
