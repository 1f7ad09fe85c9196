"""End to end: a sandbox of three real node processes exchanging envelopes over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e


def palermo(
    *args: str, home: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "node", *(["--home", home] if home else []), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PALERMO_PASSPHRASE": ""}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sandbox")
    result = palermo("sandbox", "up", "--dir", str(root), "--nodes", "NLD,ROU,UKR")
    info = json.loads(result.stdout)
    info["root"] = str(root)
    try:
        yield info
    finally:
        palermo("sandbox", "down", "--dir", str(root), check=False)


def test_sandbox_up_prints_the_federation(sandbox: dict[str, Any]) -> None:
    assert [(n["id"], n["country"]) for n in sandbox["nodes"]] == [
        ("nld", "NLD"),
        ("rou", "ROU"),
        ("ukr", "UKR"),
    ]
    for node in sandbox["nodes"]:
        health = requests.get(node["url"] + "/health", timeout=5).json()
        assert health["status"] == "ok" and health["node_id"] == node["id"]
    assert sandbox["directory"]["version"] == 1


def test_every_node_pings_every_peer(sandbox: dict[str, Any]) -> None:
    for node in sandbox["nodes"]:
        out = json.loads(palermo("peers", "ping", "--json", home=node["home"]).stdout)
        assert sorted(r["peer"] for r in out["results"]) == sorted(
            n["id"] for n in sandbox["nodes"] if n["id"] != node["id"]
        )
        assert all(r["ok"] for r in out["results"]), out


def test_outbox_is_delivered_by_the_scheduler(sandbox: dict[str, Any]) -> None:
    home = sandbox["nodes"][0]["home"]
    queued = json.loads(palermo("peers", "ping", "--queue", "rou", "--json", home=home).stdout)["queued"]
    message_id = queued[0]["message_id"]
    deadline = time.monotonic() + 30
    status = "pending"
    while time.monotonic() < deadline and status == "pending":
        rows = json.loads(palermo("outbox", "list", "--json", home=home).stdout)["messages"]
        status = next(m["status"] for m in rows if m["message_id"] == message_id)
        time.sleep(0.5)
    assert status == "delivered"


def test_only_one_scheduler_per_node(sandbox: dict[str, Any]) -> None:
    home = sandbox["nodes"][1]["home"]
    second = subprocess.run(
        [sys.executable, "-m", "node.jobs", "--home", home], capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1 and "[locked]" in second.stderr


def test_hostile_body_is_refused_and_node_keeps_serving(sandbox: dict[str, Any]) -> None:
    url = sandbox["nodes"][2]["url"]
    response = requests.post(url + "/peer/v1/envelopes", data=b'{"palermo": 1, "sender": "nld"', timeout=5)
    assert response.status_code == 400 and response.json()["error"] == "malformed_envelope"
    big = requests.post(url + "/peer/v1/envelopes", data=b"x" * (17 * 1024 * 1024), timeout=30)
    assert big.status_code == 413 and big.json()["error"] == "body_too_large"
    assert requests.get(url + "/health", timeout=5).status_code == 200


def test_audit_verify_passes_on_every_node(sandbox: dict[str, Any]) -> None:
    for node in sandbox["nodes"]:
        out = json.loads(palermo("audit", "verify", "--json", home=node["home"]).stdout)
        assert out["ok"] is True and out["entries"] > 0


def test_an_operator_rotates_keys_with_the_sandbox_governance(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """The whole flow of docs/federation.md with the commands alone, against running servers."""
    root, homes = Path(sandbox["root"]), {n["id"]: n["home"] for n in sandbox["nodes"]}
    descriptor, draft = tmp_path / "nld.member.json", tmp_path / "v2.json"
    staged = json.loads(
        palermo("keys", "rotate", "--out", str(descriptor), "--json", home=homes["nld"]).stdout
    )
    palermo("directory", "create", "--from", str(root / "directory.json"), "--member", str(descriptor),
            "--expires-days", "90", "--out", str(draft))  # fmt: skip
    for key in sorted((root / "governance").glob("gov-*.key"))[:2]:
        palermo("directory", "sign", str(draft), "--key", str(key))
    for home in homes.values():
        palermo("directory", "install", str(draft), home=home)
    time.sleep(1.5)  # the running servers read the new directory within a second
    for node_id in ("nld", "rou"):
        out = json.loads(palermo("peers", "ping", "--json", home=homes[node_id]).stdout)
        assert all(r["ok"] for r in out["results"]), out
    shown = json.loads(palermo("keys", "show", "--json", home=homes["nld"]).stdout)
    assert shown["keys"]["signing_key"] == staged["staged"]["signing_key"] and shown["staged"] == {}
    entries = json.loads(palermo("audit", "log", "--limit", "50", "--json", home=homes["rou"]).stdout)[
        "entries"
    ]
    assert [(e["peer"], e["outcome"]) for e in entries if e["kind"] == "key_rotation"] == [("nld", "rotated")]


def test_sandbox_down_stops_every_process(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    info = json.loads(palermo("sandbox", "up", "--dir", str(root), "--nodes", "NLD,ROU").stdout)
    pids = [int((Path(n["home"]) / "serve.pid").read_text()) for n in info["nodes"]]
    down = json.loads(palermo("sandbox", "down", "--dir", str(root), "--json").stdout)
    assert sorted(down["stopped"]) == ["nld", "rou"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for node in info["nodes"]:
        with pytest.raises(requests.ConnectionError):
            requests.get(node["url"] + "/health", timeout=2)
