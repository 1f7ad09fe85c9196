"""Rotating a node's identity keys: staged by the operator, switched on by the directory that lists them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from federation import Federation, build_federation, member_of, signed_directory

from node.cli import cli
from node.context import open_node
from node.errors import RemoteRefusal
from node.keys import open_key
from node.services import exchange_log, key_rotation
from node.services.directory import install_directory, installed_directory
from node.services.exchange import send_request
from protocol.canonical import sha256_hex
from protocol.directory import Member


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    # nld rotates in every test, so it runs on the parametrised database
    return build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)


def _ping(fed: Federation, sender: str, receiver: str) -> str:
    reply = send_request(fed.nodes[sender], receiver, "ping", {"nonce": os.urandom(16).hex()})
    return str(reply.reply.header.type)


def _directory_listing(fed: Federation, version: int, nld: Member) -> bytes:
    members = [nld, member_of(fed.nodes["rou"])]
    return signed_directory(members, fed.governance, version=version, expires=fed.clock.now + 30 * 86400)


def _install_everywhere(fed: Federation, data: bytes) -> None:
    for node in fed.nodes.values():
        install_directory(node, data, initial=False)


def _rotations(fed: Federation, node_id: str) -> list[tuple[str, str]]:
    entries = exchange_log.recent_entries(fed.nodes[node_id], limit=50)
    return [(e["peer"], e["outcome"]) for e in reversed(entries) if e["kind"] == "key_rotation"]


def test_staged_keys_take_over_when_the_directory_lists_them(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    old = nld.keys
    keys_dir = nld.settings.keys_dir
    public = key_rotation.stage(nld, passphrase=None)
    for purpose in ("signing", "encryption"):
        assert (keys_dir / "next" / f"{purpose}.key").stat().st_mode & 0o777 == 0o600
    assert not (keys_dir / "next" / "log.key").exists()  # the log key names the log: it stays
    with pytest.raises(key_rotation.KeyRotationError) as refused:
        key_rotation.stage(nld, passphrase=None)
    assert refused.value.code == "key_rotation_pending"
    assert _ping(fed, "nld", "rou") == "pong"  # staged keys are not used before a directory lists them
    assert nld.keys is old

    listed = replace(member_of(nld), signing_key=public["signing"], encryption_key=public["encryption"])
    _install_everywhere(fed, _directory_listing(fed, 2, listed))
    assert bytes(nld.keys.signing.verify_key) == public["signing"]
    assert bytes(nld.keys.encryption.public_key) == public["encryption"]
    assert bytes(nld.keys.log.verify_key) == bytes(old.log.verify_key)
    assert not (keys_dir / "next").exists()
    (retired,) = (keys_dir / "retired").iterdir()
    for purpose, key in (("signing", bytes(old.signing)), ("encryption", bytes(old.encryption))):
        doc = json.loads((retired / f"{purpose}.key").read_text())
        assert open_key(doc, purpose=purpose, passphrase=None) == key  # the old keys are kept, not lost
    assert _ping(fed, "nld", "rou") == "pong" and _ping(fed, "rou", "nld") == "pong"

    with pytest.raises(RemoteRefusal):  # the old identity key is no longer nld's
        send_request(replace(nld, keys=old), "rou", "ping", {"nonce": os.urandom(16).hex()})

    assert _rotations(fed, "nld") == [("nld", "staged"), ("nld", "rotated")]
    assert _rotations(fed, "rou") == [("nld", "rotated")]
    staged = next(e for e in exchange_log.recent_entries(nld, limit=50) if e["outcome"] == "staged")
    assert staged["detail"] == {
        "signing_key_new": sha256_hex(public["signing"]),
        "encryption_key_new": sha256_hex(public["encryption"]),
    }
    for node in fed.nodes.values():
        assert exchange_log.verify(node).ok


def test_another_process_of_the_node_switches_on_its_next_directory_read(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    server = open_node(nld.settings.home, transport=fed.transport)  # a serving worker, keys already loaded
    server.clock = fed.clock
    try:
        public = key_rotation.stage(nld, passphrase=None)
        listed = replace(member_of(nld), signing_key=public["signing"], encryption_key=public["encryption"])
        _install_everywhere(fed, _directory_listing(fed, 2, listed))
        assert bytes(server.keys.signing.verify_key) != public["signing"]
        server.cache.pop("directory", None)  # as after CACHE_SECONDS
        installed_directory(server)
        assert bytes(server.keys.signing.verify_key) == public["signing"]
    finally:
        server.close()


def test_a_rotation_cut_halfway_by_a_crash_completes(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    keys_dir = nld.settings.keys_dir
    public = key_rotation.stage(nld, passphrase=None)
    os.replace(keys_dir / "next" / "signing.key", keys_dir / "signing.key")  # the crash: one key moved
    listed = replace(member_of(nld), signing_key=public["signing"], encryption_key=public["encryption"])
    _install_everywhere(fed, _directory_listing(fed, 2, listed))
    assert bytes(nld.keys.signing.verify_key) == public["signing"]
    assert bytes(nld.keys.encryption.public_key) == public["encryption"]
    assert not (keys_dir / "next").exists()
    assert _ping(fed, "rou", "nld") == "pong"


def test_staged_keys_the_directory_lists_cannot_be_discarded(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    nld = fed.nodes["nld"]
    public = key_rotation.stage(nld, passphrase=None)
    monkeypatch.setattr(key_rotation, "activate", lambda *a, **k: False)  # a process that cannot switch
    listed = replace(member_of(nld), signing_key=public["signing"], encryption_key=public["encryption"])
    _install_everywhere(fed, _directory_listing(fed, 2, listed))
    with pytest.raises(key_rotation.KeyRotationError) as refused:
        key_rotation.discard(nld)
    assert refused.value.code == "key_rotation_in_progress"
    assert (nld.settings.keys_dir / "next" / "signing.key").exists()  # nothing lost


def test_a_directory_listing_keys_the_node_does_not_hold_changes_nothing(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    before = bytes(nld.keys.signing.verify_key)
    key_rotation.stage(nld, passphrase=None)  # staged, but governance listed other keys
    listed = replace(member_of(nld), signing_key=bytes(32 * [7]), encryption_key=bytes(32 * [8]))
    _install_everywhere(fed, _directory_listing(fed, 2, listed))
    assert bytes(nld.keys.signing.verify_key) == before
    assert (nld.settings.keys_dir / "next" / "signing.key").exists()  # still staged
    assert nld.cache.get("keys_unreachable")  # tried once for this version, not on every read


def test_cli_rotate_show_and_discard(fed: Federation, tmp_path: Path) -> None:
    home = str(fed.nodes["nld"].settings.home)
    runner = CliRunner()
    out = tmp_path / "nld.member.json"
    result = runner.invoke(cli, ["--home", home, "keys", "rotate", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    descriptor = json.loads(out.read_text())
    assert descriptor == info["descriptor"] and descriptor["node_id"] == "nld"
    current = fed.nodes["nld"].keys.public()
    assert descriptor["log_key"] == current["log_key"]
    assert descriptor["signing_key"] != current["signing_key"]
    assert descriptor["roles"] == [
        "analyst",
        "data-owner",
        "linkage-unit",
        "witness",
    ]  # as the directory lists
    assert info["staged"]["signing_key"]["public"] == descriptor["signing_key"]

    shown = json.loads(runner.invoke(cli, ["--home", home, "keys", "show", "--json"]).output)
    assert shown["staged"] == info["staged"]
    again = runner.invoke(cli, ["--home", home, "keys", "rotate", "--json"])
    assert again.exit_code != 0 and json.loads(again.output)["error"] == "key_rotation_pending"
    text = runner.invoke(cli, ["--home", home, "keys", "rotate", "--discard"])
    assert text.exit_code == 0 and text.output.strip() == "removed the staged keys"
    assert json.loads(runner.invoke(cli, ["--home", home, "keys", "show", "--json"]).output)["staged"] == {}
    assert _rotations(fed, "nld") == [("nld", "staged"), ("nld", "discarded")]
