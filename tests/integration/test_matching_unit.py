"""Linkage-unit mode: a third member compares both sides' encodings without the pair key, then forgets them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from federation import Federation, build_federation, load_synthetic, true_ids
from sqlalchemy import func, select

from node.errors import RemoteRefusal
from node.matching.followup import list_matches
from node.matching.rounds import run_round
from node.services.exchange import send_request
from node.storage.models.matching import LinkageRound, LinkageRow, PeerEncoding


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Federation:
    fed = build_federation(
        make_home, [("nld", "NLD"), ("rou", "ROU"), ("ukr", "UKR")], database_url=database_url
    )
    load_synthetic(fed, tmp_path, ["nld", "rou"], 300, seed=12, overlap=0.3, include_truth=True)
    return fed


def _count(fed: Federation, node_id: str, model: object) -> int:
    with fed.nodes[node_id].db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())  # type: ignore[arg-type]


def test_a_unit_finds_the_same_matches_and_keeps_no_encodings(fed: Federation) -> None:
    summary = run_round(fed.nodes["nld"], "rou", unit="ukr")
    assert summary["mode"] == "linkage-unit" and summary["encodings_sent"] == summary["own_records"]
    assert summary["peer_encodings"] == summary["peer_records"]
    here = {m["match_id"]: m for m in list_matches(fed.nodes["nld"])}
    there = {m["match_id"]: m for m in list_matches(fed.nodes["rou"])}
    assert here and set(here) == set(there)
    truth_a, truth_b = true_ids(fed.nodes["nld"]), true_ids(fed.nodes["rou"])
    likely = [m for m in here.values() if m["band"] == "likely"]
    right = sum(truth_a[m["prs_PersonId"]] == truth_b[there[m["match_id"]]["prs_PersonId"]] for m in likely)
    assert likely and right / len(likely) > 0.9
    assert _count(fed, "ukr", LinkageRow) == 0  # the unit forgot the encodings
    assert _count(fed, "nld", PeerEncoding) == 0  # and the initiator never received the peer's
    with fed.nodes["ukr"].db.read() as session:
        done = session.execute(select(LinkageRound.status, LinkageRound.exact)).one()
    assert tuple(done) == ("done", None)
    direct = run_round(fed.nodes["nld"], "rou")
    assert abs(direct["candidates"]["likely"] - summary["candidates"]["likely"]) <= 0.05 * len(likely) + 1


def test_a_unit_refuses_strangers_early_comparisons_and_repeats(fed: Federation) -> None:
    unit_round = {
        "round_id": "ab" * 16,
        "peer": "rou",
        "epoch": 1,
        "layout": {"fields": [], "flip": 0},
        "exact": [],
    }
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "ukr", "linkage.open", unit_round)
    assert raised.value.code == "encoding_wrong_layout"
    from node.matching.pairing import pairing

    layout = pairing(fed.nodes["nld"], "rou", 1).layout.to_dict()
    send_request(fed.nodes["nld"], "ukr", "linkage.open", {**unit_round, "layout": layout})
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "ukr", "linkage.compare", {"round_id": "ab" * 16})
    assert raised.value.code == "encodings_incomplete"
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["rou"], "ukr", "linkage.compare", {"round_id": "ab" * 16})
    assert raised.value.code == "not_the_initiator"
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "ukr", "linkage.open", {**unit_round, "layout": layout})
    assert raised.value.code == "match_round_exists"
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["ukr"], "rou", "encodings.forward", {"round_id": "ab" * 16, "unit": "nld"})
    assert raised.value.code == "match_unknown_round"


def test_a_round_naming_a_member_without_the_unit_role_is_refused(fed: Federation) -> None:
    with pytest.raises(RemoteRefusal) as raised:
        run_round(fed.nodes["nld"], "rou", unit="rou")
    assert raised.value.code == "unknown_linkage_unit"
