"""``palermo demo``: a sandbox of three nodes, synthetic records, and everything the node can do so far.

The demo talks to the sandbox's real node processes over loopback HTTP, exactly as nodes talk to
each other, and prints what happens for a person to read.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.context import NodeContext, open_node
from node.services import demo_keys, demo_matching, demo_query, sandbox

COUNTRIES = ["NLD", "ROU", "UKR"]
Say = Callable[[str], None]


def run_demo(
    *, root: Path | None = None, records: int = 2000, seed: int = 7, keep: bool = False, say: Say = print
) -> dict[str, Any]:
    """Run the whole demo; returns a summary. Tears the sandbox down unless ``keep``."""
    started = time.perf_counter()
    workdir = root or Path(tempfile.mkdtemp(prefix="palermo-demo-"))
    say(f"Palermo demo: a federation of {', '.join(COUNTRIES)} in {workdir}")
    summary: dict[str, Any] = {"dir": str(workdir)}
    say("\n1. Starting three nodes (own keys, own SQLite database, signed federation directory) ...")
    sandbox_info = sandbox.up(workdir, COUNTRIES)
    for n in sandbox_info["nodes"]:
        say(f"   {n['id']} ({n['country']}) serving at {n['url']}")
    nodes = {n["id"]: open_node(Path(n["home"])) for n in sandbox_info["nodes"]}
    try:
        summary["records"] = _load_records(nodes, workdir, records, seed, say)
        summary["ping"] = _ping_all(nodes, say)
        summary["outbox"] = _outbox_delivery(nodes, say)
        summary["hostile"] = _hostile_envelopes(nodes, say)
        summary["matching"] = demo_matching.run(nodes, say, step=6)
        summary["query"] = demo_query.run(nodes, say, step=7)
        summary["keys"] = demo_keys.run(nodes, workdir, say, step=8)
        summary["audit"] = _audit(nodes, workdir, say)
    finally:
        for node in nodes.values():
            node.close()
        if not keep:
            sandbox.down(workdir)
            if root is None:
                shutil.rmtree(workdir, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    say(
        f"\nDone in {summary['seconds']} s."
        + (f" The sandbox is still running in {workdir}." if keep else "")
    )
    return summary


def _load_records(
    nodes: dict[str, NodeContext], workdir: Path, records: int, seed: int, say: Say
) -> dict[str, Any]:
    from node.services.ingest import ingest_file
    from node.services.records import stats
    from node.services.synth import generate_federation, write_rows

    say(
        f"\n2. Generating {records} synthetic case-person rows per country (some people appear in several countries,"
    )
    say("   under transliterated, misspelt and reordered names) and loading them ...")
    # The hidden ground-truth column is loaded too (never used by matching), to score the matches below.
    rows = generate_federation(COUNTRIES, records, seed=seed, overlap=0.1, include_truth=True)
    result: dict[str, Any] = {}
    for country, country_rows in rows.items():
        node = nodes[country.lower()]
        path = workdir / f"{country.lower()}-cases.csv"
        write_rows(country_rows, path, "csv")
        path.chmod(0o600)
        t0 = time.perf_counter()
        report = ingest_file(node, path)
        rate = report.rows_loaded / max(time.perf_counter() - t0, 1e-9)
        held = stats(node)
        result[node.node_id] = {"rows": report.rows_loaded, "rows_per_second": round(rate), "stats": held}
        say(
            f"   {node.node_id}: loaded {report.rows_loaded} rows ({rate:,.0f} rows/s): {held.get('persons')} persons, "
            f"{held.get('cases')} cases, {held.get('victims')} victims, {held.get('perpetrators')} perpetrators"
        )
    return result


def _ping_all(nodes: dict[str, NodeContext], say: Say) -> list[dict[str, Any]]:
    from node.services.peers import ping

    say("\n3. Signed, encrypted ping envelopes between every pair of nodes:")
    results = []
    for node in nodes.values():
        for r in ping(node):
            results.append({"from": node.node_id, **r})
            state = f"ok in {r['rtt_ms']} ms" if r["ok"] else f"FAILED ({r['error']})"
            say(f"   {node.node_id} -> {r['peer']}: {state}")
    return results


def _outbox_delivery(nodes: dict[str, NodeContext], say: Say) -> dict[str, Any]:
    from node.services.outbox import enqueue, list_messages

    sender = nodes["nld"]
    say("\n4. A message through the durable outbox (delivered by the sender's scheduler process):")
    message_id = enqueue(sender, "ukr", "ping", {"nonce": sender.random_bytes(16).hex()})
    deadline = time.monotonic() + 30
    status = "pending"
    while time.monotonic() < deadline:
        status = next(m["status"] for m in list_messages(sender) if m["message_id"] == message_id)
        if status != "pending":
            break
        time.sleep(0.3)
    say(f"   nld queued a ping for ukr; its scheduler reports it {status}")
    return {"message_id": message_id, "status": status}


def _hostile_envelopes(nodes: dict[str, NodeContext], say: Say) -> dict[str, str]:
    from protocol.envelope import SealedEnvelope

    sender, target = nodes["nld"], nodes["rou"]
    say("\n5. Hostile envelopes sent to rou are refused, logged, and change nothing else:")
    from node.services.exchange import post_prepared, prepare_request

    prepared = prepare_request(sender, "rou", "ping", {"nonce": sender.random_bytes(16).hex()})
    sealed = prepared.sealed
    flipped = bytearray(sealed.box)
    flipped[40] ^= 1
    tampered = SealedEnvelope(sender="nld", recipient="rou", box=bytes(flipped))
    transport = sender.peer_transport()
    post_prepared(sender, prepared)  # the genuine envelope, its reply read and logged by nld as usual
    outcomes = {"genuine": "accepted"}
    say("   genuine   -> HTTP 200 accepted")
    for label, body in (
        ("replayed", sealed.to_bytes()),
        ("tampered", tampered.to_bytes()),
        ("garbage", b"{not json"),
    ):
        response = transport.post_envelope(target.settings.url, body)
        code = "accepted" if response.status == 200 else _error_code(response.body)
        outcomes[label] = code
        say(f"   {label:9s} -> HTTP {response.status} {code}")
    return outcomes


def _error_code(body: bytes) -> str:
    import json

    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return "unknown"


def _audit(nodes: dict[str, NodeContext], workdir: Path, say: Say) -> dict[str, Any]:
    from node.services.audit_bundle import export_bundle
    from node.services.exchange_log import checkpoint, verify
    from node.services.witness import witness_all
    from protocol.translog.audit import verify_bundle
    from protocol.translog.budget_audit import budget_audit
    from protocol.translog.bundle import read_lines
    from protocol.translog.reconcile import reconcile

    say("\n9. Each node signs a checkpoint of its exchange log, its peers witness it (cosign), and an")
    say("   auditor checks the exported bundles offline, with public keys only:")
    result: dict[str, Any] = {"nodes": {}, "reconcile": {}}
    for node in nodes.values():
        checkpoint(node)
        report = verify(node).to_dict()
        cosigned = [o["peer"] for o in witness_all(node) if o["status"] == "cosigned"]
        result["nodes"][node.node_id] = {
            "ok": report.get("ok"),
            "entries": report.get("entries"),
            "witnesses": cosigned,
        }
        say(
            f"   {node.node_id}: {'OK' if report.get('ok') else 'PROBLEMS'}: {report.get('entries')} entries, "
            f"checkpoint cosigned by {', '.join(cosigned) or 'nobody'}"
        )
    bundles = {}
    for node in nodes.values():
        path = workdir / f"{node.node_id}.bundle"
        export_bundle(node, path, witness=False)  # the witnesses cosigned just above
        bundles[node.node_id] = list(read_lines([path.read_bytes()]))
    for node_id in bundles:
        verified, budget = verify_bundle(bundles[node_id]), budget_audit(bundles[node_id])
        result["nodes"][node_id].update(bundle_ok=verified.ok, budget_ok=budget.ok)
        say(f"   palermo audit verify {node_id}.bundle: {verified.summary()}")
        say(f"   palermo audit budget {node_id}.bundle: {budget.summary()}")
    names = sorted(bundles)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            paired = reconcile(bundles[a], bundles[b])
            result["reconcile"][f"{a}-{b}"] = paired.ok
            say(f"   palermo audit reconcile {a}.bundle {b}.bundle: {paired.summary()}")
            for problem in paired.problems[:3]:
                say(f"      {problem.message}")
    return result
