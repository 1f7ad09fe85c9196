"""Hostile and mistaken peers: every bad matching message is refused with its code, logged, and stores nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from federation import Federation, build_federation, load_synthetic
from sqlalchemy import func, select

from node.errors import RemoteRefusal
from node.matching.pairing import current_epoch, pairing
from node.services.exchange import prepare_request, send_request
from node.services.exchange_log import recent_entries
from node.storage.models.matching import Disclosure, Match, MatchRound, PsiSession
from protocol import psi
from protocol.canonical import b64encode
from protocol.matching import psi_session_id

SMALL_ORDER = bytes([1]) + bytes(31)  # the identity element: never a valid blinded point


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path) -> Federation:
    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)
    load_synthetic(fed, tmp_path, ["nld", "rou"], 40, seed=3, overlap=0.3)
    return fed


def _refused(fed: Federation, type_name: str, payload: dict[str, Any], code: str) -> None:
    """Send from nld to rou; the refusal must carry ``code`` and be in rou's log under that code."""
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["nld"], "rou", type_name, payload)
    assert raised.value.code == code
    newest = recent_entries(fed.nodes["rou"], limit=1)[0]
    assert (newest["outcome"], newest["code"], newest["message_type"]) == ("refused", code, type_name)


def _count(fed: Federation, model: Any) -> int:
    with fed.nodes["rou"].db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _open(fed: Federation, round_id: str = "ab" * 16, **changes: Any) -> dict[str, Any]:
    nld = fed.nodes["nld"]
    keyed = pairing(nld, "rou", current_epoch(nld))
    payload = {"round_id": round_id, "number": 1, "mode": "direct", "unit": "", "epoch": keyed.epoch,
               "layout": keyed.layout.to_dict(), "record_count": 40, **changes}  # fmt: skip
    return payload


def _points(n: int, session_id: bytes) -> list[bytes]:
    scalar = psi.new_scalar(bytes(range(64)))
    return psi.blind(psi.hash_to_group([b"s%d" % i for i in range(n)], session_id=session_id), scalar)


def test_a_replayed_round_is_refused(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    _refused(fed, "match.open", _open(fed), "match_round_exists")
    assert _count(fed, MatchRound) == 1


def test_a_round_in_another_epoch_or_layout_is_refused(fed: Federation) -> None:
    _refused(fed, "match.open", _open(fed, epoch=_open(fed)["epoch"] + 5), "encoding_wrong_epoch")
    layout = dict(_open(fed)["layout"])
    layout["flip"] = layout["flip"] + 1
    _refused(fed, "match.open", _open(fed, layout=layout), "encoding_wrong_layout")
    assert _count(fed, MatchRound) == 0


def test_rounds_beyond_the_daily_limit_are_refused(fed: Federation) -> None:
    fed.set_setting("rou", match_max_rounds_per_day=1)
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    _refused(fed, "match.open", _open(fed, round_id="cd" * 16), "match_round_limit")


def test_psi_for_an_unknown_round_is_refused(fed: Federation) -> None:
    session_id = bytes.fromhex("ef" * 16)
    request = psi.build_request(
        session_id=session_id, round=1, record_count=40, points=_points(3, session_id)
    )
    _refused(fed, "psi.request", request.to_payload(), "match_unknown_round")
    assert _count(fed, PsiSession) == 0


def test_psi_points_outside_the_group_are_refused_and_nothing_is_stored(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    session_id = psi_session_id("ab" * 16, 0)
    points = [*_points(3, session_id)[:2], SMALL_ORDER]
    payload = psi.build_request(session_id=session_id, round=1, record_count=40, points=points).to_payload()
    _refused(fed, "psi.request", payload, "psi_invalid_point")
    assert _count(fed, PsiSession) == 0


def test_psi_requests_larger_than_the_declared_records_allow_are_refused(fed: Federation) -> None:
    fed.set_setting("rou", psi_selectors_per_record=2)
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    session_id = psi_session_id("ab" * 16, 0)
    payload = psi.build_request(session_id=session_id, round=1, record_count=2, points=_points(5, session_id))
    _refused(fed, "psi.request", payload.to_payload(), "psi_too_many_selectors")


def test_a_rounds_psi_sessions_sent_at_once_never_exceed_its_allowance(fed: Federation) -> None:
    """Two buckets of one round, each within the allowance alone but not together, sent at once:
    the claims are taken under a lock, so exactly one is answered and the other refused."""
    fed.set_setting("rou", psi_selectors_per_record=1)
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed, record_count=30_000))  # two buckets
    outcomes: list[str] = []

    def send(bucket: int) -> None:
        session_id = psi_session_id("ab" * 16, bucket)
        request = psi.build_request(
            session_id=session_id, round=1, record_count=3, points=_points(2, session_id)
        )
        try:
            send_request(fed.nodes["nld"], "rou", "psi.request", request.to_payload())
            outcomes.append("answered")
        except RemoteRefusal as e:
            outcomes.append(e.code)

    threads = [threading.Thread(target=send, args=(bucket,)) for bucket in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["answered", "psi_too_many_selectors"]
    with fed.nodes["rou"].db.read() as session:
        states = session.execute(select(PsiSession.status)).scalars().all()
        stats = session.execute(select(MatchRound.stats)).scalar_one()
    assert states == ["answered"] and stats["psi_peer_selectors"] == 2


def test_a_second_psi_session_in_one_round_is_refused(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    session_id = psi_session_id("ab" * 16, 0)
    request = psi.build_request(
        session_id=session_id, round=1, record_count=40, points=_points(3, session_id)
    )
    send_request(fed.nodes["nld"], "rou", "psi.request", request.to_payload())
    _refused(fed, "psi.request", request.to_payload(), "psi_session_used")
    assert _count(fed, PsiSession) == 1


def test_a_psi_result_without_a_session_is_refused(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    payload = {
        "session_id": psi_session_id("ab" * 16, 0).hex(),
        "round": 1,
        "blinded_count": 3,
        "positions": [0],
    }
    _refused(fed, "psi.result", payload, "psi_unknown_session")


def test_encoding_requests_must_name_the_round_epoch_and_go_page_by_page(fed: Federation) -> None:
    opened = _open(fed)
    send_request(fed.nodes["nld"], "rou", "match.open", opened)
    base = {"round_id": opened["round_id"], "epoch": opened["epoch"], "page": 0, "state": "00" * 32}
    _refused(fed, "encodings.request", {**base, "epoch": opened["epoch"] + 1}, "encoding_wrong_epoch")
    _refused(fed, "encodings.request", {**base, "page": 3}, "encoding_bad_page")
    _refused(fed, "encodings.request", {**base, "round_id": "99" * 16}, "match_unknown_round")


def test_candidates_naming_unknown_handles_are_refused_and_nothing_is_stored(fed: Federation) -> None:
    opened = _open(fed)
    send_request(fed.nodes["nld"], "rou", "match.open", opened)
    candidate = {"match_id": "12" * 16, "handle": b64encode(bytes(16)), "band": "likely", "weight": 20000,
                 "probability": 990000, "evidence": ["name"]}  # fmt: skip
    payload = {"round_id": opened["round_id"], "part": 0, "last": True, "candidates": [candidate]}
    _refused(fed, "match.candidates", payload, "match_unknown_handle")
    assert _count(fed, Match) == 0


def test_a_decision_for_an_unknown_match_is_refused(fed: Federation) -> None:
    _refused(fed, "match.decision", {"match_id": "34" * 16, "decision": "confirmed"}, "match_unknown")


def test_a_disclosure_answer_nobody_asked_for_is_refused(fed: Federation) -> None:
    payload = {"disclosure_id": "56" * 16, "decision": "approved", "handling_code": "H0",
               "values": {"prs_FirstName": "X"}}  # fmt: skip
    _refused(fed, "disclosure.response", payload, "disclosure_unknown")
    assert _count(fed, Disclosure) == 0


def test_malformed_matching_payloads_are_refused(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    prepared = prepare_request(nld, "rou", "match.decision", {"match_id": "no", "decision": "confirmed"})
    response = nld.peer_transport().post_envelope(prepared.peer.url, prepared.sealed.to_bytes())
    assert response.status == 422 and b"invalid_payload" in response.body


def test_psi_requests_with_more_points_than_declared_are_refused(fed: Federation) -> None:
    send_request(fed.nodes["nld"], "rou", "match.open", _open(fed))
    session_id = psi_session_id("ab" * 16, 0)
    payload = psi.build_request(
        session_id=session_id, round=1, record_count=40, points=_points(3, session_id)
    )
    lying = {**payload.to_payload(), "count": 2}
    nld = fed.nodes["nld"]
    prepared = prepare_request(nld, "rou", "psi.request", lying)
    response = nld.peer_transport().post_envelope(prepared.peer.url, prepared.sealed.to_bytes())
    assert response.status == 422 and b"invalid_payload" in response.body and b"2 points" in response.body
    assert _count(fed, PsiSession) == 0


def test_a_disclosure_answer_with_fields_nobody_asked_for_is_refused(fed: Federation) -> None:
    with fed.nodes["nld"].db.transaction() as session:
        session.add(Disclosure(disclosure_id="78" * 16, direction="out", peer="rou", match_id="9a" * 16,
                               fields=["prs_FirstName"], status="pending", created_at=1))  # fmt: skip
    payload = {"disclosure_id": "78" * 16, "decision": "approved", "handling_code": "H0",
               "values": {"prs_FirstName": "X", "prs_IdentityNumber": "Y"}}  # fmt: skip
    with pytest.raises(RemoteRefusal) as raised:
        send_request(fed.nodes["rou"], "nld", "disclosure.response", payload)
    assert raised.value.code == "disclosure_unrequested_fields"
    with fed.nodes["nld"].db.read() as session:
        row = session.get(Disclosure, "78" * 16)
        assert row is not None and (row.status, row.values) == ("pending", None)
