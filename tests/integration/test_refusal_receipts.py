"""Signed refusal receipts: a refused envelope's sender holds the refuser's signed word for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from federation import Federation, build_federation

from node.errors import RemoteRefusal
from node.services.exchange import prepare_request, send_request
from node.services.exchange_log import recent_entries
from protocol.canonical import b64decode, sha256_hex
from protocol.refusal import RefusalReceipt, verify_refusal

BAD_QUERY = {"query_id": "cd" * 16, "spec": {"measure": "victims"}}  # the handler refuses it


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    return build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)


def _out(fed: Federation, envelope_hash: str) -> dict[str, Any]:
    """nld's entries for the envelope: 'sent' when prepared, then what became of it."""
    entries = [e for e in recent_entries(fed.nodes["nld"], limit=100) if e["envelope_hash"] == envelope_hash]
    assert [e["outcome"] for e in reversed(entries)] == ["sent", "refused_by_peer"]
    return entries[0]


def test_a_request_refused_by_the_handler_carries_a_receipt_the_sender_logs(fed: Federation) -> None:
    nld, rou = fed.nodes["nld"], fed.nodes["rou"]
    prepared = prepare_request(nld, "rou", "query.request", BAD_QUERY)
    response = fed.clients["rou"].post(
        "/peer/v1/envelopes", data=prepared.sealed.to_bytes(), content_type="application/json"
    )
    body = json.loads(response.get_data())
    receipt = RefusalReceipt.from_dict(body["receipt"])
    assert response.status_code >= 400 and body["error"] == "invalid_query"
    assert (receipt.node, receipt.envelope_hash, receipt.code) == (
        "rou",
        prepared.sealed.hash,
        "invalid_query",
    )
    verify_refusal(
        receipt, public_key=bytes(rou.keys.signing.verify_key), node="rou", envelope_hash=prepared.sealed.hash
    )

    again = prepare_request(nld, "rou", "query.request", BAD_QUERY)
    with pytest.raises(RemoteRefusal):
        from node.services.exchange import post_prepared

        post_prepared(nld, again)
    entry = _out(fed, again.sealed.hash)
    assert (entry["outcome"], entry["code"]) == ("refused_by_peer", "invalid_query")
    detail = entry["detail"]
    assert detail["receipt_key"] == sha256_hex(bytes(rou.keys.signing.verify_key))
    logged = RefusalReceipt("rou", again.sealed.hash, "invalid_query", detail["receipt_time"],
                            b64decode(detail["receipt_signature"], what="signature", length=64))  # fmt: skip
    verify_refusal(
        logged, public_key=bytes(rou.keys.signing.verify_key), node="rou", envelope_hash=again.sealed.hash
    )


def test_a_receipt_that_does_not_verify_is_not_logged(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.services.exchange as exchange

    real = exchange.sign_refusal

    def forged(*args: Any, **kwargs: Any) -> RefusalReceipt:
        good = real(*args, **kwargs)
        return RefusalReceipt(good.node, good.envelope_hash, good.code, good.time + 1, good.signature)

    monkeypatch.setattr(exchange, "sign_refusal", forged)
    with pytest.raises(RemoteRefusal):
        send_request(fed.nodes["nld"], "rou", "query.request", BAD_QUERY)
    refused = [e for e in recent_entries(fed.nodes["nld"], limit=100) if e["outcome"] == "refused_by_peer"]
    assert len(refused) == 1 and "receipt_signature" not in refused[0]["detail"]


def test_envelopes_not_addressed_to_the_node_get_no_receipt(fed: Federation) -> None:
    response = fed.clients["rou"].post("/peer/v1/envelopes", data=b"{}", content_type="application/json")
    assert response.status_code == 400 and "receipt" not in json.loads(response.get_data())


def test_the_auditor_checks_the_receipt_in_the_senders_bundle(fed: Federation, tmp_path: Path) -> None:
    from node.services.audit_bundle import export_bundle
    from protocol.translog.audit import verify_bundle
    from protocol.translog.bundle import read_lines

    with pytest.raises(RemoteRefusal):
        send_request(fed.nodes["nld"], "rou", "query.request", BAD_QUERY)
    path = tmp_path / "nld.bundle"
    export_bundle(fed.nodes["nld"], path, witness=False)
    report = verify_bundle(list(read_lines([path.read_bytes()])))
    assert report.ok, report.problems
    assert report.receipts == {"verified": 1, "unchecked": 0}
