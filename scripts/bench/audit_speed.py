"""Audit speed: proofs, bundle export, offline verification and reconcile, each beside a raw floor.

Builds two nodes, nld and rou, with ``--entries`` log entries each (log_speed.py's make_node and
fill), then measures, each figure beside a reference measured in the same run (the machine may be
shared and noisy, so only the ratios travel):

  * ``witness.inclusion`` and ``witness.consistency`` (what the audit API's ``/audit/proofs/*``
    answer), the first call after a process starts and warm (best of 2), beside what a proof
    built from scratch at least costs (a raw sqlite3 read of the leaf hashes plus n - 1 SHA-256)
    and beside protocol's SubtreeCache answering from a warm cache; verifying the answer (``verify_inclusion`` / ``verify_consistency``) beside one SHA-256 of
    65 bytes times the hashes the check needs;
  * ``export_bundle``: time, bytes and bytes per entry, beside a raw sqlite3 read of the same rows,
    ``json.dumps`` of each, gzip -6 and a write to disk with fsync (the floor of the same file);
  * ``verify_bundle``: time and peak memory of the verifying process, beside a raw gunzip with
    ``json.loads`` of every line plus SHA-256 of every line (in its own process);
  * ``reconcile`` of the two bundles: time and peak memory, beside twice ``verify_bundle`` (it
    verifies both) and a raw pairing (both bundles through ``json.loads``, envelopes in dicts by
    hash) in its own process.

Every measured step runs in a fresh process (scripts/bench/audit_measure.py), so "first call" is
first after process start and the peak resident size (VmHWM, read by the process itself at its
end) is that step's own; "after imports" is that process's peak before the step began.

Reconcile gets real pairs: rou's log mirrors nld's. Index 0 of both is the directory install;
then request/reply exchanges (ping/pong) fill the log to its last index, two nld asks for every
one rou asks. The asker logs the request ``out``/``sent`` and the answer ``in``/``accepted`` with
``detail.reply_to`` naming the request's envelope hash; the other node logs the same envelope
hashes and message ids the other way round. So every envelope pairs, and the reply check runs
both ways. When the count leaves one slot over, index 1 is a send that failed on each side
(which reconcile ignores). A directory (one governance key) lists both nodes, so the bundles
verify clean.

    .venv/bin/python scripts/bench/audit_speed.py [--entries 1000000] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nacl.signing

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from log_speed import T0, fill, make_node

from node.context import NodeContext, open_node
from node.services import exchange_log
from node.services.audit_bundle import export_bundle
from node.services.directory import install_directory
from protocol.directory import (
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    SignedDirectory,
    sign_directory,
)

MEASURE = Path(__file__).resolve().with_name("audit_measure.py")
NODES = (("nld", "NLD"), ("rou", "ROU"))


# --- two mirrored logs ----------------------------------------------------------------------------


def mirrored_fields(i: int, *, side: int, last: int) -> dict[str, Any]:
    """Entry ``i`` (from 1) of node ``NODES[side]``'s log, mirroring the other's (see the docstring)."""
    me, peer = NODES[side][0], NODES[1 - side][0]
    base = {"time": T0 + i, "kind": "envelope", "peer": peer, "size": 2048}
    from_end = last - i
    if i == 1 and from_end % 2 == 0:  # no room for a whole exchange: a send that failed
        failed = hashlib.sha256(f"failed {me}".encode()).hexdigest()
        return base | {
            "direction": "out",
            "outcome": "failed",
            "code": "peer_unreachable",
            "message_id": f"{side + 1:032x}",
            "message_type": "ping",
            "envelope_hash": failed,
        }
    exchange, is_reply = from_end // 2, from_end % 2 == 0
    asks = (exchange % 3 != 0) == (side == 0)  # nld asks two exchanges in three
    request = hashlib.sha256(b"request" + exchange.to_bytes(8, "big")).hexdigest()
    if not is_reply:
        return base | {
            "direction": "out" if asks else "in",
            "outcome": "sent" if asks else "accepted",
            "message_id": f"{2 * exchange + 16:032x}",
            "message_type": "ping",
            "envelope_hash": request,
        }
    return base | {
        "direction": "in" if asks else "out",
        "outcome": "accepted" if asks else "sent",
        "message_id": f"{2 * exchange + 17:032x}",
        "message_type": "pong",
        "envelope_hash": hashlib.sha256(b"reply" + exchange.to_bytes(8, "big")).hexdigest(),
        "detail": {"reply_to": request},
    }


def install_bench_directory(nodes: list[NodeContext]) -> None:
    """One signed directory listing every node (one governance key), installed at each."""
    key = nacl.signing.SigningKey.generate()
    members = [
        Member.from_dict(
            {
                "node_id": n.node_id,
                "country": n.settings.country,
                "url": n.settings.url,
                "roles": ["analyst", "data-owner"],
                **n.keys.public(),
            }
        )
        for n in sorted(nodes, key=lambda n: n.node_id)
    ]
    directory = Directory(
        federation="bench",
        version=1,
        expires=int(time.time()) + 365 * 86400,
        governance=GovernanceKeys(keys=(GovernanceKey(public=bytes(key.verify_key)),), threshold=1),
        members=tuple(members),
    )
    data = sign_directory(SignedDirectory(signed=directory), key).to_bytes()
    for node in nodes:
        install_directory(node, data, initial=True)


def build_nodes(root: Path, entries: int) -> dict[str, Any]:
    """nld and rou with ``entries`` mirrored entries each, filled at once in two processes (not a
    measured step); nld signed at ``mid`` and at the end, rou exported (for reconcile)."""
    nodes = [make_node(root, None, node_id=node_id, country=country) for node_id, country in NODES]
    try:
        install_bench_directory(nodes)
    finally:
        for node in nodes:
            node.close()
    homes = [root / node_id for node_id, _ in NODES]
    bundles = [root / f"{node_id}.bundle" for node_id, _ in NODES]
    mid = entries * 3 // 5 + 7  # neither a power of two nor half: a proof of the general shape
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        jobs = [
            pool.submit(fill_mirrored, homes[0], 0, entries, mid, None),
            pool.submit(fill_mirrored, homes[1], 1, entries, None, bundles[1]),
        ]
        for job in jobs:
            job.result()
    return {
        "homes": homes,
        "bundles": bundles,
        "databases": [h / "palermo.db" for h in homes],
        "mid": mid,
        "fill_seconds": time.perf_counter() - started,
    }


def fill_mirrored(home: Path, side: int, entries: int, mid: int | None, bundle: Path | None) -> None:
    """Fill one node's log, signing a checkpoint at ``mid`` and at the end; export it to ``bundle``."""
    node = open_node(home)
    try:
        fields = functools.partial(mirrored_fields, side=side, last=entries - 1)
        for size in (mid, entries):
            if size is not None:
                fill(node, size, fields)
                exchange_log.checkpoint(node)  # at the end: export_bundle's own is then a no-op
        if bundle is not None:
            export_bundle(node, bundle)
    finally:
        node.close()


# --- measured steps -------------------------------------------------------------------------------


def run_step(*args: str | int | Path) -> dict[str, Any]:
    """Run one audit_measure.py step in a fresh process and return its JSON answer."""
    progress(f"  {' '.join(a.name if isinstance(a, Path) else str(a) for a in args)}")
    done = subprocess.run(
        [sys.executable, str(MEASURE), *map(str, args)], stdout=subprocess.PIPE, check=False
    )
    if done.returncode:
        raise SystemExit(f"audit_measure.py {args[0]} failed with exit code {done.returncode}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@dataclass(frozen=True)
class Figure:
    label: str
    value: float
    unit: str  # "s" or "bytes"
    reference: str
    reference_value: float

    @property
    def ratio(self) -> float:
        return self.value / self.reference_value if self.reference_value else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def proof_figures(kind: str, step: dict[str, Any], entries: int) -> list[Figure]:
    floor = step["raw_leaf_read_seconds"] + step["raw_tree_hash_seconds"]
    scratch = f"raw read of {entries:,} leaf hashes + {entries - 1:,} SHA-256"
    cold, warm, verify = step["cold_seconds"], step["warm_seconds"], step["verify_seconds"]
    hashes = f"{step['verify_floor_hashes']} x raw SHA-256 of 65 bytes"
    rows = [
        (f"{kind} proof, 1st call after start", cold, "s", scratch, floor),
        (f"{kind} proof, warm", warm, "s", scratch, floor),
        (
            f"{kind} proof, warm",
            warm,
            "s",
            "SubtreeCache, warm (protocol/)",
            step["subtree_cache_warm_seconds"],
        ),
        (f"verify {kind} ({step['proof_hashes']} hashes)", verify, "s", hashes, step["verify_floor_seconds"]),
    ]
    return [Figure(*row) for row in rows]


def measure(root: Path, entries: int) -> dict[str, Any]:
    progress(f"building nld and rou with {entries:,} mirrored log entries each ...")
    built = build_nodes(root, entries)
    home, db, bundles = built["homes"][0], built["databases"][0], built["bundles"]
    progress("measuring, one fresh process per step:")
    steps = {
        "inclusion": run_step("proof", home, "inclusion", entries * 2 // 3 + 1, entries),
        "consistency": run_step("proof", home, "consistency", built["mid"], entries),
        "raw_export": run_step("raw-export", db, root / "raw.jsonl.gz", entries),
        "export": run_step("export", home, bundles[0]),
        "raw_verify": run_step("raw-verify", bundles[0]),
        "verify": run_step("verify", bundles[0]),
        "raw_reconcile": run_step("raw-reconcile", *bundles),
        "reconcile": run_step("reconcile", *bundles),
    }
    for name in ("verify", "reconcile"):
        if not steps[name]["ok"]:
            raise SystemExit(f"the bench bundles do not pass {name}: {steps[name]['summary']}")
    envelopes = entries - 1 - (entries % 2 == 0)  # all but the directory install and a failed send
    if steps["reconcile"]["paired"] != envelopes:
        raise SystemExit(f"reconcile paired {steps['reconcile']['paired']} envelopes, expected {envelopes}")
    return {
        "entries": entries,
        "fill_seconds": built["fill_seconds"],
        "steps": steps,
        "figures": figures(steps, entries),
    }


def figures(steps: dict[str, Any], entries: int) -> list[Figure]:
    rx, ex, rv, vb = (steps[k] for k in ("raw_export", "export", "raw_verify", "verify"))
    rp, rc = steps["raw_reconcile"], steps["reconcile"]
    gz, mib = "raw rows as JSON lines, gzip -6", 1024  # KiB to bytes
    rows = [
        ("export_bundle", ex["seconds"], "s", "raw read + json.dumps + gzip -6 + write", rx["seconds"]),
        ("export_bundle", ex["seconds"], "s", "raw sqlite3 read of the rows", rx["read_seconds"]),
        ("bundle size", ex["bytes"], "bytes", gz, rx["bytes"]),
        ("bundle bytes per entry", ex["bytes"] / entries, "bytes", gz, rx["bytes"] / entries),
        ("export_bundle peak RSS", ex["peak_kib"] * mib, "bytes", "raw export process", rx["peak_kib"] * mib),
        ("verify_bundle", vb["seconds"], "s", "raw gunzip + json.loads + SHA-256 of lines", rv["seconds"]),
        ("verify_bundle peak RSS", vb["peak_kib"] * mib, "bytes", "raw verify process", rv["peak_kib"] * mib),
        ("reconcile", rc["seconds"], "s", "2 x verify_bundle", 2 * vb["seconds"]),
        ("reconcile", rc["seconds"], "s", "raw json.loads of both + dict pairing", rp["seconds"]),
        (
            "reconcile peak RSS",
            rc["peak_kib"] * mib,
            "bytes",
            "raw dict pairing process",
            rp["peak_kib"] * mib,
        ),
    ]
    return [
        *proof_figures("inclusion", steps["inclusion"], entries),
        *proof_figures("consistency", steps["consistency"], entries),
        *(Figure(*row) for row in rows),
    ]


# --- output ---------------------------------------------------------------------------------------


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def human(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 2**20:,.1f} MiB" if value >= 2**20 else f"{value:,.0f} B"
    if value < 1e-3:
        return f"{value * 1e6:,.1f} µs"
    return f"{value * 1e3:,.1f} ms" if value < 1 else f"{value:,.2f} s"


def print_table(result: dict[str, Any]) -> None:
    steps, entries = result["steps"], result["entries"]
    print(
        f"\n{entries:,} entries per log (both logs filled at once and rou exported in {result['fill_seconds']:.0f} s)\n"
    )
    for f in result["figures"]:
        print(
            f"{f.label:<40}{human(f.value, f.unit):>12}   beside {f.reference:<44}"
            f"{human(f.reference_value, f.unit):>12}   ({f.ratio:,.2f}x)"
        )
    raw = steps["raw_export"]
    print(
        "\nraw export by phase: "
        + ", ".join(f"{k} {raw[f'{k}_seconds']:.2f} s" for k in ("read", "encode", "gzip", "write"))
    )
    rv = steps["raw_verify"]
    print(
        f"raw verify by phase: gunzip {rv['gunzip_seconds']:.2f} s, json.loads {rv['parse_seconds']:.2f} s, SHA-256 {rv['sha256_seconds']:.2f} s"
    )
    for kind in ("inclusion", "consistency"):
        s = steps[kind]
        print(
            f"{kind}: open_node {human(s['open_seconds'], 's')}, SubtreeCache first proof {human(s['subtree_cache_first_seconds'], 's')}"
        )
    for name in ("export", "verify", "reconcile", "raw_reconcile"):
        s = steps[name]
        print(
            f"{name}: peak {s['peak_kib'] / 1024:,.0f} MiB, of which {s['baseline_kib'] / 1024:,.0f} MiB after imports"
        )
    print(f"verify_bundle: {steps['verify']['summary']}")
    print(f"reconcile: {steps['reconcile']['summary']} (raw pairing: {steps['raw_reconcile']['paired']:,})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="log entries per node (1,000,000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, default=None, help="build in this new folder and keep it")
    args = parser.parse_args()
    if args.entries < 100:
        parser.error("--entries: at least 100")
    started = time.perf_counter()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        result = measure(args.keep, args.entries)
    else:
        with tempfile.TemporaryDirectory(prefix="palermo-audit-bench-") as tmp:
            result = measure(Path(tmp), args.entries)
    result["wall_seconds"] = time.perf_counter() - started
    if args.json:
        print(json.dumps({**result, "figures": [f.to_dict() for f in result["figures"]]}, indent=2))
    else:
        print_table(result)
        print(f"\nwall time {result['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
