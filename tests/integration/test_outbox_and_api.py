"""The durable outbox (retries, backoff, once-only delivery) and the REST API's roles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from federation import Federation, build_federation

from node.services.outbox import deliver_due, enqueue, list_messages
from node.services.users import add_user, revoke_user


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    return build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)


def _status(fed: Federation, message_id: str) -> dict:
    return next(m for m in list_messages(fed.nodes["nld"]) if m["message_id"] == message_id)


def test_outbox_retries_with_backoff_then_delivers_once(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    rou_url = fed.nodes["rou"].settings.url
    fed.transport.down.add(rou_url)
    message_id = enqueue(nld, "rou", "ping", {"nonce": "aa" * 16})
    report = deliver_due(nld)
    assert report.to_dict() == {"delivered": 0, "retried": 1, "failed": 0}
    first = _status(fed, message_id)
    assert first["status"] == "pending" and first["last_error"] == "peer_unreachable"
    assert first["next_attempt_at"] == fed.clock() + nld.settings.outbox_backoff_seconds
    # not due yet: nothing is attempted
    assert deliver_due(nld).to_dict() == {"delivered": 0, "retried": 0, "failed": 0}
    fed.clock.now += nld.settings.outbox_backoff_seconds
    deliver_due(nld)
    assert (
        _status(fed, message_id)["next_attempt_at"] == fed.clock() + 2 * nld.settings.outbox_backoff_seconds
    )
    fed.transport.down.clear()
    fed.clock.now += 3600
    assert deliver_due(nld).delivered == 1
    assert _status(fed, message_id)["status"] == "delivered"
    assert deliver_due(nld).to_dict() == {"delivered": 0, "retried": 0, "failed": 0}


def test_outbox_keeps_order_per_peer(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    ids = [enqueue(nld, "rou", "ping", {"nonce": f"{i:032x}"}) for i in range(3)]
    assert deliver_due(nld).delivered == 3
    from node.services.exchange_log import recent_entries

    received = [
        e["message_id"]
        for e in reversed(recent_entries(fed.nodes["rou"], limit=100))
        if e["direction"] == "in"
    ]
    assert received == ids


def test_outbox_counts_a_replayed_retry_as_delivered(fed: Federation) -> None:
    """The peer got our message but its answer was lost: the retry is refused as a replay."""
    nld = fed.nodes["nld"]
    message_id = enqueue(nld, "rou", "ping", {"nonce": "bb" * 16})
    real = fed.transport.routes[fed.nodes["rou"].settings.url]

    def lose_answer(body: bytes):  # type: ignore[no-untyped-def]
        real(body)
        from node.errors import TransportError

        raise TransportError("lost", code="peer_timeout")

    fed.transport.routes[fed.nodes["rou"].settings.url] = lose_answer
    assert deliver_due(nld).retried == 1
    fed.transport.routes[fed.nodes["rou"].settings.url] = real
    fed.clock.now += 60
    assert deliver_due(nld).delivered == 1
    row = _status(fed, message_id)
    assert (row["status"], row["last_error"]) == ("delivered", "replayed_message")


def test_outbox_refuses_unknown_peer(fed: Federation) -> None:
    from node.errors import OperatorError

    with pytest.raises(OperatorError) as raised:
        enqueue(fed.nodes["nld"], "zzz", "ping", {"nonce": "cc" * 16})
    assert raised.value.code == "unknown_peer"


def test_health_needs_no_token(fed: Federation) -> None:
    response = fed.clients["nld"].get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["node_id"] == "nld" and body["version"]


def test_rest_api_roles(fed: Federation) -> None:
    node, client = fed.nodes["nld"], fed.clients["nld"]
    _, admin = add_user(node, "ada", "admin")
    _, analyst = add_user(node, "ann", "analyst")
    assert client.get("/api/v1/status").get_json()["error"] == "unauthorized"
    assert client.get("/api/v1/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/api/v1/status", headers={"Authorization": f"Bearer {analyst}"})
    assert ok.status_code == 200 and ok.get_json()["user"] == {"name": "ann", "role": "analyst"}
    denied = client.post("/api/v1/peers/ping", headers={"Authorization": f"Bearer {analyst}"}, json={})
    assert (denied.status_code, denied.get_json()["error"]) == (403, "forbidden")
    pinged = client.post(
        "/api/v1/peers/ping", headers={"Authorization": f"Bearer {admin}"}, json={"peers": ["rou"]}
    )
    assert pinged.status_code == 200 and pinged.get_json()["results"][0]["ok"] is True
    revoke_user(node, "ann")
    assert client.get("/api/v1/status", headers={"Authorization": f"Bearer {analyst}"}).status_code == 401


def test_rest_api_malformed_json_is_a_400_without_parser_detail(fed: Federation) -> None:
    _, admin = add_user(fed.nodes["nld"], "ada", "admin")
    response = fed.clients["nld"].post(
        "/api/v1/peers/ping",
        headers={"Authorization": f"Bearer {admin}"},
        data=b'{"peers": [',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "malformed_json", "message": "the request body is not valid JSON"}


def test_users_tokens_are_stored_hashed(fed: Federation) -> None:
    from sqlalchemy import select

    from node.storage.models.exchange import User

    _, token = add_user(fed.nodes["nld"], "ada", "admin")
    with fed.nodes["nld"].db.transaction() as s:
        stored = s.execute(select(User.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64
