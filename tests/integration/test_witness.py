"""Witnessing: peers cosign a node's checkpoints only while its log keeps one history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from federation import Federation, build_federation
from sqlalchemy import delete, func, select

from node.errors import RemoteRefusal
from node.services.exchange import send_request
from node.services.exchange_log import checkpoint, recent_entries
from node.services.witness import cosigned_note, witness_all, witness_checkpoint, witnessing_status
from node.storage.models.witness import LogCosignature, WitnessedLog
from protocol.translog import Checkpoint, log_origin, sign_checkpoint, verify_checkpoint
from protocol.translog.cosign import verify_cosignature, witness_name


@pytest.fixture
def fed(make_home: Callable[..., Path], database_url: str | None) -> Federation:
    # rou, the witness in most tests, is first, so it runs on the parametrised database
    return build_federation(
        make_home, [("rou", "ROU"), ("nld", "NLD"), ("ukr", "UKR")], database_url=database_url
    )


def _grow(fed: Federation, pings: int = 2) -> Checkpoint:
    for i in range(pings):
        send_request(fed.nodes["nld"], "rou", "ping", {"nonce": f"{i:032x}"})
    fed.clock.now += 1
    return checkpoint(fed.nodes["nld"])


def _cosignatures(fed: Federation) -> list[tuple[int, str]]:
    with fed.nodes["nld"].db.read() as session:
        rows = session.execute(
            select(LogCosignature.checkpoint_size, LogCosignature.witness).order_by(LogCosignature.id)
        )
        return [(int(size), witness) for size, witness in rows]


def test_witnesses_cosign_and_follow_the_log_with_consistency_proofs(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    first = _grow(fed)
    assert sorted(o["status"] for o in witness_all(nld)) == ["cosigned", "cosigned"]
    second = _grow(fed, 3)
    assert second.size > first.size
    outcomes = witness_all(nld)  # each witness checks a consistency proof from the size it cosigned
    assert [o["status"] for o in outcomes] == ["cosigned", "cosigned"]
    assert sorted(_cosignatures(fed)) == sorted(
        [(first.size, "rou"), (first.size, "ukr"), (second.size, "rou"), (second.size, "ukr")]
    )
    with nld.db.read() as session:
        from node.storage.models.log import LogCheckpoint

        note = (
            session.execute(select(LogCheckpoint.note).where(LogCheckpoint.size == second.size))
            .scalar_one()
            .encode()
        )
    signed = cosigned_note(nld, second.size, note)
    assert verify_checkpoint(signed, origin=log_origin("nld"), public_key=nld.keys.log.verify_key) == second
    for witness in ("rou", "ukr"):
        verify_cosignature(
            signed, name=witness_name(witness), public_key=fed.nodes[witness].keys.log.verify_key
        )
    # the witness logged what it cosigned: its own bundle shows which history it saw
    cosigned = [e for e in recent_entries(fed.nodes["rou"], limit=50) if e["kind"] == "witness"]
    assert [(e["peer"], e["outcome"], e["detail"]["size"]) for e in cosigned][:2] == [
        ("nld", "cosigned", second.size),
        ("nld", "cosigned", first.size),
    ]


def test_a_log_that_forgot_what_a_witness_saw_retries_with_the_right_proof(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    _grow(fed)
    witness_checkpoint(nld, "rou")
    with nld.db.transaction() as session:
        session.execute(delete(LogCosignature))
    later = _grow(fed)
    outcome = witness_checkpoint(nld, "rou")
    assert (outcome["status"], outcome["size"]) == ("cosigned", later.size)


def test_a_fork_is_refused_loudly_and_logged(fed: Federation) -> None:
    nld, rou = fed.nodes["nld"], fed.nodes["rou"]
    seen = _grow(fed)
    witness_checkpoint(nld, "rou")
    forged = Checkpoint(
        origin=log_origin("nld"), size=seen.size, root=bytes(32)
    )  # another root for the same size
    note = sign_checkpoint(forged, signing_key=nld.keys.log).decode()
    with pytest.raises(RemoteRefusal) as raised:
        send_request(nld, "rou", "log.witness", {"checkpoint": note, "old_size": seen.size, "proof": []})
    assert raised.value.code == "log_fork"
    bigger = Checkpoint(
        origin=log_origin("nld"), size=seen.size + 5, root=bytes(32)
    )  # a longer history that does not extend it
    note = sign_checkpoint(bigger, signing_key=nld.keys.log).decode()
    with pytest.raises(RemoteRefusal) as raised:
        send_request(nld, "rou", "log.witness", {"checkpoint": note, "old_size": seen.size, "proof": []})
    assert raised.value.code == "log_fork"
    older = Checkpoint(origin=log_origin("nld"), size=1, root=bytes(32))
    note = sign_checkpoint(older, signing_key=nld.keys.log).decode()
    with pytest.raises(RemoteRefusal) as raised:
        send_request(nld, "rou", "log.witness", {"checkpoint": note, "old_size": seen.size, "proof": []})
    assert raised.value.code == "log_rollback"
    found = [(e["outcome"], e["code"]) for e in recent_entries(rou, limit=20) if e["kind"] == "witness"]
    assert found[:3] == [
        ("fork_detected", "log_rollback"),
        ("fork_detected", "log_fork"),
        ("fork_detected", "log_fork"),
    ]
    with rou.db.read() as session:  # the witness still holds the history it cosigned
        assert session.execute(select(WitnessedLog.size)).scalar_one() == seen.size


def test_a_checkpoint_signed_with_another_key_is_refused(fed: Federation) -> None:
    nld = fed.nodes["nld"]
    forged = Checkpoint(origin=log_origin("nld"), size=3, root=bytes(32))
    note = sign_checkpoint(forged, signing_key=fed.nodes["ukr"].keys.log).decode()
    with pytest.raises(RemoteRefusal) as raised:
        send_request(nld, "rou", "log.witness", {"checkpoint": note, "old_size": 0, "proof": []})
    assert raised.value.code in ("unsigned_note", "bad_signature")
    with fed.nodes["rou"].db.read() as session:
        assert session.execute(select(func.count()).select_from(WitnessedLog)).scalar_one() == 0


def test_cli_lists_checkpoints_with_their_witnesses_and_reports_silent_ones(fed: Federation) -> None:
    import json

    from click.testing import CliRunner

    from node.cli import cli

    nld = fed.nodes["nld"]
    signed = _grow(fed)
    witness_all(nld)
    home = str(nld.settings.home)
    listed = CliRunner().invoke(cli, ["--home", home, "audit", "checkpoints", "--json"])
    assert listed.exit_code == 0, listed.output
    newest = json.loads(listed.stdout)["checkpoints"][0]
    assert (newest["size"], newest["witnesses"]) == (signed.size, ["rou", "ukr"])
    assert json.loads(listed.stdout)["witnessing"]["state"] == "no_policy"
    text = CliRunner().invoke(cli, ["--home", home, "audit", "checkpoints"])
    assert "rou, ukr" in text.output
    assert text.output.splitlines()[-1] == (
        "witness policy: none in the directory (cosignatures are kept, none is required)"
    )
    # the CLI reaches peers over HTTP, and these test peers have no server: named, and exit 1
    _grow(fed)
    silent = CliRunner().invoke(cli, ["--home", home, "audit", "witness", "--peer", "rou", "--json"])
    assert silent.exit_code == 1
    assert json.loads(silent.stdout)["witnesses"][0]["status"] in ("no_answer", "refused")


def test_auditors_get_checkpoints_and_proofs_that_verify(fed: Federation) -> None:
    from node.services.users import add_user
    from protocol.canonical import b64decode
    from protocol.translog import LogEntry, verify_consistency, verify_inclusion

    nld = fed.nodes["nld"]
    first = _grow(fed, 2)
    witness_all(nld)
    second = _grow(fed, 5)
    client = fed.clients["nld"]
    _, token = add_user(nld, "auditor-1", "auditor")
    auth = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/audit/checkpoints", headers=auth).get_json()["checkpoints"]
    assert [c["size"] for c in listed] == [second.size, first.size]
    assert listed[1]["witnesses"] == ["rou", "ukr"]
    for index in (0, first.size - 1, second.size - 1):
        got = client.get(
            f"/api/v1/audit/proofs/inclusion?index={index}&size={second.size}", headers=auth
        ).get_json()
        signed = verify_checkpoint(
            got["checkpoint"].encode(), origin=log_origin("nld"), public_key=nld.keys.log.verify_key
        )
        leaf = LogEntry(**got["entry"]).leaf_hash()
        assert leaf.hex() == got["leaf_hash"]
        verify_inclusion(
            leaf, index, second.size, [b64decode(h, what="p") for h in got["proof"]], signed.root
        )
    got = client.get(
        f"/api/v1/audit/proofs/consistency?old={first.size}&new={second.size}", headers=auth
    ).get_json()
    verify_consistency(
        first.size, second.size, first.root, second.root, [b64decode(h, what="p") for h in got["proof"]]
    )
    missing = client.get(f"/api/v1/audit/proofs/inclusion?index=0&size={second.size + 1}", headers=auth)
    assert (missing.status_code, missing.get_json()["error"]) == (404, "unknown_checkpoint")
    for query in ("consistency?old=x&new=2", "inclusion?index=-1&size=2", f"inclusion?index=0&size={2**64}"):
        bad = client.get(f"/api/v1/audit/proofs/{query}", headers=auth)
        assert (bad.status_code, bad.get_json()["error"]) == (400, "invalid_request"), query
    _, analyst = add_user(nld, "analyst-1", "analyst")
    assert (
        client.get("/api/v1/audit/checkpoints", headers={"Authorization": f"Bearer {analyst}"}).status_code
        == 403
    )


def _bundle(fed: Federation, node_id: str, tmp_path: Path) -> list[bytes]:
    from node.services.audit_bundle import export_bundle
    from protocol.translog.bundle import read_lines

    path = tmp_path / f"{node_id}.bundle"
    export_bundle(fed.nodes[node_id], path, witness=False)  # the tests ask the witnesses themselves
    return list(read_lines([path.read_bytes()]))


def test_bundles_carry_cosignatures_and_the_verifier_checks_them(fed: Federation, tmp_path: Path) -> None:
    from protocol.translog.audit import verify_bundle

    nld = fed.nodes["nld"]
    signed = _grow(fed)
    witness_all(nld)
    report = verify_bundle(_bundle(fed, "nld", tmp_path))
    assert report.ok, report.problems
    assert report.cosigned[signed.size] == ["rou", "ukr"]
    # a cosignature changed in the database is caught by the auditor, who names the witness
    with nld.db.transaction() as session:
        row = session.execute(select(LogCosignature).where(LogCosignature.witness == "rou")).scalar_one()
        prefix, _, payload = row.line.rpartition(" ")
        row.line = f"{prefix} {payload[:-8]}AAAAAAA{payload[-1]}"
    report = verify_bundle(_bundle(fed, "nld", tmp_path))
    assert not report.ok
    assert any("cosignature of rou does not verify" in p.message for p in report.problems)


def test_a_node_that_shows_a_witness_another_history_is_caught_by_reconcile(
    fed: Federation, tmp_path: Path
) -> None:
    from protocol.translog.reconcile import reconcile

    nld = fed.nodes["nld"]
    honest = _grow(fed)
    forged = Checkpoint(origin=log_origin("nld"), size=honest.size, root=bytes(range(32)))
    note = sign_checkpoint(forged, signing_key=nld.keys.log).decode()
    reply = send_request(nld, "ukr", "log.witness", {"checkpoint": note, "old_size": 0, "proof": []})
    assert (
        reply.reply.payload["status"] == "cosigned"
    )  # ukr saw nld's log for the first time: trust on first use
    assert witness_checkpoint(nld, "rou")["status"] == "cosigned"  # rou got the honest history
    fine = reconcile(_bundle(fed, "nld", tmp_path), _bundle(fed, "rou", tmp_path))
    assert fine.ok, fine.problems
    caught = reconcile(_bundle(fed, "nld", tmp_path), _bundle(fed, "ukr", tmp_path))
    assert not caught.ok
    assert any("nld showed ukr another history" in p.message for p in caught.problems)


def test_auditors_download_a_bundle_that_verifies(fed: Federation) -> None:
    import gzip

    from node.services.users import add_user
    from protocol.translog.audit import verify_bundle
    from protocol.translog.bundle import read_lines

    nld = fed.nodes["nld"]
    _grow(fed)
    witness_all(nld)
    _, token = add_user(nld, "auditor-2", "auditor")
    response = fed.clients["nld"].get("/api/v1/audit/bundle", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    assert gzip.decompress(response.data).startswith(b'{"')
    report = verify_bundle(read_lines([response.data]))
    assert report.ok and report.node_id == "nld" and any(report.cosigned.values())


def test_export_has_a_quorum_cosign_first_and_the_policy_bounds_the_wait(
    make_home: Callable[..., Path], database_url: str | None, tmp_path: Path
) -> None:
    from node.services.audit_bundle import export_bundle
    from protocol.directory import WitnessPolicy
    from protocol.translog.audit import AuditReport, verify_bundle
    from protocol.translog.bundle import read_lines

    policy = WitnessPolicy(quorum=2, max_delay=3600)
    fed = build_federation(
        make_home,
        [("nld", "NLD"), ("rou", "ROU"), ("ukr", "UKR")],
        database_url=database_url,
        witness_policy=policy,
    )
    nld = fed.nodes["nld"]

    def export(**options: bool) -> tuple[dict[str, Any], AuditReport]:
        path = tmp_path / "nld.bundle"
        result = export_bundle(nld, path, **options)
        return result, verify_bundle(list(read_lines([path.read_bytes()])))

    _grow(fed)
    result, report = export()
    assert [(a["peer"], a["status"]) for a in result["witnesses"]] == [
        ("rou", "cosigned"),
        ("ukr", "cosigned"),
    ]
    assert report.ok, report.problems
    witnessing = report.witnessing
    assert witnessing["policy"] == {"quorum": 2, "max_delay": 3600}
    assert witnessing["witnessed_size"] == result["witnesses"][0]["size"]
    assert 0 < witnessing["unwitnessed_entries"] == result["entries"] - witnessing["witnessed_size"]

    status = witnessing_status(nld)
    assert status["policy"] == {"quorum": 2, "max_delay": 3600} and status["state"] == "ok"
    assert status["witnessed_size"] == witnessing["witnessed_size"] and status["due"] is not None

    fed.clock.now += 7200  # two hours on, nobody witnessed the tail: over the policy's hour
    assert witnessing_status(nld)["state"] == "late"  # the operator sees it before an auditor does
    _, late = export(witness=False)
    assert [p.subject for p in late.problems] == ["witness"]
    assert "2.0 h later, at the export; the witness policy allows 1.0 h" in late.problems[0].message

    result, again = export()  # the witnesses cosign the tail: in policy again
    assert again.ok, again.problems
    assert witnessing_status(nld)["state"] == "ok"
    assert witnessing_status(fed.nodes["rou"])["witnessed_size"] == 0  # rou's own log: never witnessed
