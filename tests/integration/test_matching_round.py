"""A matching round between two in-process nodes, through the real envelope path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from federation import Federation, build_federation, load_synthetic, true_ids
from sqlalchemy import delete, select, update

import protocol.matching
from node.errors import NotFoundError, OperatorError, RemoteRefusal
from node.matching.followup import (
    decide_disclosure,
    list_disclosures,
    list_matches,
    request_disclosure,
    review,
    show_disclosure,
    show_match,
)
from node.matching.rounds import run_round
from node.services.ingest import ingest_file
from node.services.outbox import deliver_due
from node.services.synth import generate_federation, write_rows
from node.storage.models.matching import EncodingSent, PeerEncoding
from node.storage.models.records import CasePerson, Person


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Federation:
    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)
    load_synthetic(
        fed, tmp_path, ["nld", "rou"], 400, seed=7, overlap=0.3, difficulty="mixed", include_truth=True
    )
    return fed


def test_a_round_finds_the_same_people_on_both_sides_under_one_match_id(fed: Federation) -> None:
    summary = run_round(fed.nodes["nld"], "rou")
    assert summary["own_records"] > 300 and summary["peer_records"] > 300
    assert summary["encodings_received"] == summary["peer_records"]
    here = {m["match_id"]: m for m in list_matches(fed.nodes["nld"])}
    there = {m["match_id"]: m for m in list_matches(fed.nodes["rou"])}
    assert here and set(here) == set(there)
    truth_here, truth_there = true_ids(fed.nodes["nld"]), true_ids(fed.nodes["rou"])
    likely = [m for m in here.values() if m["band"] == "likely"]
    right = sum(
        truth_here[m["prs_PersonId"]] == truth_there[there[m["match_id"]]["prs_PersonId"]] for m in likely
    )
    assert right / len(likely) > 0.9
    assert all(m["cas_CaseIds"] for m in there.values())


def test_later_rounds_send_only_new_and_changed_persons(fed: Federation, tmp_path: Path) -> None:
    first = run_round(fed.nodes["nld"], "rou")
    ids = {m["match_id"] for m in list_matches(fed.nodes["nld"])}
    again = run_round(fed.nodes["nld"], "rou")
    assert (again["encodings_received"], again["encodings_full"], again["number"]) == (0, False, 2)
    assert {m["match_id"] for m in list_matches(fed.nodes["nld"])} == ids  # the same pairs keep their ids
    assert again["candidates"] == first["candidates"]
    rows = generate_federation(
        ["NLD", "ROU"], 400, seed=7, overlap=0.3, difficulty="mixed", include_truth=True
    )["ROU"]
    changed = rows[0]["prs_PersonId"]
    for row in rows:
        if row["prs_PersonId"] == changed:
            row["prs_FirstName"] = "Zzyzx"
    path = tmp_path / "rou-changed.csv"
    write_rows(rows, path)
    ingest_file(fed.nodes["rou"], path)
    third = run_round(fed.nodes["nld"], "rou")
    assert (third["encodings_received"], third["encodings_full"]) == (1, False)


def test_a_lost_copy_of_the_peers_encodings_is_sent_again_in_full(fed: Federation) -> None:
    run_round(fed.nodes["nld"], "rou")
    with fed.nodes["nld"].db.transaction() as session:
        session.execute(
            delete(PeerEncoding).where(PeerEncoding.handle.in_(select(PeerEncoding.handle).limit(5)))
        )
    again = run_round(fed.nodes["nld"], "rou")
    assert again["encodings_full"] is True and again["encodings_received"] == again["peer_records"]


def test_persons_whose_cases_forbid_matching_are_never_encoded(fed: Federation) -> None:
    with fed.nodes["rou"].db.transaction() as session:
        session.execute(update(CasePerson).where(CasePerson.id % 3 == 0).values(matchable=False))
        forbidden = set(
            session.scalars(
                select(Person.person_id)
                .join(CasePerson, CasePerson.person_id == Person.id)
                .where(CasePerson.matchable.is_(False))
            )
        )
    summary = run_round(fed.nodes["nld"], "rou")
    with fed.nodes["rou"].db.read() as session:
        sent = set(session.scalars(select(EncodingSent.person_ref)))
    assert forbidden and not sent & forbidden
    assert summary["peer_records"] == summary["encodings_received"] == len(sent)
    assert not {m["prs_PersonId"] for m in list_matches(fed.nodes["rou"])} & forbidden


def test_confirmed_links_can_be_followed_by_an_approved_disclosure(fed: Federation) -> None:
    run_round(fed.nodes["nld"], "rou")
    match = list_matches(fed.nodes["nld"], band="likely")[0]
    match_id = match["match_id"]
    with pytest.raises(OperatorError) as raised:
        request_disclosure(fed.nodes["nld"], match_id, ["prs_FirstName"], by="t")
    assert raised.value.code == "match_not_confirmed"
    review(fed.nodes["nld"], match_id, "confirmed", by="t")
    review(fed.nodes["rou"], match_id, "confirmed", by="t")
    deliver_due(fed.nodes["nld"]), deliver_due(fed.nodes["rou"])
    assert show_match(fed.nodes["nld"], match_id)["status"] == "confirmed"
    assert show_match(fed.nodes["rou"], match_id)["status"] == "confirmed"
    rou_ref = show_match(fed.nodes["rou"], match_id)["prs_PersonId"]
    with fed.nodes["rou"].db.transaction() as session:  # make sure the handling code allows identity fields
        person = select(Person.id).where(Person.person_id == rou_ref).scalar_subquery()
        session.execute(update(CasePerson).where(CasePerson.person_id == person).values(handling_code="H1"))
    asked = request_disclosure(fed.nodes["nld"], match_id, ["prs_FirstName", "prs_Birthdate"], by="t")
    pending = list_disclosures(fed.nodes["rou"], direction="in", status="pending")
    assert [d["disclosure_id"] for d in pending] == [asked["disclosure_id"]]
    decide_disclosure(fed.nodes["rou"], asked["disclosure_id"], True, by="t")
    deliver_due(fed.nodes["rou"])
    got = show_disclosure(fed.nodes["nld"], asked["disclosure_id"])
    assert got["status"] == "approved" and set(got["values"]) == {"prs_FirstName", "prs_Birthdate"}
    with fed.nodes["rou"].db.read() as session:
        first = session.execute(select(Person.first_name).where(Person.person_id == rou_ref)).scalar_one()
    assert got["values"]["prs_FirstName"] == first
    assert (
        show_disclosure(fed.nodes["rou"], asked["disclosure_id"])["values"] is None
    )  # the owner keeps no copy


def test_the_handling_code_limits_what_may_be_asked(fed: Federation) -> None:
    run_round(fed.nodes["nld"], "rou")
    match_id = list_matches(fed.nodes["nld"], band="likely")[0]["match_id"]
    for node_id in ("nld", "rou"):
        review(fed.nodes[node_id], match_id, "confirmed", by="t")
        deliver_due(fed.nodes[node_id])
    rou_ref = show_match(fed.nodes["rou"], match_id)["prs_PersonId"]
    with fed.nodes["rou"].db.transaction() as session:
        person = select(Person.id).where(Person.person_id == rou_ref).scalar_subquery()
        session.execute(update(CasePerson).where(CasePerson.person_id == person).values(handling_code="H2"))
    with pytest.raises(RemoteRefusal) as raised:
        request_disclosure(fed.nodes["nld"], match_id, ["prs_IdentityNumber"], by="t")
    assert raised.value.code == "disclosure_forbidden"
    assert list_disclosures(fed.nodes["nld"]) == [] and list_disclosures(fed.nodes["rou"]) == []
    asked = request_disclosure(fed.nodes["nld"], match_id, ["prs_SecondName"], by="t")
    decide_disclosure(fed.nodes["rou"], asked["disclosure_id"], False, by="t", reason="not now")
    deliver_due(fed.nodes["rou"])
    got = show_disclosure(fed.nodes["nld"], asked["disclosure_id"])
    assert (got["status"], got["values"], got["reason"]) == ("refused", None, None)


def test_a_rejection_on_either_side_ends_the_match(fed: Federation) -> None:
    run_round(fed.nodes["nld"], "rou")
    match_id = list_matches(fed.nodes["nld"])[0]["match_id"]
    review(fed.nodes["nld"], match_id, "confirmed", by="t")
    review(fed.nodes["rou"], match_id, "rejected", by="t")
    deliver_due(fed.nodes["rou"])
    assert show_match(fed.nodes["nld"], match_id)["status"] == "rejected"
    with pytest.raises(NotFoundError):
        review(fed.nodes["nld"], "00" * 16, "confirmed", by="t")


def test_large_sets_are_intersected_in_keyed_buckets_with_the_same_result(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = run_round(fed.nodes["nld"], "rou")
    assert whole["psi_sessions"] == 1
    monkeypatch.setattr(protocol.matching, "PSI_POINTS_PER_SESSION", 700)
    split = run_round(fed.nodes["nld"], "rou")
    assert split["psi_sessions"] > 3
    assert split["psi_matched"] == whole["psi_matched"] > 0
    assert split["psi_own_selectors"] == whole["psi_own_selectors"]
    assert split["candidates"] == whole["candidates"]
