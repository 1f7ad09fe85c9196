"""The auditor's offline toolkit against real nodes: export a bundle after real exchanges, verify it,
tamper with it (in the file and in the database), reconcile two nodes, audit the privacy budget,
and the four CLI commands.

Bundles are tampered with the way someone holding the file would: decompress, edit lines,
recompress. Each case asserts the exact problems reported.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import nacl.signing
import pytest
from click.testing import CliRunner
from federation import Federation, build_federation, member_of, signed_directory
from sqlalchemy import text

from node.cli.audit_offline import register
from node.errors import OperatorError, RemoteRefusal
from node.query.ledger import period_of, release
from node.services import exchange_log
from node.services.audit_bundle import export_bundle
from node.services.directory import install_directory
from node.services.exchange import send_request
from protocol.canonical import b64encode, canonical_json, sha256_hex
from protocol.translog import Checkpoint, LogEntry, log_origin, note_key_id, sign_checkpoint
from protocol.translog.audit import verify_bundle
from protocol.translog.budget_audit import budget_audit
from protocol.translog.bundle import compress, parse_header, read_lines
from protocol.translog.bundle import entry_line as bundle_entry_line
from protocol.translog.reconcile import reconcile

Lines = list[bytes]


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    """nld (on the parametrised database) and rou: three pings nld -> rou, a checkpoint at 7 entries
    each, one ping rou -> nld, a checkpoint at 9. nld's entries: 0 directory installed, 1-6 its
    pings (out) and their pongs (in), 7 rou's ping (in), 8 its pong (out)."""
    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")], database_url=database_url)
    for i in range(3):
        send_request(fed.nodes["nld"], "rou", "ping", {"nonce": f"{i:032x}"})
        fed.clock.now += 1
    for node in fed.nodes.values():
        exchange_log.checkpoint(node)
    send_request(fed.nodes["rou"], "nld", "ping", {"nonce": "ab" * 16})
    for node in fed.nodes.values():
        exchange_log.checkpoint(node)
    return fed


def export(fed: Federation, node_id: str, folder: Path) -> Path:
    path = folder / f"{node_id}.bundle"
    export_bundle(fed.nodes[node_id], path, witness=False)
    return path


def lines_of(path: Path) -> Lines:
    return list(read_lines([path.read_bytes()]))


def messages(lines: Lines, **options: Any) -> list[str]:
    return [p.message for p in verify_bundle(lines, **options).problems]


def edit_entry(lines: Lines, index: int, **changes: Any) -> Lines:
    """A copy of the bundle's lines with entry ``index`` changed (and its line kept canonical)."""
    out = list(lines)
    at = entry_line(lines, index)
    out[at] = canonical_json({**json.loads(lines[at]), **changes})
    return out


def entry_line(lines: Lines, index: int) -> int:
    return next(
        i for i, line in enumerate(lines) if b'"type":"entry"' in line and json.loads(line)["index"] == index
    )


CP7 = "checkpoint at size 7: root does not match entries"
CP9 = "checkpoint at size 9: root does not match entries"


# --- export and verify ----------------------------------------------------------------------------


def test_export_after_real_exchanges_verifies(fed: Federation, tmp_path: Path) -> None:
    result = export_bundle(fed.nodes["nld"], tmp_path / "nld.bundle", witness=False)
    path = tmp_path / "nld.bundle"
    assert {k: result[k] for k in ("node_id", "entries", "checkpoints")} == {
        "node_id": "nld",
        "entries": 9,
        "checkpoints": 2,
    }
    assert result["bytes"] == path.stat().st_size and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    lines = lines_of(path)
    header = parse_header(lines[0])
    assert header.node_id == "nld" and header.entries == 9 and header.checkpoints == 2
    assert header.log_public_key == bytes(fed.nodes["nld"].keys.log.verify_key)
    assert header.budget_policy.to_dict() == {
        "period": "month", "peer_rho": "0.5", "global_rho": "1", "query_rho": "0.1", "peer_caps": {}, "delta": "0.0000001"
    }  # fmt: skip
    assert [json.loads(line)["type"] for line in lines[1:]] == ["checkpoint"] * 2 + ["entry"] * 9 + ["end"]
    report = verify_bundle(lines)
    assert report.ok and report.problems == ()
    assert report.summary() == (
        "bundle OK: nld (NLD), 9 entries, 2 checkpoints, last checkpoint at size 9; the directory sets no witness policy"
    )
    assert report.directory is not None and report.directory.version == 1
    assert report.directory.governance_keys == tuple(
        sorted(sha256_hex(bytes(k.verify_key)) for k in fed.governance)
    )
    assert report.directory.threshold == 2 and len(report.directory.signed_by) == 2
    exported_again = tmp_path / "again.bundle"
    export_bundle(fed.nodes["nld"], exported_again, witness=False)
    assert exported_again.read_bytes() == path.read_bytes()  # same log, same clock: same bytes


def test_governance_keys_the_auditor_trusts(fed: Federation, tmp_path: Path) -> None:
    lines = lines_of(export(fed, "nld", tmp_path))
    directory = verify_bundle(lines).directory
    assert directory is not None
    keys = directory.governance_keys
    assert verify_bundle(lines, governance_keys=keys).ok
    assert messages(lines, governance_keys=keys[:2]) == [
        f"directory version 1: governance key {keys[2]} is not one of the keys given"
    ]


def _resign_all(lines: Lines, key: nacl.signing.SigningKey) -> Lines:
    """What someone with their own log key could do: a new key in the header, every note re-signed."""
    header = replace(parse_header(lines[0]), log_public_key=bytes(key.verify_key)).signed_with(key)
    out = [canonical_json(header.to_dict())]
    for line in lines[1:]:
        obj = json.loads(line)
        if obj["type"] == "checkpoint":
            origin, size, root = obj["note"].split("\n")[:3]
            cp = Checkpoint(origin=origin, size=int(size), root=base64.b64decode(root))
            obj["note"] = sign_checkpoint(cp, signing_key=key).decode()
            line = canonical_json(obj)
        out.append(line)
    return out


def _swap(lines: Lines, a: int, b: int) -> Lines:
    out = list(lines)
    i, j = entry_line(lines, a), entry_line(lines, b)
    out[i], out[j] = out[j], out[i]
    return out


def _insert_copy(lines: Lines, index: int) -> Lines:
    at = entry_line(lines, index)
    return [*lines[: at + 1], lines[at], *lines[at + 1 :]]


def _delete(lines: Lines, index: int) -> Lines:
    at = entry_line(lines, index)
    return [*lines[:at], *lines[at + 1 :]]


def _append_forged(lines: Lines) -> Lines:
    """A well-formed entry 9 chained to entry 8, and an end line that counts it."""
    last = json.loads(lines[-2])
    forged = LogEntry(index=9, time=last["time"], kind="envelope", outcome="accepted", prev=last["leaf_hash"])
    end = canonical_json({"type": "end", "entries": 10, "checkpoints": 2})
    return [*lines[:-1], bundle_entry_line(forged.to_dict(), forged.leaf_hash().hex()).rstrip(b"\n"), end]


def _checkpoint_root(lines: Lines) -> Lines:
    """The checkpoint at size 7 rewritten to carry the root of size 9 (its signature then fails)."""
    notes = [json.loads(line)["note"] for line in lines[1:3]]
    root7, root9 = (n.split("\n")[2] for n in notes)
    return [
        lines[0],
        canonical_json({"type": "checkpoint", "note": notes[0].replace(root7, root9)}),
        *lines[2:],
    ]


def _signed_wrong_root(fed: Federation) -> Callable[[Lines], Lines]:
    def tamper(lines: Lines) -> Lines:
        wrong = Checkpoint(origin=log_origin("nld"), size=7, root=b"\x01" * 32)
        note = sign_checkpoint(wrong, signing_key=fed.nodes["nld"].keys.log).decode()
        return [lines[0], canonical_json({"type": "checkpoint", "note": note}), *lines[2:]]

    return tamper


def _forged_checkpoint(lines: Lines) -> Lines:
    note = json.loads(lines[2])["note"]
    origin, size, root = note.split("\n")[:3]
    cp = Checkpoint(origin=origin, size=int(size), root=base64.b64decode(root))
    forged = sign_checkpoint(cp, signing_key=nacl.signing.SigningKey(b"\x07" * 32)).decode()
    return [lines[0], lines[1], canonical_json({"type": "checkpoint", "note": forged}), *lines[3:]]


def _bad_header_signature(lines: Lines) -> Lines:
    obj = json.loads(lines[0])
    signature = bytearray(base64.b64decode(obj["header_signature"]))
    signature[0] ^= 1
    return [canonical_json({**obj, "header_signature": b64encode(bytes(signature))}), *lines[1:]]


def _swapped_key_only(lines: Lines) -> Lines:
    key = bytes(nacl.signing.SigningKey(b"\x09" * 32).verify_key)
    return [canonical_json({**json.loads(lines[0]), "log_public_key": b64encode(key)}), *lines[1:]]


UNSIGNED = "(note carries no signature by palermo/nld/exchange-log (key id {key_id}))"
COUNTS_9 = "states 9 entries and 2 checkpoints, the bundle holds"
TAMPERING: list[tuple[str, Callable[[Lines], Lines], list[str]]] = [
    (
        "change-entry-field",
        lambda ls: edit_entry(ls, 4, size=1),
        ["entry 4: contents changed (leaf hash differs)", CP7, CP9],
    ),
    (
        "delete-entry",
        lambda ls: _delete(ls, 4),
        [
            "entry 4: missing (index jumps from 3 to 5)",
            CP7,
            CP9 + " (the log holds only 8)",
            f"end line: {COUNTS_9} 8 and 2",
            f"header: {COUNTS_9} 8 and 2",
        ],
    ),
    (
        "reorder-entries",
        lambda ls: _swap(ls, 4, 5),
        [
            "entry 4: missing (index jumps from 3 to 5)",
            "entry 4: duplicate or out of order (after entry 5)",
            "entry 6: inserted or reordered (prev does not match entry 5)",
            CP7,
            CP9,
        ],
    ),
    (
        "insert-a-copy",
        lambda ls: _insert_copy(ls, 4),
        [
            "entry 4: duplicate or out of order (after entry 4)",
            CP7,
            CP9,
            f"end line: {COUNTS_9} 10 and 2",
            f"header: {COUNTS_9} 10 and 2",
        ],
    ),
    (
        "insert-a-forged-entry-after-the-chain",  # a valid chain: only the signed header's count shows it
        _append_forged,
        [f"header: {COUNTS_9} 10 and 2"],
    ),
    ("change-checkpoint-root", _checkpoint_root, ["checkpoint at size 7: bad signature"]),
    (
        "forge-checkpoint-with-other-key",
        _forged_checkpoint,
        ["checkpoint at size 9: bad signature " + UNSIGNED],
    ),
    (
        "break-header-signature",
        _bad_header_signature,
        ["header: the signature does not verify with the header's log key"],
    ),
    (
        "swap-header-key",
        _swapped_key_only,
        [
            "header: the signature does not verify with the header's log key",
            "header: the log key is not the one directory version 1 lists for nld",
            "checkpoint at size 7: bad signature " + UNSIGNED,
            "checkpoint at size 9: bad signature " + UNSIGNED,
        ],
    ),
    (
        "swap-header-key-and-resign-everything",
        lambda ls: _resign_all(ls, nacl.signing.SigningKey(b"\x08" * 32)),
        ["header: the log key is not the one directory version 1 lists for nld"],
    ),
    ("drop-end-line", lambda ls: ls[:-1], ["bundle truncated: no end line after line 12"]),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t, e) for _, t, e in TAMPERING], ids=[n for n, _, _ in TAMPERING]
)
def test_tampering_with_the_bundle_is_named(
    fed: Federation, tmp_path: Path, tamper: Callable[[Lines], Lines], expected: list[str]
) -> None:
    tampered = tamper(lines_of(export(fed, "nld", tmp_path)))
    report = verify_bundle(tampered)
    key_id = note_key_id(log_origin("nld"), parse_header(tampered[0]).log_public_key).hex()  # the header's
    expected = [e.format(key_id=key_id) for e in expected]
    assert [p.message for p in report.problems] == expected
    assert report.problem_count == len(expected) and not report.ok


def test_a_checkpoint_signed_over_a_wrong_root_is_named(fed: Federation, tmp_path: Path) -> None:
    lines = lines_of(export(fed, "nld", tmp_path))
    assert messages(_signed_wrong_root(fed)(lines)) == [CP7]


def test_a_cut_file_is_named(fed: Federation, tmp_path: Path) -> None:
    path = export(fed, "nld", tmp_path)
    data = path.read_bytes()
    report = verify_bundle(read_lines([data[: len(data) * 2 // 3]]))
    assert not report.ok
    assert report.problems[0].message.startswith("compressed data ends early after line ")
    assert report.problems[0].message.endswith("(the file was cut)")
    assert any(p.message.startswith("bundle truncated: no end line") for p in report.problems)


def test_tampering_in_the_database_shows_in_the_exported_bundle(fed: Federation, tmp_path: Path) -> None:
    node = fed.nodes["nld"]
    with node.db.transaction() as session:
        session.execute(text("UPDATE log_entries SET peer = 'ukr' WHERE idx = 4"))
    assert messages(lines_of(export(fed, "nld", tmp_path))) == [
        "entry 4: contents changed (leaf hash differs)",
        CP7,
        CP9,
    ]


def test_export_refuses_a_folder_that_does_not_exist(fed: Federation, tmp_path: Path) -> None:
    with pytest.raises(
        OperatorError, match=r"^cannot write the bundle to .*: No such file or directory$"
    ) as caught:
        export_bundle(fed.nodes["nld"], tmp_path / "missing" / "nld.bundle", witness=False)
    assert caught.value.code == "bundle_not_written"


def test_a_failed_export_leaves_the_old_bundle_and_no_temporary_file(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    path = export(fed, "nld", folder)
    before = path.read_bytes()

    def broken(_conn: Any) -> Any:
        yield {}, ""
        raise RuntimeError("the database went away")

    monkeypatch.setattr("node.services.audit_bundle._entries_as_stored", broken)
    with pytest.raises(RuntimeError):
        export_bundle(fed.nodes["nld"], path, witness=False)
    assert path.read_bytes() == before and [p.name for p in folder.iterdir()] == ["nld.bundle"]


def test_export_signs_a_checkpoint_over_every_entry_first(fed: Federation, tmp_path: Path) -> None:
    _charge(fed, 1, 100_000_000)  # one entry after the last checkpoint
    result = export_bundle(fed.nodes["rou"], tmp_path / "rou.bundle", witness=False)
    assert result["checkpoint_refused"] is None and result["checkpoints"] == 3
    report = verify_bundle(lines_of(tmp_path / "rou.bundle"))
    assert report.ok and report.last_checkpoint_size == report.entries == 10


def test_export_over_a_damaged_log_still_writes_the_bundle(fed: Federation, tmp_path: Path) -> None:
    node = fed.nodes["nld"]
    _charge(fed, 1, 100_000_000, peer="rou")  # rou's ledger: nld's log is unchanged
    with node.db.transaction() as session:
        exchange_log.append(session, time=fed.clock.now, kind="envelope", outcome="accepted")
        session.execute(text("UPDATE log_entries SET size = 5 WHERE idx = 9"))
    result = export_bundle(node, tmp_path / "nld.bundle", witness=False)
    assert (
        result["checkpoint_refused"]
        == "refusing to sign a checkpoint: entry 9: contents changed (leaf hash differs)"
    )
    assert messages(lines_of(tmp_path / "nld.bundle")) == ["entry 9: contents changed (leaf hash differs)"]


def test_a_deleted_row_in_the_database_shows_in_the_exported_bundle(fed: Federation, tmp_path: Path) -> None:
    node = fed.nodes["nld"]
    with node.db.transaction() as session:
        session.execute(text("DELETE FROM log_entries WHERE idx = 8"))
    assert messages(lines_of(export(fed, "nld", tmp_path))) == [CP9 + " (the log holds only 8)"]


# --- reconcile ------------------------------------------------------------------------------------


def test_reconcile_two_nodes_that_exchanged_pings(fed: Federation, tmp_path: Path) -> None:
    nld, rou = lines_of(export(fed, "nld", tmp_path)), lines_of(export(fed, "rou", tmp_path))
    report = reconcile(nld, rou)
    assert report.ok, report.problems
    assert report.paired == 8  # four pings and their pongs, each logged on both sides
    assert (
        report.summary()
        == "logs agree: nld and rou, 8 envelopes logged on both sides, 0 refused, 0 undelivered"
    )
    assert report.refusals == () and report.undelivered == () and report.notes == ()


def test_reconcile_lists_a_refusal_without_failing(fed: Federation, tmp_path: Path) -> None:
    rou = fed.nodes["rou"]
    without_nld = signed_directory([member_of(rou)], fed.governance, version=2, expires=fed.clock.now + 86400)
    install_directory(rou, without_nld, initial=False)
    with pytest.raises(RemoteRefusal):
        send_request(fed.nodes["nld"], "rou", "ping", {"nonce": "cd" * 16})
    nld_lines, rou_lines = lines_of(export(fed, "nld", tmp_path)), lines_of(export(fed, "rou", tmp_path))
    sent = _entry(nld_lines, 9)
    assert [(_entry(nld_lines, 10)["outcome"], _entry(rou_lines, 10)["outcome"])] == [
        ("refused_by_peer", "refused")
    ]
    report = reconcile(nld_lines, rou_lines)
    assert report.ok, report.problems
    assert [p.message for p in report.refusals] == [
        f"nld entry 9: ping {sent['message_id']} (envelope {sent['envelope_hash']}) sent to rou: "
        "refused by rou: unknown_sender (rou entry 10)"
    ]
    assert (
        report.summary()
        == "logs agree: nld and rou, 8 envelopes logged on both sides, 1 refused, 0 undelivered"
    )


def _entry(lines: Lines, index: int) -> dict[str, Any]:
    return dict(json.loads(lines[entry_line(lines, index)]))


def test_reconcile_finds_a_deleted_in_entry(fed: Federation, tmp_path: Path) -> None:
    nld, rou = lines_of(export(fed, "nld", tmp_path)), lines_of(export(fed, "rou", tmp_path))
    received = _entry(rou, 1)  # rou accepted nld's first ping
    assert (received["direction"], received["outcome"]) == ("in", "accepted")
    report = reconcile(nld, _delete(rou, 1))
    assert not report.ok
    sent = _entry(nld, 1)
    assert sent["envelope_hash"] == received["envelope_hash"]
    assert [p.message for p in report.mismatches] == [
        f"nld entry 1: ping {sent['message_id']} (envelope {sent['envelope_hash']}) sent to rou: rou has no entry for it"
    ]
    assert "rou: entry 1: missing (index jumps from 0 to 2)" in [p.message for p in report.problems]


def test_reconcile_finds_an_envelope_hash_that_differs(fed: Federation, tmp_path: Path) -> None:
    nld, rou = lines_of(export(fed, "nld", tmp_path)), lines_of(export(fed, "rou", tmp_path))
    sent = _entry(nld, 3)
    report = reconcile(nld, edit_entry(rou, 3, envelope_hash="ee" * 32))
    assert [p.message for p in report.mismatches] == [
        f"nld entry 3: ping {sent['message_id']} (envelope {sent['envelope_hash']}) sent to rou: "
        f"envelope hash differs, rou entry 3 has envelope {'ee' * 32}"
    ]
    assert report.mismatch_count == 1 and not report.b.ok and report.a.ok


def test_reconcile_finds_a_request_without_reply(fed: Federation, tmp_path: Path) -> None:
    nld, rou = lines_of(export(fed, "nld", tmp_path)), lines_of(export(fed, "rou", tmp_path))
    reply = _entry(rou, 6)  # rou's pong to nld's third ping
    request = _entry(rou, 5)
    assert reply["detail"] == {"reply_to": request["envelope_hash"]}
    report = reconcile(nld, _delete(rou, 6))
    assert [p.message for p in report.mismatches] == [
        f"rou entry 5: accepted request ping {request['message_id']} (envelope {request['envelope_hash']}) "
        "from nld but logged no reply",
        f"nld entry 6: accepted pong {reply['message_id']} (envelope {reply['envelope_hash']}) from rou; "
        "rou has no entry for sending it",
    ]


# --- budget ---------------------------------------------------------------------------------------


def _charge(fed: Federation, query: int, rho_nano: int, peer: str = "nld") -> None:
    release(
        fed.nodes["rou"],
        peer=peer,
        query_hash=f"{query:064x}",
        spec={"q": query},
        measure="cases",
        dimensions=["year"],
        rho_nano=rho_nano,
        message_id=f"{query:032x}",
        draw=lambda: {"cells": [1, 2, 3]},
    )


def test_budget_audit_of_real_charges(fed: Federation, tmp_path: Path) -> None:
    _charge(fed, 1, 100_000_000)
    _charge(fed, 2, 50_000_000)
    _charge(fed, 1, 100_000_000)  # the same query again: the cached answer, no charge
    _charge(fed, 3, 20_000_000, peer="rou")
    report = budget_audit(lines_of(export(fed, "rou", tmp_path)))
    assert report.ok, report.problems
    period = period_of("month", fed.clock.now)
    assert [p.to_dict() for p in report.periods] == [
        {"period": period, "spent": "0.17", "cap": "1", "left": "0.83", "charges": 3, "over": False}
    ]
    assert [p.to_dict() for p in report.peers] == [
        {
            "period": period,
            "peer": "nld",
            "spent": "0.15",
            "cap": "0.5",
            "left": "0.35",
            "charges": 2,
            "over": False,
        },
        {
            "period": period,
            "peer": "rou",
            "spent": "0.02",
            "cap": "0.5",
            "left": "0.48",
            "charges": 1,
            "over": False,
        },
    ]
    assert report.releases == 1
    assert (
        report.summary()
        == "budget OK: rou, 3 charges in 1 period(s), 1 cached answers, within the caps stated in the header"
    )


def test_budget_audit_finds_an_overspend_behind_the_ledgers_back(fed: Federation, tmp_path: Path) -> None:
    _charge(fed, 1, 100_000_000)
    node = fed.nodes["rou"]
    period = period_of("month", fed.clock.now)
    for query in (7, 8, 9, 10, 11):
        with node.db.transaction() as session:
            exchange_log.append(
                session,
                time=fed.clock.now,
                kind="budget_charge",
                peer="nld",
                message_id=f"{query:032x}",
                message_type="query.request",
                outcome="charged",
                detail={"period": period, "rho_nano": 100_000_000, "query_hash": f"{query:064x}"},
            )
    report = budget_audit(lines_of(export(fed, "rou", tmp_path)))
    assert report.log.ok and not report.ok
    last = report.log.entries - 1
    assert [p.message for p in report.problems] == [
        f"entry {last}: charge of rho 0.1 to nld in {period}: nld has spent 0.6, over its cap 0.5"
    ]
    assert [p.to_dict()["over"] for p in report.peers] == [True]


# --- the commands ---------------------------------------------------------------------------------


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    @click.option("--home")
    def root(home: str | None) -> None:
        """A stand-in for ``palermo`` with only the offline audit commands."""

    audit = click.Group("audit")
    register(audit)
    root.add_command(audit)
    return root


def test_cli_export_and_verify(fed: Federation, tmp_path: Path, cli: click.Group) -> None:
    home = fed.nodes["nld"].settings.home
    out = tmp_path / "nld.bundle"
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "audit", "export", "--out", str(out), "--no-witness"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"bundle written: {out}\n  9 entries, 2 checkpoints, ")
    command = ["--home", str(home), "audit", "export", "--out", str(out), "--json", "--no-witness"]
    result = runner.invoke(cli, command)
    assert json.loads(result.output)["entries"] == 9 and json.loads(result.output)["witnesses"] == []
    # without --no-witness it asks rou first; from a shell rou's in-memory test server is out of reach
    result = runner.invoke(cli, ["--home", str(home), "audit", "export", "--out", str(tmp_path / "w.bundle")])
    assert result.exit_code == 0, result.output
    assert (
        "  warning: rou not cosigned (no_answer: the peer could not be reached)" in result.output.splitlines()
    )

    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    env = {"PALERMO_HOME": str(elsewhere)}  # no node there: the offline commands need none
    from node.cli import cli as palermo

    missing = runner.invoke(palermo, ["audit", "verify", str(tmp_path / "missing.bundle")], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.output  # a usage error, no traceback
    result = runner.invoke(cli, ["audit", "verify-bundle", str(out)], env=env)
    assert result.exit_code == 0, result.output
    first, origin, directory, *keys_and_hint = result.output.splitlines()
    assert first == (
        "bundle OK: nld (NLD), 9 entries, 2 checkpoints, last checkpoint at size 9; the directory sets no witness policy"
    )
    assert origin.startswith("  origin palermo/nld/exchange-log, exported ")
    assert directory.startswith("  directory: federation test, version 1, expires ")
    assert len(keys_and_hint) == 4 and sum("(signed)" in line for line in keys_and_hint) == 2
    keys = [line.split()[0] for line in keys_and_hint[:3]]
    result = runner.invoke(
        cli, ["audit", "verify-bundle", str(out), "--json", *(f"--governance-key={k}" for k in keys)]
    )
    assert result.exit_code == 0 and json.loads(result.output)["ok"] is True
    result = runner.invoke(cli, ["audit", "verify-bundle", str(out), "--governance-key", "abc"])
    assert result.exit_code == 2 and "64 lowercase hex digits" in result.output
    not_gzip = tmp_path / "plain.bundle"
    not_gzip.write_bytes(b"{}\n")
    result = runner.invoke(cli, ["audit", "verify-bundle", str(not_gzip)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "bundle has 1 problem(s): unknown node, 0 entries, 0 checkpoints",
        "  compressed data is corrupt after line 0",
    ]


def _write(path: Path, lines: Lines) -> Path:
    path.write_bytes(b"".join(compress(line + b"\n" for line in lines)))
    return path


def test_cli_verify_names_each_problem_and_exits_1(fed: Federation, tmp_path: Path, cli: click.Group) -> None:
    lines = lines_of(export(fed, "nld", tmp_path))
    bad = _write(tmp_path / "bad.bundle", edit_entry(lines, 4, size=1))
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", str(bad)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "bundle has 3 problem(s): nld (NLD), 9 entries, 2 checkpoints"
    assert result.output.splitlines()[-3:] == [
        "  entry 4: contents changed (leaf hash differs)",
        f"  {CP7}",
        f"  {CP9}",
    ]
    result = CliRunner().invoke(cli, ["audit", "verify-bundle", "--json", str(bad)])
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["ok"] is False and data["problem_count"] == 3
    assert data["problems"][0] == {
        "subject": "entry",
        "position": 4,
        "message": "entry 4: contents changed (leaf hash differs)",
    }


def test_cli_reconcile(fed: Federation, tmp_path: Path, cli: click.Group) -> None:
    nld, rou = export(fed, "nld", tmp_path), export(fed, "rou", tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "reconcile", str(nld), str(rou)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "logs agree: nld and rou, 8 envelopes logged on both sides, 0 refused, 0 undelivered",
        "  bundle OK: nld (NLD), 9 entries, 2 checkpoints, last checkpoint at size 9; the directory sets no witness policy",
        "  bundle OK: rou (ROU), 9 entries, 2 checkpoints, last checkpoint at size 9; the directory sets no witness policy",
    ]
    bad = _write(tmp_path / "rou-bad.bundle", edit_entry(lines_of(rou), 3, envelope_hash="ee" * 32))
    result = runner.invoke(cli, ["audit", "reconcile", str(nld), str(bad), "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["ok"] is False and data["mismatch_count"] == 1
    assert "envelope hash differs" in data["mismatches"][0]["message"]
    text_output = runner.invoke(cli, ["audit", "reconcile", str(nld), str(bad)]).output
    assert "  mismatches:" in text_output and text_output.startswith(
        "logs disagree: nld and rou, 1 mismatch(es); rou: "
    )


def test_cli_budget(fed: Federation, tmp_path: Path, cli: click.Group) -> None:
    _charge(fed, 1, 100_000_000)
    path = export(fed, "rou", tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", "budget", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "budget OK: rou, 1 charges in 1 period(s), 0 cached answers, within the caps stated in the header"
    )
    assert lines[1] == "  caps per month: per peer 0.5, all peers 1, per query 0.1 (rho); own caps: none"
    assert lines[2].startswith("  note: caps are the node's settings when it exported the bundle")
    period = period_of("month", fed.clock.now)
    assert [line.split() for line in lines[5:7]] == [
        [period, "(all)", "0.1", "1", "0.9", "1"],
        [period, "nld", "0.1", "0.5", "0.4", "1"],
    ]
    fed.set_setting("rou", budget_peer_caps={"nld": 0.05})
    over = tmp_path / "over.bundle"
    export_bundle(fed.nodes["rou"], over, witness=False)
    result = runner.invoke(cli, ["audit", "budget", str(over), "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["ok"] is False
    assert data["caps"]["peer_caps"] == {"nld": "0.05"}
    assert data["problems"][0]["message"].endswith("nld has spent 0.1, over its cap 0.05")


def test_offline_commands_never_open_a_node(
    fed: Federation, tmp_path: Path, cli: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export(fed, "nld", tmp_path)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an offline command opened a node")

    monkeypatch.setattr("node.cli.audit_offline.open_node_from_ctx", refuse)
    monkeypatch.setattr("node.context.open_node", refuse)
    runner = CliRunner()
    for args in (["verify-bundle", str(path)], ["reconcile", str(path), str(path)], ["budget", str(path)]):
        result = runner.invoke(cli, ["audit", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code in (0, 1) and result.output
