"""``palermo budget show`` and ``GET /api/v1/budget`` on SQLite and PostgreSQL.

Both render ``budget_summary``; the tests check that they show the ledger's figures, narrow to
one peer, and that the endpoint admits analysts and auditors only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from node.app import create_app
from node.cli import COMMANDS, cli
from node.context import NodeContext, open_node
from node.query.ledger import budget_summary, epsilon_at, release
from node.services.users import add_user
from protocol.query.privacy import NANO

# Adds /api/v1/budget to rest_api; must run before any app registers the blueprint (at collection).
importlib.import_module("node.app.budget_api")

NODE_ID = "nld-police"
CENTI = NANO // 100


def charge(node: NodeContext, peer: str, name: str, rho_nano: int, msg: int) -> None:
    release(
        node,
        peer=peer,
        query_hash=hashlib.sha256(name.encode()).hexdigest(),
        spec={"query": name},
        measure="count",
        dimensions=["country", "sector"],
        rho_nano=rho_nano,
        message_id=f"{msg:032x}",
        draw=lambda: {"cells": [], "query": name},
    )


@pytest.fixture
def home(make_home: Callable[..., Path], database_url: str | None) -> Path:
    return make_home(NODE_ID, "NLD", database_url=database_url)


@pytest.fixture
def node(home: Path) -> Iterator[NodeContext]:
    """A node with three releases this period: two for nl-focal, one for its own analysts."""
    ctx = open_node(home)
    charge(ctx, "nl-focal", "a", 5 * CENTI, 1)
    charge(ctx, "nl-focal", "b", 3 * CENTI, 2)
    charge(ctx, NODE_ID, "c", 2 * CENTI, 3)
    yield ctx
    ctx.close()


@pytest.fixture
def palermo(monkeypatch: pytest.MonkeyPatch, home: Path) -> Callable[..., tuple[int, str]]:
    """Run ``palermo --home HOME ...`` with the budget group registered for this test."""
    monkeypatch.setitem(COMMANDS, "budget", ("budget", "budget_group"))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--home", str(home), *args])
        return result.exit_code, result.output

    return run


def test_cli_show_prints_caps_spending_and_releases(node: NodeContext, palermo: Callable) -> None:
    code, out = palermo("budget", "show")
    assert code == 0, out
    period = budget_summary(node)["period"]
    eps = lambda nano: f"{round(epsilon_at(nano, 1e-7), 4):g}"  # noqa: E731
    lines = out.splitlines()
    assert lines[0] == f"privacy budget for {period} (one month; epsilon at delta 1e-07)"
    assert lines[1] == (
        f"  caps        per peer rho 0.5 (epsilon {eps(NANO // 2)}), all peers rho 1 (epsilon {eps(NANO)}), "
        f"per query rho 0.1 (epsilon {eps(10 * CENTI)})"
    )
    assert lines[2] == (
        f"  all peers   spent rho 0.1 (epsilon {eps(10 * CENTI)}) in 3 release(s), "
        f"left rho 0.9 (epsilon {eps(90 * CENTI)})"
    )
    peer_rows = [line.split() for line in lines if line.startswith(("nl-focal", NODE_ID))]
    assert peer_rows[:2] == [
        ["nl-focal", "0.5", "0.08", "0.42", eps(42 * CENTI), "2"],
        [NODE_ID, "0.5", "0.02", "0.48", eps(48 * CENTI), "1"],
    ]
    releases = [line.split() for line in lines if "country,sector" in line]
    assert [(r[2], r[5]) for r in releases] == [(NODE_ID, "0.02"), ("nl-focal", "0.03"), ("nl-focal", "0.05")]


def test_cli_show_json_is_the_summary_and_can_be_narrowed(node: NodeContext, palermo: Callable) -> None:
    code, out = palermo("budget", "show", "--json")
    assert code == 0 and json.loads(out) == budget_summary(node)
    code, out = palermo("budget", "show", "--peer", "nl-focal", "--json")
    narrowed = json.loads(out)
    assert code == 0 and [p["peer"] for p in narrowed["peers"]] == ["nl-focal"]
    assert [r["rho"] for r in narrowed["releases"]] == ["0.03", "0.05"]
    code, out = palermo("budget", "show", "--peer", "ro-anitp")
    assert code == 0 and "no releases in this period" in out and "ro-anitp" in out


def test_cli_show_with_nothing_spent(home: Path, palermo: Callable) -> None:
    code, out = palermo("budget", "show")
    assert code == 0
    assert "no peer has spent anything in this period" in out and "no releases in this period" in out


def test_cli_refuses_a_malformed_peer_id(node: NodeContext, palermo: Callable) -> None:
    code, out = palermo("budget", "show", "--peer", "NOT A NODE", "--json")
    assert code == 1 and json.loads(out)["error"] == "invalid_peer"


@pytest.fixture
def client(node: NodeContext) -> FlaskClient:
    return create_app(node.settings, node=node).test_client()


def test_api_budget_for_analysts_and_auditors(node: NodeContext, client: FlaskClient) -> None:
    _, analyst = add_user(node, "ann", "analyst")
    _, auditor = add_user(node, "aud", "auditor")
    _, admin = add_user(node, "ada", "admin")
    for token in (analyst, auditor, admin):
        response = client.get("/api/v1/budget", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.get_json() == budget_summary(node)
    narrowed = client.get("/api/v1/budget?peer=nl-focal", headers={"Authorization": f"Bearer {analyst}"})
    body = narrowed.get_json()
    assert [p["peer"] for p in body["peers"]] == ["nl-focal"] and body["peers"][0]["spent"]["rho"] == "0.08"
    assert body["global"]["spent"]["rho"] == "0.1" and len(body["releases"]) == 2
    bad = client.get("/api/v1/budget?peer=x%20y", headers={"Authorization": f"Bearer {analyst}"})
    assert (bad.status_code, bad.get_json()["error"]) == (400, "invalid_peer")


def test_api_budget_refuses_no_token_and_the_ingest_role(node: NodeContext, client: FlaskClient) -> None:
    _, ingest = add_user(node, "ina", "ingest")
    missing = client.get("/api/v1/budget")
    assert (missing.status_code, missing.get_json()["error"]) == (401, "unauthorized")
    unknown = client.get("/api/v1/budget", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    denied = client.get("/api/v1/budget", headers={"Authorization": f"Bearer {ingest}"})
    assert (denied.status_code, denied.get_json()["error"]) == (403, "forbidden")
