"""Installing and reading the federation directory through the service and the ``palermo`` CLI.

Runs on SQLite and on PostgreSQL at 127.0.0.1:5432 (a throwaway database per test; skipped only
when no server answers).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from node.cli import cli
from node.context import NodeContext, open_node
from node.keys import NodeKeys, save_keys
from node.services import exchange_log
from node.services.directory import (
    DirectoryError,
    DirectoryUnavailableError,
    current_directory,
    install_directory,
    installed_directory,
    installed_record,
    member_descriptor,
    member_keys,
)
from node.settings import SETTINGS_FILE, default_database_url, render_settings
from node.storage.db import migrate
from node.storage.models.directory import DirectoryVersion
from protocol.directory import Directory, GovernanceKey, GovernanceKeys, SignedDirectory, sign_directory

NOW = 1_800_000_000
GOV = [nacl.signing.SigningKey.generate() for _ in range(5)]


@pytest.fixture
def db_url(database_url: str | None) -> str | None:
    """None (SQLite in the node home) or a throwaway PostgreSQL database (tests/conftest.py)."""
    return database_url


def make_node_home(root: Path, node_id: str, country: str, *, database_url: str | None = None) -> Path:
    home = root / node_id
    home.mkdir(mode=0o700)
    settings = render_settings(
        node_id=node_id,
        country=country,
        url=f"https://{node_id}.example.org/palermo",
        database_url=database_url,
        bind="127.0.0.1:0",
    )
    (home / SETTINGS_FILE).write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(database_url or default_database_url(home))
    return home


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def node(tmp_path: Path, db_url: str | None) -> Iterator[NodeContext]:
    context = open_node(make_node_home(tmp_path, "nld-fp", "NLD", database_url=db_url))
    context.clock = Clock(NOW)
    yield context
    context.close()


def document(
    node: NodeContext, *, version: int, keys: list[int], signers: list[int], expires: int = NOW + 86400
) -> bytes:
    directory = Directory(
        federation="europe",
        version=version,
        expires=expires,
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(bytes(GOV[i].verify_key)) for i in keys), threshold=2
        ),
        members=(member_descriptor(node.settings, node.keys, ["analyst", "data-owner"]),),
    )
    signed = SignedDirectory(signed=directory)
    for i in signers:
        signed = sign_directory(signed, GOV[i])
    return signed.to_bytes()


def refused(action: Callable[[], Any]) -> str:
    with pytest.raises(DirectoryError) as info:
        action()
    return info.value.code


def history(node: NodeContext) -> int:
    with node.db.transaction() as session:
        return int(session.scalar(select(func.count(DirectoryVersion.id))) or 0)


def test_no_directory_stops_exchange(node: NodeContext) -> None:
    with pytest.raises(DirectoryUnavailableError) as info:
        current_directory(node)
    assert (info.value.code, info.value.http_status) == ("no_directory", 503)
    assert installed_directory(node) is None and installed_record(node) is None


def test_first_directory_needs_initial(node: NodeContext) -> None:
    data = document(node, version=1, keys=[0, 1, 2], signers=[0, 1])
    assert refused(lambda: install_directory(node, data, initial=False)) == "directory_initial_required"
    assert history(node) == 0 and not node.settings.directory_file.exists()
    directory = install_directory(node, data, initial=True)
    assert current_directory(node) == directory == installed_directory(node)
    assert SignedDirectory.from_bytes(node.settings.directory_file.read_bytes()).to_bytes() == data
    record = installed_record(node)
    assert record is not None and record.initial and record.history == 1 and record.sha256 == directory.digest
    assert refused(lambda: install_directory(node, data, initial=True)) == "directory_already_installed"


def test_initial_directory_below_threshold_is_refused(node: NodeContext) -> None:
    data = document(node, version=1, keys=[0, 1, 2], signers=[0])
    assert refused(lambda: install_directory(node, data, initial=True)) == "directory_threshold"
    assert history(node) == 0 and not node.settings.directory_file.exists()


def test_update_rollback_and_refusals_change_nothing(node: NodeContext) -> None:
    install_directory(node, document(node, version=1, keys=[0, 1, 2], signers=[0, 1]), initial=True)
    rotated = document(node, version=2, keys=[2, 3, 4], signers=[0, 1, 3, 4])
    assert install_directory(node, rotated, initial=False).version == 2
    file_before = node.settings.directory_file.read_bytes()
    attempts = {
        "directory_rollback": document(node, version=1, keys=[2, 3, 4], signers=[2, 3, 4]),
        "directory_not_newer": document(node, version=2, keys=[2, 3, 4], signers=[2, 3, 4]),
        "directory_threshold": document(node, version=3, keys=[0, 1, 2], signers=[0, 1]),  # old keys only
        "directory_expired": document(node, version=3, keys=[2, 3, 4], signers=[2, 3], expires=NOW),
        "directory_malformed": b'{"signed": {}, "signatures": []}',
    }
    for code, data in attempts.items():
        assert refused(functools.partial(install_directory, node, data, initial=False)) == code
    record = installed_record(node)
    assert history(node) == 2 and record is not None and record.directory.version == 2
    assert node.settings.directory_file.read_bytes() == file_before


def test_expired_directory_stops_exchange_until_a_newer_one(node: NodeContext) -> None:
    install_directory(node, document(node, version=1, keys=[0, 1, 2], signers=[0, 1]), initial=True)
    assert isinstance(node.clock, Clock)
    node.clock.now = NOW + 86400
    with pytest.raises(DirectoryUnavailableError) as info:
        current_directory(node)
    assert info.value.code == "directory_expired" and "expired at" in info.value.message
    assert installed_directory(node) is not None  # still shown
    renewed = document(node, version=2, keys=[0, 1, 2], signers=[1, 2], expires=NOW + 10 * 86400)
    install_directory(node, renewed, initial=False)
    assert current_directory(node).version == 2


def test_member_keys_and_own_entry(node: NodeContext) -> None:
    install_directory(node, document(node, version=1, keys=[0, 1, 2], signers=[0, 1]), initial=True)
    me = current_directory(node).member(node.node_id)
    assert me is not None
    verify_key, public_key = member_keys(me)
    assert bytes(verify_key) == bytes(node.keys.signing.verify_key)
    assert bytes(public_key) == bytes(node.keys.encryption.public_key)


def test_a_peer_key_rotation_is_logged_with_old_and_new_key_ids(node: NodeContext) -> None:
    peer_keys = [NodeKeys.generate(), NodeKeys.generate()]

    def with_peer(version: int, keys: NodeKeys) -> bytes:
        peer = member_descriptor(node.settings, keys, ["witness"])
        own = member_descriptor(node.settings, node.keys, ["analyst", "data-owner"])
        directory = Directory(
            federation="europe",
            version=version,
            expires=NOW + 86400,
            governance=GovernanceKeys(
                keys=tuple(GovernanceKey(bytes(k.verify_key)) for k in GOV[:3]), threshold=2
            ),
            members=(own, replace(peer, node_id="rou-fp", country="ROU")),
        )
        return sign_directory(sign_directory(SignedDirectory(signed=directory), GOV[0]), GOV[1]).to_bytes()

    install_directory(node, with_peer(1, peer_keys[0]), initial=True)
    install_directory(node, with_peer(2, peer_keys[0]), initial=False)  # renewal: no rotation
    install_directory(node, with_peer(3, peer_keys[1]), initial=False)
    entries = [e for e in exchange_log.recent_entries(node, limit=10) if e["kind"] == "key_rotation"]
    old, new = peer_keys[0], peer_keys[1]

    def keyid(key: Any) -> str:
        return hashlib.sha256(bytes(key)).hexdigest()

    assert [(e["peer"], e["outcome"]) for e in entries] == [("rou-fp", "rotated")]
    assert entries[0]["detail"] == {
        "version": 3,
        "signing_key_old": keyid(old.signing.verify_key),
        "signing_key_new": keyid(new.signing.verify_key),
        "encryption_key_old": keyid(old.encryption.public_key),
        "encryption_key_new": keyid(new.encryption.public_key),
        "log_key_old": keyid(old.log.verify_key),
        "log_key_new": keyid(new.log.verify_key),
    }
    assert exchange_log.verify(node).ok


def test_tampered_stored_directory_is_not_used(node: NodeContext) -> None:
    install_directory(node, document(node, version=1, keys=[0, 1, 2], signers=[0, 1]), initial=True)
    with node.db.transaction() as session:
        session.execute(update(DirectoryVersion).values(sha256="0" * 64))
    with pytest.raises(Exception) as info:
        current_directory(node)
    assert getattr(info.value, "code", None) == "directory_corrupt"


# ---- the CLI, end to end ------------------------------------------------------------------------


def run(runner: CliRunner, *args: str, home: Path | None = None, ok: bool = True) -> Result:
    argv = (["--home", str(home)] if home else []) + list(args)
    result = runner.invoke(cli, argv, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


def out_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_cli_federation_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    homes = {n: make_node_home(tmp_path, n, n[:3].upper()) for n in ("nld-fp", "rou-fp", "ukr-fp")}
    gov = tmp_path / "governance"
    gov.mkdir()
    monkeypatch.setenv("GOV3_PASS", "correct horse battery staple")
    keyids = []
    for i in (1, 2, 3):
        extra = ["--passphrase-env", "GOV3_PASS"] if i == 3 else []
        info = out_json(
            run(runner, "keys", "governance-new", "--out", str(gov / f"g{i}.key"), *extra, "--json")
        )
        assert info["protected"] == (i == 3) and (gov / f"g{i}.key").stat().st_mode & 0o777 == 0o600
        keyids.append(info["keyid"])
    run(runner, "keys", "governance-new", "--out", str(gov / "g1.key"), ok=False)  # never overwrites
    for node_id, home in homes.items():
        roles = "data-owner,analyst,witness" if node_id == "rou-fp" else "analyst,data-owner"
        run(runner, "keys", "export", "--roles", roles, "--out", str(tmp_path / f"{node_id}.json"), home=home)
    shown = out_json(run(runner, "keys", "show", "--json", home=homes["nld-fp"]))
    assert set(shown["keys"]) == {"signing_key", "encryption_key", "log_key"}

    v1 = tmp_path / "directory-v1.json"
    members = [a for n in homes for a in ("--member", str(tmp_path / f"{n}.json"))]
    governance = [a for i in (1, 2, 3) for a in ("--governance", str(gov / f"g{i}.key"))]
    create = ["directory", "create", "--federation", "europe", "--version", "1", "--expires-days", "30"]
    created = out_json(
        run(runner, *create, "--threshold", "2", *governance, *members, "--out", str(v1), "--json")
    )
    assert created["governance"]["keyids"] == sorted(keyids) and len(created["members"]) == 3
    assert out_json(run(runner, "directory", "verify", str(v1), "--json", ok=False))["accepted"] is False
    run(runner, "directory", "sign", str(v1), "--key", str(gov / "g1.key"))
    run(runner, "directory", "sign", str(v1), "--key", str(gov / "g1.key"))  # idempotent
    run(runner, "directory", "sign", str(v1), "--key", str(gov / "g3.key"), "--passphrase-env", "GOV3_PASS")
    report = out_json(run(runner, "directory", "verify", str(v1), "--json"))
    assert report["accepted"] and report["signatures"]["new"]["valid"] == sorted([keyids[0], keyids[2]])
    later = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 40 * 86400))
    assert (
        out_json(run(runner, "directory", "verify", str(v1), "--at", later, "--json", ok=False))["error"][
            "error"
        ]
        == "directory_expired"
    )

    nld = homes["nld-fp"]
    run(runner, "directory", "install", str(v1), home=nld, ok=False)  # first install needs --initial
    installed = out_json(run(runner, "directory", "install", str(v1), "--initial", "--json", home=nld))
    assert installed["initial"] and installed["governance"]["keyids"] == sorted(keyids)
    shown = out_json(run(runner, "directory", "show", "--json", home=nld))
    assert shown["version"] == 1 and not shown["expired"]
    assert [m["node_id"] for m in shown["members"] if m.get("self")] == ["nld-fp"]
    assert next(m for m in shown["members"] if m["node_id"] == "rou-fp")["roles"] == [
        "analyst",
        "data-owner",
        "witness",
    ]

    # Version 2 rotates g1 out and g4 in: signed by a threshold of the old keys AND of the new ones.
    g4 = out_json(run(runner, "keys", "governance-new", "--out", str(gov / "g4.key"), "--json"))["keyid"]
    v2 = tmp_path / "directory-v2.json"
    rotate = ["--remove-governance", keyids[0][:12], "--governance", str(gov / "g4.key")]
    created = out_json(
        run(
            runner,
            "directory",
            "create",
            "--from",
            str(v1),
            *rotate,
            "--expires-days",
            "60",
            "--out",
            str(v2),
            "--json",
        )
    )
    assert created["version"] == 2 and created["governance"]["keyids"] == sorted([keyids[1], keyids[2], g4])
    run(runner, "directory", "sign", str(v2), "--key", str(gov / "g1.key"))
    run(runner, "directory", "sign", str(v2), "--key", str(gov / "g2.key"))
    report = out_json(run(runner, "directory", "verify", str(v2), "--trusted", str(v1), "--json", ok=False))
    assert report["signatures"]["trusted"]["met"] and not report["signatures"]["new"]["met"]
    failed = run(runner, "directory", "install", str(v2), home=nld, ok=False)
    assert "directory_threshold" in failed.output
    run(runner, "directory", "sign", str(v2), "--key", str(gov / "g4.key"))
    report = out_json(run(runner, "directory", "verify", str(v2), "--trusted", str(v1), "--json"))
    assert report["accepted"] and report["signatures"]["trusted"]["valid"] == sorted(keyids[:2])
    run(runner, "directory", "install", str(v2), home=nld)
    assert out_json(run(runner, "directory", "show", "--json", home=nld))["version"] == 2
    rollback = run(runner, "directory", "install", str(v1), home=nld, ok=False)
    assert "directory_rollback" in rollback.output
    assert out_json(run(runner, "directory", "show", "--json", home=nld))["versions_installed"] == 2
    assert json.loads((nld / "directory.json").read_text())["signed"]["version"] == 2


def test_cli_witness_policy(tmp_path: Path) -> None:
    runner = CliRunner()
    members = []
    for node_id in ("nld-fp", "rou-fp", "ukr-fp"):
        home = make_node_home(tmp_path, node_id, node_id[:3].upper())
        out = tmp_path / f"{node_id}.json"
        run(runner, "keys", "export", "--roles", "analyst,witness", "--out", str(out), home=home)
        members += ["--member", str(out)]
    run(runner, "keys", "governance-new", "--out", str(tmp_path / "g.key"))
    base = ["directory", "create", "--expires-days", "30", *members]
    first = [*base, "--federation", "europe", "--version", "1", "--threshold", "1"]
    first += ["--governance", str(tmp_path / "g.key")]
    v1 = tmp_path / "v1.json"
    created = out_json(
        run(runner, *first, "--witness-quorum", "2", "--witness-max-delay", "6", "--out", str(v1), "--json")
    )
    assert created["witness_policy"] == {"quorum": 2, "max_delay": 21600}
    assert json.loads(v1.read_text())["signed"]["witness_policy"] == {"quorum": 2, "max_delay": 21600}
    text = run(runner, "directory", "verify", str(v1), ok=False).output
    assert "witnesses   quorum 2, every entry witnessed within 6 h" in text

    too_many = run(
        runner, *first, "--witness-quorum", "3", "--out", str(tmp_path / "x.json"), "--json", ok=False
    )
    assert out_json(too_many)["error"] == "directory_bad_quorum" and not (tmp_path / "x.json").exists()
    kept = out_json(
        run(
            runner,
            *base,
            "--from",
            str(v1),
            "--witness-max-delay",
            "12",
            "--out",
            str(tmp_path / "v2.json"),
            "--json",
        )
    )
    assert kept["witness_policy"] == {"quorum": 2, "max_delay": 43200}  # the quorum comes from v1
    dropped = out_json(
        run(
            runner,
            *base,
            "--from",
            str(v1),
            "--no-witness-policy",
            "--out",
            str(tmp_path / "v3.json"),
            "--json",
        )
    )
    assert (
        dropped["witness_policy"] is None
        and "witness_policy" not in json.loads((tmp_path / "v3.json").read_text())["signed"]
    )
    both = run(
        runner,
        *base,
        "--from",
        str(v1),
        "--no-witness-policy",
        "--witness-quorum",
        "1",
        "--out",
        str(tmp_path / "y.json"),
        "--json",
        ok=False,
    )
    assert out_json(both)["error"] == "directory_draft"
