"""Matches and disclosures through the REST API and the CLI, and an initiator that meets a lying peer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from federation import Federation, build_federation, load_synthetic

from node.cli import cli
from node.errors import NodeError
from node.matching.history import list_rounds
from node.matching.rounds import run_round
from node.services import handlers
from node.services.users import add_user


@pytest.fixture
def fed(make_home: Callable[..., Path], tmp_path: Path) -> Federation:
    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")])
    load_synthetic(fed, tmp_path, ["nld", "rou"], 150, seed=11, overlap=0.4)
    return fed


def _auth(fed: Federation, node_id: str, role: str) -> dict[str, str]:
    _, token = add_user(fed.nodes[node_id], f"u-{role}", role)
    return {"Authorization": f"Bearer {token}"}


def test_matches_are_listed_and_reviewed_through_the_api(fed: Federation) -> None:
    run_round(fed.nodes["nld"], "rou")
    client, admin = fed.clients["nld"], _auth(fed, "nld", "admin")
    assert client.get("/api/v1/matches", headers=_auth(fed, "nld", "analyst")).status_code == 403
    listed = client.get("/api/v1/matches", headers=admin).get_json()["matches"]
    assert listed and {
        "match_id",
        "band",
        "score",
        "evidence",
        "status",
        "prs_PersonId",
        "cas_CaseIds",
    } <= set(listed[0])
    match_id = listed[0]["match_id"]
    bad = client.post(f"/api/v1/matches/{match_id}/review", headers=admin, json={"decision": "maybe"})
    assert bad.status_code == 400
    done = client.post(f"/api/v1/matches/{match_id}/review", headers=admin, json={"decision": "confirmed"})
    assert done.status_code == 200 and done.get_json()["status"] == "confirmed_here"
    assert client.get("/api/v1/matches/" + "0" * 32, headers=admin).status_code == 404
    rounds = client.get("/api/v1/match-rounds", headers=admin).get_json()["rounds"]
    assert rounds[0]["status"] == "done" and rounds[0]["role"] == "initiator"


def test_the_cli_runs_a_round_and_lists_matches(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    import node.cli.matching as commands

    monkeypatch.setattr(commands, "open_node_from_ctx", lambda ctx: fed.nodes["nld"])
    runner = CliRunner()
    ran = runner.invoke(cli, ["match", "run", "--peer", "rou", "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    assert summary["peer"] == "rou" and set(summary["candidates"]) == {"likely", "possible"}
    text = runner.invoke(cli, ["matches", "list"])
    assert text.exit_code == 0 and "match_id" in text.output
    listed = json.loads(runner.invoke(cli, ["matches", "list", "--json"]).output)["matches"]
    review = runner.invoke(cli, ["matches", "review", listed[0]["match_id"], "--reject", "--json"])
    assert json.loads(review.output)["status"] == "rejected"
    unknown = runner.invoke(cli, ["matches", "review", "f" * 32, "--confirm", "--json"])
    assert unknown.exit_code == 1 and json.loads(unknown.output)["error"] == "match_unknown"
    assert runner.invoke(cli, ["match", "run", "--peer", "nobody"]).exit_code == 1


def _lying(type_name: str, change: Callable[[dict[str, Any]], None], monkeypatch: pytest.MonkeyPatch) -> None:
    honest = handlers.HANDLERS[type_name]

    def lie(node: Any, message: Any) -> tuple[str, dict[str, Any]]:
        reply_type, payload = honest(node, message)
        change(payload)
        return reply_type, payload

    monkeypatch.setitem(handlers.HANDLERS, type_name, lie)


@pytest.mark.parametrize(
    ("type_name", "change", "code"),
    [
        (
            "encodings.request",
            lambda p: p["encodings"].update(epoch=p["encodings"]["epoch"] + 1),
            "encoding_wrong_epoch",
        ),
        (
            "encodings.request",
            lambda p: p["encodings"].update(rows=p["encodings"]["rows"] + 1),
            "encoding_wrong_length",
        ),
        # the peer answers with our own points as its set: its own check of our result then fails
        (
            "psi.request",
            lambda p: p.update(blinded=p["reblinded"], blinded_count=p["reblinded_count"]),
            "psi_count_mismatch",
        ),
        ("psi.result", lambda p: p["handles"].append(p["handles"][0]), "psi_bad_handles"),
    ],
)
def test_an_initiator_refuses_a_peer_that_answers_wrongly(
    fed: Federation, monkeypatch: pytest.MonkeyPatch, type_name: str, change: Any, code: str
) -> None:
    handlers.load_handlers()
    _lying(type_name, change, monkeypatch)
    with pytest.raises(NodeError) as raised:
        run_round(fed.nodes["nld"], "rou")
    assert raised.value.code == code
    latest = list_rounds(fed.nodes["nld"])[0]
    assert (latest["status"], latest["error_code"]) == ("failed", code)


def test_the_scheduler_runs_a_round_per_scheduled_peer(fed: Federation) -> None:
    from node.jobs import build_scheduler, match_with

    fed.set_setting("nld", match_schedule_hours={"rou": 12})
    scheduler = build_scheduler(fed.nodes["nld"])
    job = scheduler.get_job("match-rou")
    assert job is not None and job.trigger.interval.total_seconds() == 12 * 3600
    match_with("rou")(fed.nodes["nld"])
    assert list_rounds(fed.nodes["nld"])[0]["status"] == "done"


def test_a_second_round_with_the_same_peer_waits_for_the_first(fed: Federation) -> None:
    from node.errors import OperatorError
    from node.jobs import round_lock

    with round_lock(fed.nodes["nld"].settings.home, "rou"), pytest.raises(OperatorError) as raised:
        run_round(fed.nodes["nld"], "rou")
    assert raised.value.code == "match_round_running"


def test_matching_settings_are_read_from_their_section_and_checked(make_home: Callable[..., Path]) -> None:
    from node.errors import ConfigurationError
    from node.settings import load_settings

    home = make_home("pol", "POL")
    path = home / "palermo.toml"
    text = path.read_text()
    assert "[matching]" in text and load_settings(home, env={}).match_schedule_hours == {}
    path.write_text(text.replace("match_schedule_hours = {}", 'match_schedule_hours = { "rou" = 24 }'))
    assert load_settings(home, env={}).match_schedule_hours == {"rou": 24}
    path.write_text(text.replace("match_key_days = 90", "match_key_days = 0"))
    with pytest.raises(ConfigurationError):
        load_settings(home, env={})
