"""Joint queries between real node apps: answers, the combined table, the cache, and every refusal.

The answering node ("rou") is the first node of the federation, so it runs on the parametrised
database (SQLite and PostgreSQL); the asker ("nld") and a third country ("ukr") run on SQLite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from federation import Federation, build_federation, load_synthetic
from sqlalchemy import func, select

from node.errors import RemoteRefusal
from node.query import responder
from node.query.count import count_cells
from node.query.frame import current_frame
from node.query.runs import list_queries, run_query, show_query
from node.services.exchange import prepare_request, send_request
from node.services.exchange_log import recent_entries
from node.storage.models.queries import PrivacyCharge
from node.transport import PeerResponse
from protocol.query.spec import QuerySpec, parse_spec

FLOW = {"measure": "victims", "dimensions": ["exploitation_group", "sex"], "privacy": {"rho": "0.05"}}


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Federation:
    fed = build_federation(
        make_home, [("rou", "ROU"), ("nld", "NLD"), ("ukr", "UKR")], database_url=database_url
    )
    load_synthetic(fed, tmp_path, ["rou", "nld", "ukr"], 300, seed=5, overlap=0.2)
    return fed


def _charges(fed: Federation, node_id: str = "rou") -> tuple[int, int]:
    with fed.nodes[node_id].db.read() as session:
        row = session.execute(select(func.count(), func.coalesce(func.sum(PrivacyCharge.rho_nano), 0))).one()
        return int(row[0]), int(row[1])


def _truth(fed: Federation, spec: QuerySpec) -> list[int]:
    totals = [0] * spec.cells
    for node in fed.nodes.values():
        for i, value in enumerate(count_cells(current_frame(node), spec).tolist()):
            totals[i] += value
    return totals


def test_a_joint_query_combines_every_country_within_its_error(fed: Federation) -> None:
    spec = parse_spec({**FLOW, "title": "exploitation by sex"})
    result = run_query(fed.nodes["nld"], spec, "all", by="test")
    assert sorted(o["country"] for o in result["outcomes"] if o["status"] == "answered") == [
        "NLD",
        "ROU",
        "UKR",
    ]
    assert result["left_out"] == []
    table = result["table"]
    assert len(table["cells"]) == spec.cells == 15
    truth = _truth(fed, spec)
    assert sum(truth) > 100  # the test data has victims to count
    se = table["total_se"]
    expected_se = math.sqrt(3) * math.sqrt(spec.cells_per_unit) / math.sqrt(2 * 0.05)
    assert math.isclose(se, expected_se, rel_tol=1e-3)
    for cell, true_total in zip(table["cells"], truth, strict=True):
        assert cell["total"] == sum(cell["values"])
        assert abs(cell["total"] - true_total) <= 6 * se  # fails with probability ~1e-9 per cell
        assert cell["ci95"][0] < cell["total"] < cell["ci95"][1]
    noisy = [cell["total"] for cell in table["cells"]]
    assert noisy != truth  # noise was added
    # stored, listable and re-openable without asking again
    assert list_queries(fed.nodes["nld"])[0]["query_id"] == result["query_id"]
    assert show_query(fed.nodes["nld"], result["query_id"])["table"] == table
    # every country charged its own ledger once: rou for nld
    assert _charges(fed) == (1, 50_000_000)


def test_the_same_query_again_is_answered_from_the_cache_at_no_cost(fed: Federation) -> None:
    spec = parse_spec(FLOW)
    first = run_query(fed.nodes["nld"], spec, ["rou"], by="test")
    spent = _charges(fed)
    again = run_query(fed.nodes["nld"], parse_spec({**FLOW, "title": "same question"}), ["rou"], by="test")
    assert _charges(fed) == spent

    def rou(run: dict[str, Any]) -> dict[str, Any]:
        return next(o for o in run["outcomes"] if o["node_id"] == "rou")

    def values(run: dict[str, Any]) -> list[int]:
        column = [x["node_id"] for x in run["table"]["countries"]].index("rou")
        return [cell["values"][column] for cell in run["table"]["cells"]]

    assert (rou(first)["cached"], rou(again)["cached"]) == (False, True)
    assert values(first) == values(again)  # the same noise, never fresh noise to average away


def test_a_spent_budget_is_refused_with_what_is_left_and_left_out(fed: Federation) -> None:
    fed.set_setting("rou", budget_peer_caps={"nld": 0.07})
    run_query(fed.nodes["nld"], parse_spec(FLOW), "all", by="test")
    spent = _charges(fed)
    other = parse_spec({**FLOW, "dimensions": ["age_group"]})
    result = run_query(fed.nodes["nld"], other, "all", by="test")
    refused = [o for o in result["left_out"] if o["node_id"] == "rou"]
    assert refused and refused[0]["code"] == "budget_exhausted" and "0.02" in refused[0]["message"]
    assert [c["country"] for c in result["table"]["countries"]] == ["NLD", "UKR"]
    assert _charges(fed) == spent


def test_a_query_over_the_limit_is_refused_and_charges_nothing(fed: Federation) -> None:
    spec = parse_spec({**FLOW, "privacy": {"rho": "0.2"}})
    with pytest.raises(RemoteRefusal) as raised:
        send_request(
            fed.nodes["nld"], "rou", "query.request", {"query_id": "ab" * 16, "spec": spec.to_wire()}
        )
    assert raised.value.code == "query_over_limit" and "0.1" in raised.value.message
    assert _charges(fed) == (0, 0)


@pytest.mark.parametrize(
    "wire",
    [
        {"measure": "victims"},
        {**parse_spec(FLOW).to_wire(), "dimensions": ["sex", "age_group", "sector", "year"]},
        {**parse_spec(FLOW).to_wire(), "dimensions": ["shoe_size"]},
        {**parse_spec(FLOW).to_wire(), "privacy": {"rho": "-1"}},
        {**parse_spec(FLOW).to_wire(), "privacy": {"rho": "1000"}},
        {**parse_spec(FLOW).to_wire(), "bounds": {}},
        {**parse_spec(FLOW).to_wire(), "plan": "import os"},
    ],
)
def test_an_invalid_query_is_refused_logged_and_charges_nothing(
    fed: Federation, wire: dict[str, Any]
) -> None:
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "rou", "query.request", {"query_id": "ab" * 16, "spec": wire})
    assert raised.value.code == "invalid_query"
    newest = recent_entries(fed.nodes["rou"], limit=1)[0]
    assert (newest["outcome"], newest["code"], newest["message_type"]) == (
        "refused",
        "invalid_query",
        "query.request",
    )
    assert _charges(fed) == (0, 0)


def test_a_replayed_query_envelope_is_refused_and_charged_once(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    prepared = prepare_request(
        nld, "rou", "query.request", {"query_id": "cd" * 16, "spec": parse_spec(FLOW).to_wire()}
    )
    post = fed.transport.routes[fed.nodes["rou"].settings.url.rstrip("/")]
    first = post(prepared.sealed.to_bytes())
    assert first.status == 200
    second = post(prepared.sealed.to_bytes())
    assert second.status == 409 and b"replayed_message" in second.body
    assert _charges(fed) == (1, 50_000_000)


def test_an_answer_sent_unasked_is_refused(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    answer = {"query_id": "ab" * 16, "spec_hash": "00" * 32, "period": "2026-11", "mechanism": "discrete_gaussian",
              "rho": "0.05", "scale": "3.2", "l2_sensitivity": "1", "cells": [1], "cached": False, "released_at": 1}  # fmt: skip
    prepared = prepare_request(nld, "rou", "query.answer", answer)
    response = fed.transport.routes[fed.nodes["rou"].settings.url.rstrip("/")](prepared.sealed.to_bytes())
    assert response.status == 422 and b"unexpected_reply" in response.body


def test_an_answer_claiming_less_noise_than_its_loss_is_rejected(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = responder.answer

    def cheating(node: Any, spec: QuerySpec, **kwargs: Any) -> dict[str, Any]:
        payload = honest(node, spec, **kwargs)
        return {**payload, "scale": "0.5"} if node.node_id == "rou" else payload

    monkeypatch.setattr(responder, "answer", cheating)
    result = run_query(fed.nodes["nld"], parse_spec(FLOW), "all", by="test")
    rejected = next(o for o in result["left_out"] if o["node_id"] == "rou")
    assert (rejected["status"], rejected["code"]) == ("rejected", "answer_mismatch")
    assert "ROU" not in [c["country"] for c in result["table"]["countries"]]
    kinds = [(e["kind"], e["outcome"], e["code"]) for e in recent_entries(fed.nodes["nld"], limit=10)]
    assert ("query_answer", "rejected", "answer_mismatch") in kinds


def test_an_answer_with_a_broken_signature_is_rejected(fed: Federation) -> None:
    url = fed.nodes["rou"].settings.url
    honest = fed.transport.routes[url.rstrip("/")]

    def tamper(body: bytes) -> PeerResponse:
        response = honest(body)
        data = bytearray(response.body)
        at = data.index(b'"box":"') + 20
        data[at] = ord("A") if data[at] != ord("A") else ord("B")
        return PeerResponse(response.status, bytes(data))

    fed.transport.register(url, tamper)
    result = run_query(fed.nodes["nld"], parse_spec(FLOW), "all", by="test")
    rejected = next(o for o in result["left_out"] if o["node_id"] == "rou")
    assert rejected["status"] == "rejected" and rejected["code"] in (
        "decryption_failed",
        "bad_signature",
        "malformed_envelope",
    )


def test_a_silent_country_is_named_and_left_out(fed: Federation) -> None:
    from node.errors import TransportError

    def down(_body: bytes) -> PeerResponse:
        raise TransportError("connection refused", code="peer_unreachable")

    fed.transport.register(fed.nodes["ukr"].settings.url, down)
    result = run_query(fed.nodes["nld"], parse_spec(FLOW), "all", by="test")
    silent = next(o for o in result["left_out"] if o["node_id"] == "ukr")
    assert silent["status"] == "no_answer"
    assert [c["country"] for c in result["table"]["countries"]] == ["NLD", "ROU"]


def test_parallel_queries_never_overspend(fed: Federation) -> None:
    """Many different queries at once from one peer: exactly as many as the cap allows are charged."""
    fed.set_setting("rou", budget_peer_caps={"nld": 0.25}, budget_global_rho=10.0)
    specs = [parse_spec({**FLOW, "years": [2000 + i, 2030]}) for i in range(16)]

    def ask(spec: QuerySpec) -> str:
        try:
            send_request(
                fed.nodes["nld"],
                "rou",
                "query.request",
                {"query_id": f"{len(spec.hash):02x}" * 16, "spec": spec.to_wire()},
            )
        except RemoteRefusal as e:
            return e.code
        return "answered"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(ask, specs))
    assert outcomes.count("answered") == 5, outcomes
    assert set(outcomes) == {"answered", "budget_exhausted"}
    assert _charges(fed) == (5, 250_000_000)


def test_own_analysts_are_charged_to_the_global_cap(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    fed.set_setting("nld", budget_global_rho=0.05)
    first = run_query(nld, parse_spec(FLOW), ["rou"], by="test")
    assert [c["country"] for c in first["table"]["countries"]] == ["NLD", "ROU"]
    second = run_query(nld, parse_spec({**FLOW, "dimensions": ["sex"]}), ["rou"], by="test")
    own = next(o for o in second["left_out"] if o["node_id"] == "nld")
    assert own["code"] == "budget_exhausted"
