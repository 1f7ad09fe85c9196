"""`palermo demo` end to end: what a new operator runs first must keep working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_everything_and_cleans_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--records", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert sorted(summary["records"]) == ["nld", "rou", "ukr"]
    assert all(r["rows"] == 300 for r in summary["records"].values())
    assert len(summary["ping"]) == 6 and all(p["ok"] for p in summary["ping"])
    assert summary["outbox"]["status"] == "delivered"
    assert summary["hostile"] == {
        "genuine": "accepted",
        "replayed": "replayed_message",
        "tampered": "decryption_failed",
        "garbage": "malformed_envelope",
    }
    matching = summary["matching"]
    assert sorted(matching["rounds"]) == ["nld-rou", "nld-ukr", "rou-ukr"]
    for done in matching["rounds"].values():
        likely = done["summary"]["candidates"]["likely"]
        assert likely > 0 and done["truth"]["likely_right"] >= 0.9 * likely
    assert matching["review"]["status"] == "confirmed"
    query = summary["query"]
    assert query["answered"] == ["NLD", "ROU", "UKR"]
    assert query["inside_ci95"] >= query["cells"] // 2  # 95 % intervals hold most true totals
    assert query["cached_again"] == 3  # asked again: every country answered from its release cache
    assert summary["keys"] == {"switched": True, "pings_ok": True, "rou_logged": 1}  # nld's keys rotated live
    audit = summary["audit"]
    for node in audit["nodes"].values():
        assert node["ok"] and node["bundle_ok"] and node["budget_ok"]
        assert len(node["witnesses"]) == 2  # both peers cosigned each node's checkpoint
    assert audit["reconcile"] == {"nld-rou": True, "nld-ukr": True, "rou-ukr": True}
    assert not Path(summary["dir"]).exists()  # the sandbox was stopped and removed
