"""``palermo query run|list|show`` and ``/api/v1/queries``: what analysts drive, and what they may not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from federation import Federation, build_federation, load_synthetic

from node.cli import cli
from node.services.users import add_user

SPEC = {"title": "exploitation by sex", "measure": "victims", "dimensions": ["exploitation_group", "sex"],
        "privacy": {"rho": "0.05"}}  # fmt: skip


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Federation:
    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)
    load_synthetic(fed, tmp_path, ["nld", "rou"], 200, seed=11, overlap=0.2)
    return fed


def _token(fed: Federation, role: str) -> dict[str, str]:
    _, token = add_user(fed.nodes["nld"], f"user-{role}", role)
    return {"Authorization": f"Bearer {token}"}


def test_rest_run_list_and_show(fed: Federation) -> None:
    client, analyst = fed.clients["nld"], _token(fed, "analyst")
    response = client.post("/api/v1/queries", json={"spec": SPEC, "peers": "all"}, headers=analyst)
    assert response.status_code == 200, response.get_json()
    run = response.get_json()
    assert [c["country"] for c in run["table"]["countries"]] == ["NLD", "ROU"]
    assert run["title"] == "exploitation by sex" and len(run["table"]["cells"]) == 15
    listed = client.get("/api/v1/queries", headers=_token(fed, "auditor")).get_json()["queries"]
    assert [q["query_id"] for q in listed] == [run["query_id"]]
    shown = client.get(f"/api/v1/queries/{run['query_id']}", headers=analyst).get_json()
    assert shown["table"] == run["table"]
    missing = client.get("/api/v1/queries/" + "0" * 32, headers=analyst)
    assert (missing.status_code, missing.get_json()["error"]) == (404, "unknown_query")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"spec": {**SPEC, "dimensions": ["shoe_size"]}, "peers": "all"}, "invalid_query"),
        ({"spec": {**SPEC, "privacy": {"rho": "-1"}}, "peers": "all"}, "invalid_query"),
        ({"spec": SPEC, "peers": ["nowhere"]}, "unknown_peer"),
        ({"spec": SPEC, "peers": 7}, "invalid_request"),
        ({"peers": "all"}, "invalid_query"),
    ],
)
def test_rest_refuses_bad_requests_and_asks_nobody(fed: Federation, body: dict[str, Any], code: str) -> None:
    response = fed.clients["nld"].post("/api/v1/queries", json=body, headers=_token(fed, "analyst"))
    assert response.status_code in (400, 404) and response.get_json()["error"] == code
    listed = fed.clients["nld"].get("/api/v1/queries", headers=_token(fed, "auditor")).get_json()["queries"]
    assert listed == []


def test_rest_roles(fed: Federation) -> None:
    client = fed.clients["nld"]
    assert client.post("/api/v1/queries", json={"spec": SPEC}).status_code == 401
    assert (
        client.post("/api/v1/queries", json={"spec": SPEC}, headers=_token(fed, "auditor")).status_code == 403
    )
    assert client.get("/api/v1/queries", headers=_token(fed, "ingest")).status_code == 403


def test_cli_run_list_show(fed: Federation, tmp_path: Path) -> None:
    """The CLI opens the node from its home (HTTP transport), so it asks this node only here."""
    home = str(fed.nodes["nld"].settings.home)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(SPEC))
    runner = CliRunner()
    text = runner.invoke(cli, ["--home", home, "query", "run", "--spec", str(spec_file), "--peers", "nld"])
    assert text.exit_code == 0, text.output
    assert (
        "exploitation by sex" in text.output
        and "95 % interval" in text.output
        and "NLD (nld): answered" in text.output
    )
    done = runner.invoke(
        cli, ["--home", home, "query", "run", "--spec", str(spec_file), "--peers", "nld", "--json"]
    )
    run = json.loads(done.stdout)
    assert run["outcomes"][0]["cached"] is True  # the same query again: the release cache
    listed = json.loads(runner.invoke(cli, ["--home", home, "query", "list", "--json"]).stdout)["queries"]
    assert len(listed) == 2 and listed[0]["answered"] == ["nld"]
    shown = runner.invoke(cli, ["--home", home, "query", "show", run["query_id"], "--rows", "3"])
    assert shown.exit_code == 0 and "more cells with smaller totals" in shown.output


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("{not json", "invalid_query"),
        (json.dumps({**SPEC, "measure": "money"}), "invalid_query"),
        (None, "unreadable_file"),
    ],
)
def test_cli_refuses_bad_files_with_a_clear_error(
    fed: Federation, tmp_path: Path, content: str | None, code: str
) -> None:
    spec_file = tmp_path / "spec.json"
    if content is not None:
        spec_file.write_text(content)
    home = str(fed.nodes["nld"].settings.home)
    result = CliRunner().invoke(
        cli, ["--home", home, "query", "run", "--spec", str(spec_file), "--peers", "all", "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == code
