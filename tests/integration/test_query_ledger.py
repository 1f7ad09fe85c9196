"""The privacy ledger on SQLite and PostgreSQL: release cache, caps, failed draws, concurrency, restart.

Every refusal is checked to leave the ledger and the exchange log exactly as they were, and to
draw no noise. The concurrency tests race threads and processes on one period and count that the
caps hold exactly: floor(cap / rho) releases succeed, no more and no fewer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from node.context import NodeContext, open_node
from node.errors import OperatorError, PeerRefusal
from node.query.ledger import (
    BudgetRefusal,
    Release,
    budget_policy,
    budget_summary,
    epsilon_at,
    period_of,
    release,
)
from node.services import exchange_log
from protocol.query.privacy import NANO, InvalidLoss, epsilon_bound, format_rho

REPO = Path(__file__).resolve().parents[2]
T0 = 1794830400  # 2026-11-16 12:00:00 UTC
NODE_ID = "nld-police"
CENTI = NANO // 100  # 0.01 rho


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Draw:
    """A noise draw that counts its calls and returns a distinct answer each time."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.fail:
            raise RuntimeError("the noise source failed")
        return {"mechanism": "discrete_gaussian", "cells": [[["NLD"], 100 + n]], "draw": n}


@pytest.fixture
def home(make_home: Callable[..., Path], database_url: str | None) -> Path:
    return make_home(NODE_ID, "NLD", database_url=database_url)


@pytest.fixture
def node(home: Path) -> Iterator[NodeContext]:
    ctx = open_node(home)
    ctx.clock = Clock(T0)
    yield ctx
    ctx.close()


def set_caps(node: NodeContext, **changes: Any) -> None:
    node.settings = dataclasses.replace(node.settings, **changes)


def qhash(name: object) -> str:
    return hashlib.sha256(str(name).encode()).hexdigest()


def ask(node: NodeContext, peer: str, name: object, rho_nano: int, draw: Draw, msg: int = 0) -> Release:
    return release(
        node,
        peer=peer,
        query_hash=qhash(name),
        spec={"measure": "count", "dimensions": ["country"], "query": str(name)},
        measure="count",
        dimensions=["country", "sector"],
        rho_nano=rho_nano,
        message_id=f"{msg:032x}",
        draw=draw,
    )


def counts(node: NodeContext) -> tuple[int, int, int]:
    """(charges, total nano-rho, log entries) as stored."""
    with node.db.read() as session:
        charges, total = session.execute(
            text("SELECT count(*), coalesce(sum(rho_nano), 0) FROM privacy_charges")
        ).one()
        entries = session.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
    return int(charges), int(total), int(entries)


# --- the release cache ------------------------------------------------------------------------------


def test_a_repeated_query_is_answered_from_the_cache_at_no_cost(node: NodeContext) -> None:
    draw = Draw()
    first = ask(node, "nl-focal", "q1", 5 * CENTI, draw, msg=1)
    second = ask(node, "nl-focal", "q1", 5 * CENTI, draw, msg=2)
    assert (first.cached, first.rho_nano, first.period) == (False, 5 * CENTI, "2026-11")
    assert (second.cached, second.rho_nano, second.charge_id) == (True, 0, first.charge_id)
    assert second.answer == first.answer and draw.calls == 1
    assert counts(node) == (1, 5 * CENTI, 2)

    entries = exchange_log.recent_entries(node, limit=10)
    assert [(e["kind"], e["outcome"], e["message_id"], e["detail"]["rho_nano"]) for e in entries] == [
        ("budget_release", "cached", f"{2:032x}", 0),
        ("budget_charge", "charged", f"{1:032x}", 5 * CENTI),
    ]
    assert entries[1]["detail"] == {"period": "2026-11", "rho_nano": 5 * CENTI, "query_hash": qhash("q1")}
    assert all(e["peer"] == "nl-focal" and e["message_type"] == "query.request" for e in entries)
    assert exchange_log.verify(node).ok

    # the cache is per peer and per period: another peer, or next month, pays and gets fresh noise
    other = ask(node, "ro-anitp", "q1", 5 * CENTI, draw, msg=3)
    node.clock.now = T0 + 20 * 86400  # type: ignore[attr-defined]  # the test Clock
    later = ask(node, "nl-focal", "q1", 5 * CENTI, draw, msg=4)
    assert not other.cached and not later.cached and later.period == "2026-12"
    assert draw.calls == 3 and len({repr(a.answer) for a in (first, other, later)}) == 3


def test_the_stored_charge_keeps_the_query_and_the_answer(node: NodeContext) -> None:
    made = ask(node, "nl-focal", "q1", 3 * CENTI, Draw(), msg=7)
    with node.db.read() as session:
        row = session.execute(text("SELECT * FROM privacy_charges")).mappings().one()
    assert row["id"] == made.charge_id and row["peer"] == "nl-focal" and row["query_hash"] == qhash("q1")
    assert (row["measure"], row["dimensions"], row["message_id"]) == ("count", "country,sector", f"{7:032x}")
    stored = {k: json.loads(row[k]) if isinstance(row[k], str) else row[k] for k in ("spec", "answer")}
    assert stored["answer"] == made.answer and stored["spec"]["query"] == "q1"
    assert (row["period"], row["created_at"], row["rho_nano"]) == ("2026-11", T0, 3 * CENTI)


# --- caps -----------------------------------------------------------------------------------------


def _refused(node: NodeContext, peer: str, name: str, rho_nano: int, code: str) -> str:
    draw = Draw()
    before = counts(node)
    with pytest.raises(BudgetRefusal) as raised:
        ask(node, peer, name, rho_nano, draw)
    assert raised.value.code == code and raised.value.http_status == 403
    assert isinstance(raised.value, PeerRefusal)
    assert counts(node) == before and draw.calls == 0
    return raised.value.message


def test_caps_per_peer_over_all_peers_and_per_query(node: NodeContext) -> None:
    set_caps(node, budget_peer_rho=0.1, budget_global_rho=0.15, budget_query_rho=0.05)
    draw = Draw()
    eps = lambda nano: f"{epsilon_at(nano, 1e-7):.3g}"  # noqa: E731
    ask(node, "nl-focal", "a", 5 * CENTI, draw)
    ask(node, "nl-focal", "b", 5 * CENTI, draw)
    message = _refused(node, "nl-focal", "c", 1, "budget_exhausted")
    assert message == (
        f"this query spends rho 0.000000001 (epsilon {eps(1)}); left in 2026-11: "
        f"rho 0 (epsilon 0) of 0.1 for nl-focal, rho 0.05 (epsilon {eps(5 * CENTI)}) of 0.15 over all peers; "
        "epsilon at delta 1e-07"
    )

    ask(node, "ro-anitp", "a", 4 * CENTI, draw)  # all peers: 0.14 of 0.15
    message = _refused(node, "bg-sana", "a", 2 * CENTI, "budget_exhausted")
    assert f"rho 0.1 (epsilon {eps(10 * CENTI)}) of 0.1 for bg-sana" in message
    assert f"rho 0.01 (epsilon {eps(CENTI)}) of 0.15 over all peers" in message
    ask(node, "bg-sana", "a", CENTI, draw)  # exactly up to the global cap is allowed
    _refused(node, "bg-sana", "b", 1, "budget_exhausted")

    message = _refused(node, "ro-anitp", "big", 6 * CENTI, "query_over_limit")
    assert message.startswith(f"this query asks for rho 0.06 (epsilon {eps(6 * CENTI)}) and the most one")
    assert f"the most one query may spend is rho 0.05 (epsilon {eps(5 * CENTI)})" in message
    assert counts(node) == (4, 15 * CENTI, 4) and draw.calls == 4


def test_a_cached_answer_is_returned_even_when_the_budget_is_spent(node: NodeContext) -> None:
    set_caps(node, budget_peer_rho=0.05)
    first = ask(node, "nl-focal", "a", 5 * CENTI, Draw())
    _refused(node, "nl-focal", "b", CENTI, "budget_exhausted")
    again = ask(node, "nl-focal", "a", 5 * CENTI, Draw())
    assert again.cached and again.answer == first.answer


def test_a_peer_cap_override_applies_to_that_peer_only(node: NodeContext) -> None:
    set_caps(node, budget_peer_rho=0.5, budget_peer_caps={"ro-anitp": 0.02})
    _refused(node, "ro-anitp", "a", 3 * CENTI, "budget_exhausted")
    ask(node, "ro-anitp", "a", 2 * CENTI, Draw())
    ask(node, "nl-focal", "a", 3 * CENTI, Draw())
    assert counts(node)[:2] == (2, 5 * CENTI)


def test_a_failed_draw_charges_nothing(node: NodeContext) -> None:
    failing = Draw(fail=True)
    with pytest.raises(RuntimeError, match="noise source failed"):
        ask(node, "nl-focal", "a", 5 * CENTI, failing)
    assert failing.calls == 1 and counts(node) == (0, 0, 0)
    retried = ask(node, "nl-focal", "a", 5 * CENTI, Draw())
    assert not retried.cached and counts(node) == (1, 5 * CENTI, 1)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"rho_nano": 0}, "invalid_privacy_loss"),
        ({"rho_nano": -5}, "invalid_privacy_loss"),
        ({"peer": "NL Focal"}, "invalid_peer"),
        ({"peer": ""}, "invalid_peer"),
        ({"query_hash": "ab" * 31}, "invalid_query_hash"),
        ({"query_hash": "AB" * 32}, "invalid_query_hash"),
        ({"message_id": "xyz"}, "invalid_message_id"),
    ],
)
def test_malformed_arguments_are_refused_before_any_draw(
    node: NodeContext, change: dict[str, Any], code: str
) -> None:
    draw = Draw()
    args: dict[str, Any] = {
        "peer": "nl-focal", "query_hash": qhash("a"), "spec": {}, "measure": "count", "dimensions": [],
        "rho_nano": CENTI, "message_id": "", "draw": draw, **change,
    }  # fmt: skip
    with pytest.raises((InvalidLoss, OperatorError)) as raised:
        release(node, **args)
    assert raised.value.code == code and draw.calls == 0 and counts(node) == (0, 0, 0)


# --- concurrency ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peers", "caps", "expected"),
    [
        (["nl-focal"], {"budget_peer_rho": 0.5, "budget_global_rho": 1.0}, 16),  # floor(0.5 / 0.03)
        (["nl-focal", "ro-anitp"], {"budget_peer_rho": 0.5, "budget_global_rho": 0.6}, 20),  # the global
    ],
    ids=["peer-cap", "global-cap"],
)
def test_concurrent_releases_never_overspend(
    node: NodeContext, peers: list[str], caps: dict[str, float], expected: int
) -> None:
    set_caps(node, budget_query_rho=0.1, **caps)
    draw, threads_n = Draw(), 24
    barrier = threading.Barrier(threads_n)
    results: list[Release] = []
    refusals: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results.append(ask(node, peers[i % len(peers)], f"q{i}", 3 * CENTI, draw, msg=i))
        except BudgetRefusal as e:
            refusals.append(e.code)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == expected and draw.calls == expected
    assert refusals == ["budget_exhausted"] * (threads_n - expected)
    charges, total, entries = counts(node)
    assert (charges, total, entries) == (expected, expected * 3 * CENTI, expected)
    policy = budget_policy(node.settings)
    assert total <= policy.global_nano
    for peer in budget_summary(node)["peers"]:
        assert int(float(peer["spent"]["rho"]) * NANO + 0.5) <= policy.cap_for(peer["peer"])
    assert exchange_log.verify(node).ok


WORKER = """
import dataclasses, json, sys
from pathlib import Path
from node.context import open_node
from node.query.ledger import BudgetRefusal, release
home, worker, n, now = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
node = open_node(home)
node.clock = lambda: now
node.settings = dataclasses.replace(node.settings, budget_peer_rho=0.5, budget_query_rho=0.1)
done = {"charged": 0, "refused": []}
for i in range(n):
    try:
        release(node, peer="nl-focal", query_hash=f"{worker:032x}{i:032x}", spec={}, measure="count",
                dimensions=["country"], rho_nano=30_000_000, message_id=f"{worker * 100 + i:032x}",
                draw=lambda: {"cells": []})
        done["charged"] += 1
    except BudgetRefusal as e:
        done["refused"].append(e.code)
node.close()
print(json.dumps(done))
"""


def test_concurrent_releases_from_processes_never_overspend(node: NodeContext, home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), str(w), "8", str(T0)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(4)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        outcomes.append(json.loads(out))
    assert sum(o["charged"] for o in outcomes) == 16  # floor(0.5 / 0.03) of 32 attempts
    assert sorted(code for o in outcomes for code in o["refused"]) == ["budget_exhausted"] * 16
    assert counts(node) == (16, 16 * 3 * CENTI, 16)


# --- durability -------------------------------------------------------------------------------------


def test_the_ledger_survives_a_restart(node: NodeContext, home: Path) -> None:
    first = ask(node, "nl-focal", "a", 5 * CENTI, Draw())
    ask(node, NODE_ID, "b", 2 * CENTI, Draw())
    node.close()

    reopened = open_node(home)
    reopened.clock = Clock(T0 + 3600)
    try:
        summary = budget_summary(reopened)
        assert summary["global"]["spent"]["rho"] == "0.07" and summary["global"]["releases"] == 2
        by_peer = {p["peer"]: (p["spent"]["rho"], p["left"]["rho"]) for p in summary["peers"]}
        assert by_peer == {"nl-focal": ("0.05", "0.45"), NODE_ID: ("0.02", "0.48")}
        again = ask(reopened, "nl-focal", "a", 5 * CENTI, Draw())
        assert again.cached and again.answer == first.answer
    finally:
        reopened.close()


def test_summary_lists_this_periods_releases_newest_first(node: NodeContext) -> None:
    set_caps(node, budget_peer_caps={"bg-sana": 0.2})
    for i, peer in enumerate(["nl-focal", NODE_ID, "nl-focal"]):
        node.clock.now = T0 + i  # type: ignore[attr-defined]  # the test Clock
        ask(node, peer, f"q{i}", (i + 1) * CENTI, Draw(), msg=i)
    summary = budget_summary(node)
    assert [(r["peer"], r["rho"], r["created_at"]) for r in summary["releases"]] == [
        ("nl-focal", "0.03", T0 + 2),
        (NODE_ID, "0.02", T0 + 1),
        ("nl-focal", "0.01", T0),
    ]
    assert summary["releases"][0]["dimensions"] == ["country", "sector"]
    assert [p["peer"] for p in summary["peers"]] == ["bg-sana", "nl-focal", NODE_ID]
    assert summary["peers"][0] == {
        "peer": "bg-sana",
        "cap": {"rho": "0.2", "epsilon": round(epsilon_at(20 * CENTI, 1e-7), 4)},
        "spent": {"rho": "0", "epsilon": 0.0},
        "left": {"rho": "0.2", "epsilon": round(epsilon_at(20 * CENTI, 1e-7), 4)},
        "releases": 0,
    }
    assert summary["caps"]["global"] == {"rho": "1", "epsilon": round(epsilon_at(NANO, 1e-7), 4)}
    assert summary["global"]["left"]["rho"] == "0.94"
    one = budget_summary(node, peer="nl-focal")
    assert [p["peer"] for p in one["peers"]] == ["nl-focal"] and one["peers"][0]["releases"] == 2
    assert {r["peer"] for r in one["releases"]} == {"nl-focal"}
    assert one["global"] == summary["global"]  # the global figures are never narrowed
    assert budget_summary(node, now=T0 + 30 * 86400)["global"]["releases"] == 0  # next month
    with pytest.raises(OperatorError) as raised:
        budget_summary(node, peer="Robert'); DROP")
    assert raised.value.code == "invalid_peer"


# --- pure parts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "month", "quarter", "year"),
    [
        (1793491199, "2026-10", "2026-Q4", "2026"),  # 2026-10-31 23:59:59 UTC
        (1793491200, "2026-11", "2026-Q4", "2026"),  # 2026-11-01 00:00:00 UTC
        (1790812799, "2026-09", "2026-Q3", "2026"),  # 2026-09-30 23:59:59 UTC
        (1790812800, "2026-10", "2026-Q4", "2026"),  # 2026-10-01 00:00:00 UTC
        (1798761599, "2026-12", "2026-Q4", "2026"),  # 2026-12-31 23:59:59 UTC
        (1798761600, "2027-01", "2027-Q1", "2027"),  # 2027-01-01 00:00:00 UTC
        (1771891200, "2026-02", "2026-Q1", "2026"),  # 2026-02-24
    ],
)
def test_period_of_follows_utc_calendar_boundaries(now: int, month: str, quarter: str, year: str) -> None:
    assert (period_of("month", now), period_of("quarter", now), period_of("year", now)) == (
        month,
        quarter,
        year,
    )


def test_period_of_refuses_an_unknown_kind() -> None:
    with pytest.raises(OperatorError, match="month, quarter or year"):
        period_of("week", T0)


def test_budget_policy_converts_rho_to_nano_exactly() -> None:
    @dataclasses.dataclass
    class S:
        budget_period: str = "quarter"
        budget_peer_rho: float = 0.29
        budget_global_rho: float = 1
        budget_query_rho: float = 0.00013
        budget_peer_caps: dict[str, float] = dataclasses.field(
            default_factory=lambda: {"nl-focal": 0.0000000019}
        )
        budget_delta: float = 1e-6

    assert int(0.00013 * 1e9) == 129_999  # why naive conversion is not good enough
    policy = budget_policy(S())
    assert (policy.period, policy.peer_nano, policy.global_nano, policy.query_nano) == (
        "quarter",
        290_000_000,
        NANO,
        130_000,
    )
    assert policy.peer_caps_nano == {"nl-focal": 1}  # rounded down and policy.delta == 1e-6
    assert policy.cap_for("nl-focal") == 1 and policy.cap_for("ro-anitp") == 290_000_000


def test_epsilon_at_is_opendps_conversion_and_grows_with_rho() -> None:
    assert epsilon_at(0, 1e-7) == 0.0
    assert epsilon_at(NANO // 2, 1e-7) == pytest.approx(5.67, abs=0.005)
    rhos = [1, CENTI, 5 * CENTI, 10 * CENTI, NANO // 2, NANO, 10 * NANO]
    values = [epsilon_at(r, 1e-7) for r in rhos]
    assert values == sorted(values) and len(set(values)) == len(values)
    # tighter than the classic bound, and a larger delta costs less epsilon
    assert all(v < epsilon_bound(r, 1e-7) for r, v in zip(rhos, values, strict=True))
    assert epsilon_at(NANO // 2, 1e-5) < epsilon_at(NANO // 2, 1e-7)
    with pytest.raises(OperatorError):
        epsilon_at(-1, 1e-7)


# --- property: a release never exceeds the budget ---------------------------------------------------

PEERS = ["nl-focal", "ro-anitp", NODE_ID]


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeContext]:
    from node.services.init import init_home

    home = tmp_path_factory.mktemp("ledger-property") / NODE_ID
    init_home(home, node_id=NODE_ID, country="NLD", url="http://127.0.0.1:9/", database_url=None)
    ctx = open_node(home)
    ctx.clock = Clock(T0)
    yield ctx
    ctx.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    peer_cap=st.integers(0, 30),
    global_cap=st.integers(0, 45),
    query_cap=st.integers(1, 12),
    override=st.one_of(st.none(), st.integers(0, 30)),
    costs=st.lists(st.integers(1, 15), min_size=6, max_size=6),
    ops=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5)), min_size=8, max_size=40),
)
def test_a_release_never_exceeds_the_budget(
    shared_node: NodeContext,
    peer_cap: int,
    global_cap: int,
    query_cap: int,
    override: int | None,
    costs: list[int],
    ops: list[tuple[int, int]],
) -> None:
    node = shared_node
    with node.db.transaction() as session:
        for table in ("privacy_charges", "budget_periods", "log_entries", "log_head"):
            session.execute(text(f"DELETE FROM {table}"))
    set_caps(
        node,
        budget_peer_rho=peer_cap / 100,
        budget_global_rho=global_cap / 100,
        budget_query_rho=query_cap / 100,
        budget_peer_caps={} if override is None else {PEERS[0]: override / 100},
    )
    caps = {p: (override if p == PEERS[0] and override is not None else peer_cap) * CENTI for p in PEERS}
    paid: dict[tuple[int, int], dict[str, Any]] = {}
    spent = dict.fromkeys(PEERS, 0)
    for peer_i, q in ops:
        peer, rho = PEERS[peer_i], costs[q] * CENTI
        draw = Draw()
        try:
            made = ask(node, peer, q, rho, draw)
        except BudgetRefusal as e:
            if rho > query_cap * CENTI:
                assert e.code == "query_over_limit"
            else:
                assert e.code == "budget_exhausted"
                assert spent[peer] + rho > caps[peer] or sum(spent.values()) + rho > global_cap * CENTI
            assert (peer_i, q) not in paid and draw.calls == 0
            continue
        if (peer_i, q) in paid:
            assert made.cached and made.answer == paid[peer_i, q] and draw.calls == 0
            continue
        assert not made.cached and draw.calls == 1 and rho <= query_cap * CENTI
        paid[peer_i, q] = made.answer
        spent[peer] += rho
        assert spent[peer] <= caps[peer] and sum(spent.values()) <= global_cap * CENTI
    # the ledger's totals are the sum of the fresh (non-cached) releases, per peer and in all
    assert counts(node)[:2] == (len(paid), sum(spent.values()))
    summary = budget_summary(node)
    assert summary["global"]["spent"]["rho"] == format_rho(sum(spent.values()))
    ledger = {p["peer"]: p["spent"]["rho"] for p in summary["peers"] if p["releases"]}
    assert ledger == {p: format_rho(n) for p, n in spent.items() if n}
