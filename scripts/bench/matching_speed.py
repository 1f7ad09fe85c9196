#!/usr/bin/env python3
"""Matching speed: the stages of a round beside the machine's raw rates, then whole rounds between real nodes.

Components (this process, synthetic persons), each beside a physical reference measured in the same run:
  scalar mult   the PSI group's scalar multiplication (PyNaCl) per second, one core (reference for PSI)
  popcount      np.bitwise_count over a large uint64 array, bytes per second    (reference for comparisons)
  features      persons normalised per second (names in any script, dates, selectors)
  encode        persons encoded per second (keyed field-level Bloom filters with BLIP noise)
  psi           selectors hashed to the group and blinded per second, over every core
  link          candidate pairs compared per second by the engine (blocking + Fellegi-Sunter)
  all-pairs     Dice similarities of every pair of two blocks of 1024-bit filters per second (AND and
                popcount over both cores, as protocol.encoding.similarity.pairs_above computes them)

Rounds (``--persons``): a sandbox of two real node processes (gunicorn, SQLite), each loaded with
synthetic rows for about that many persons (one row per person per case; about 0.86 persons per
row), ``palermo match prepare`` on each (the features a node's scheduler computes after an ingest,
timed apart), then ``palermo match run`` in a separate process, timed, with the peak memory of the
initiator and of the responder's processes. A second round shows the incremental case (nothing new
to send).

    python scripts/bench/matching_speed.py [--persons 10000,100000] [--components-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nacl.bindings
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import tree_peak_kib

from node.matching.engine import encode, link
from node.matching.features import features
from node.services import sandbox
from node.services.psi_parallel import parallel_map_points, point_pool
from node.services.synth import generate_country, generate_federation, write_rows
from protocol import psi
from protocol.encoding import DEFAULT_LAYOUT, Encoder
from protocol.encoding.similarity import pairs_above

ROOT = Path(__file__).resolve().parents[2]


def rate(work: Any, seconds: float = 1.5) -> float:
    """Calls per second of ``work`` (best of the time given)."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        work()
        count += 1
    return count / elapsed


def scalar_mult_rate() -> float:
    """Raw X25519 scalar multiplications per second (PyNaCl's crypto_scalarmult, one core)."""
    scalar = psi.new_scalar(os.urandom(64))
    point = psi.hash_to_group([b"x"], session_id=bytes(16))[0]
    multiply = nacl.bindings.crypto_scalarmult
    return rate(lambda: [multiply(scalar, point) for _ in range(1000)]) * 1000


def popcount_rate() -> float:
    words = np.random.default_rng(1).integers(0, 2**63, 4_000_000, dtype=np.uint64)
    return rate(lambda: np.bitwise_count(words).sum(dtype=np.uint64)) * words.nbytes


def people(count: int, seed: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = generate_federation(["NLD", "ROU"], count, seed=seed, overlap=0.1)
    return _persons(rows["NLD"]), _persons(rows["ROU"])


def _persons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(str(row["prs_PersonId"]), row)
    return list(seen.values())


def all_pairs_rate() -> float:
    """Dice comparisons per second of every pair of two blocks of random 1024-bit filters."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**63, (4096, 16), dtype=np.uint64)
    b = rng.integers(0, 2**63, (32768, 16), dtype=np.uint64)
    pairs = a.shape[0] * b.shape[0]
    return float(rate(lambda: pairs_above(a, b, 0.8, method="popcount", workers=2), 3.0) * pairs)


def components(count: int) -> dict[str, float]:
    out: dict[str, float] = {
        "scalar_mult_per_s_1_core": scalar_mult_rate(),
        "popcount_bytes_per_s": popcount_rate(),
        "all_pairs_per_s": all_pairs_rate(),
    }
    a, b = people(count)
    started = time.perf_counter()
    fa = [features(p, default_region="NLD") for p in a]
    fb = [features(p, default_region="ROU") for p in b]
    out["features_per_s"] = (len(a) + len(b)) / (time.perf_counter() - started)
    encoder = Encoder(DEFAULT_LAYOUT, pair_key=bytes(range(32)), noise_key=bytes(32), epoch=1)
    started = time.perf_counter()
    ba = encode(fa, [str(p["prs_PersonId"]) for p in a], encoder)
    bb = encode(fb, [str(p["prs_PersonId"]) for p in b], encoder)
    out["encode_per_s"] = (len(a) + len(b)) / (time.perf_counter() - started)
    selectors = sorted({s.value for f in fa for s in f.selectors})
    scalar = psi.new_scalar(os.urandom(64))
    with point_pool() as pool:
        parallel_map_points("hash_blind", selectors[:10], scalar, session_id=bytes(16), pool=pool)  # warm up
        started = time.perf_counter()
        parallel_map_points("hash_blind", selectors, scalar, session_id=bytes(16), pool=pool)
        out["psi_hash_blind_per_s"] = len(selectors) / (time.perf_counter() - started)
    started = time.perf_counter()
    result = link(ba, bb, blocking_seed=bytes(32))
    seconds = time.perf_counter() - started
    out["link_seconds"] = seconds
    out["link_comparisons_per_s"] = result.comparisons / seconds
    out["persons_per_side"] = float(len(a))
    return out


PERSONS_PER_ROW = 0.856  # of the generator at seed 9 (a person in several cases has several rows)


def node_cli(home: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "node", "--home", str(home), *args, "--json"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"palermo {' '.join(args)} failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
    return dict(json.loads(done.stdout))


def measured_round(workdir: Path) -> tuple[dict[str, Any], int]:
    """``palermo match run`` in its own process: its summary and its peak memory (KiB, its own
    and its worker processes', from wait4)."""
    command = [
        sys.executable,
        "-m",
        "node",
        "--home",
        str(workdir / "nld"),
        "match",
        "run",
        "--peer",
        "rou",
        "--json",
    ]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"the round failed: {text[-500:]} {errors[-1500:]}")
    return json.loads(text), usage.ru_maxrss


def truth_score(workdir: Path) -> dict[str, Any]:
    """The first round's matches against the generator's hidden truth (a real node never has it):
    precision and recall of the likely band and of both bands, over the persons both nodes may match."""
    from node.context import open_node
    from node.services.demo_matching import truth_score as counts

    nld, rou = open_node(workdir / "nld"), open_node(workdir / "rou")
    try:
        t = counts(nld, rou)
    finally:
        nld.close()
        rou.close()
    both = t["likely"] + t["possible"]
    return {
        "true_pairs": t["true_pairs"],
        "likely": t["likely"],
        "possible": t["possible"],
        "likely_precision": t["likely_right"] / max(1, t["likely"]),
        "likely_recall": t["found_likely"] / max(1, t["true_pairs"]),
        "both_precision": (t["likely_right"] + t["possible_right"]) / max(1, both),
        "both_recall": t["found"] / max(1, t["true_pairs"]),
    }


def round_trip(persons: int, workdir: Path) -> dict[str, Any]:
    """Two real nodes with about ``persons`` persons each; one round, then a second (incremental) one."""
    info = sandbox.up(workdir, ["NLD", "ROU"])
    rows = round(persons / PERSONS_PER_ROW)
    try:
        out: dict[str, Any] = {"rows_per_side": rows, "ingest_seconds": {}, "prepare_seconds": {}}
        for country, other in (("NLD", "ROU"), ("ROU", "NLD")):
            path = workdir / f"{country.lower()}.csv"
            # one register at a time (the rows generate_federation would give): a million rows of
            # dictionaries take gigabytes
            register = generate_country(
                country, rows, seed=9, overlap_with=[other], overlap=0.1, include_truth=True
            )
            write_rows(register, path)
            del register
            home = workdir / country.lower()
            started = time.perf_counter()
            node_cli(home, "ingest", str(path))
            out["ingest_seconds"][country] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            node_cli(home, "match", "prepare")
            out["prepare_seconds"][country] = round(time.perf_counter() - started, 1)
        for label in ("first", "second"):
            started = time.perf_counter()
            summary, peak_kib = measured_round(workdir)
            wall = time.perf_counter() - started
            out["initiator_peak_mib"] = max(out.get("initiator_peak_mib", 0), round(peak_kib / 1024))
            if label == "first":
                out["truth"] = truth_score(workdir)
            out[label] = {
                "wall_seconds": round(wall, 1),
                "persons": [summary["own_records"], summary["peer_records"]],
                "psi_selectors": [summary["psi_own_selectors"], summary["psi_peer_selectors"]],
                "encodings_received": summary["encodings_received"],
                "candidates": summary["candidates"],
                "seconds": summary["seconds"],
            }
        pid = int((workdir / "rou" / "serve.pid").read_text())
        out["responder_peak_mib"] = round(tree_peak_kib(pid) / 1024)
        out["nodes"] = [n["id"] for n in info["nodes"]]
        return out
    finally:
        sandbox.down(workdir)


def show(comp: dict[str, float] | None, rounds: list[dict[str, Any]]) -> None:
    if comp:
        n = int(comp["persons_per_side"])
        print(f"components, {n:,} persons a side (this process):")
        print(f"  scalar mult (reference)   {comp['scalar_mult_per_s_1_core']:>14,.0f} /s on one core")
        print(f"  psi hash+blind            {comp['psi_hash_blind_per_s']:>14,.0f} selectors/s on every core"
              f"  (each is one hash and one scalar mult)")  # fmt: skip
        print(f"  features                  {comp['features_per_s']:>14,.0f} persons/s (one core)")
        print(f"  encode                    {comp['encode_per_s']:>14,.0f} persons/s (target 20,000)")
        print(f"  popcount (reference)      {comp['popcount_bytes_per_s'] / 1e9:>14,.2f} GB/s")
        per_pair = comp["all_pairs_per_s"] * 2 * 128 / comp["popcount_bytes_per_s"]
        print(f"  all-pairs similarity      {comp['all_pairs_per_s'] / 1e6:>14,.1f} M comparisons/s, 1024-bit Dice, "
              f"2 threads (target 100; {per_pair:.2f} x the one-core popcount rate over 2 x 128 bytes a pair)")  # fmt: skip
        print(f"  link                      {comp['link_comparisons_per_s']:>14,.0f} pairs compared/s"
              f" ({comp['link_seconds']:.1f} s in all)")  # fmt: skip
    for r in rounds:
        print(
            f"\nround between two real nodes, {r['rows_per_side']:,} rows a side "
            f"(peak memory: initiator {r['initiator_peak_mib']} MiB, responder {r['responder_peak_mib']} MiB):"
        )
        print(f"  before   ingest {', '.join(f'{k} {v:.1f} s' for k, v in r['ingest_seconds'].items())}; "
              f"match prepare {', '.join(f'{k} {v:.1f} s' for k, v in r['prepare_seconds'].items())}")  # fmt: skip
        for label in ("first", "second"):
            x = r[label]
            stages = ", ".join(f"{k} {v:.1f}" for k, v in x["seconds"].items())
            print(f"  {label:6s} {x['wall_seconds']:>7.1f} s wall; persons {x['persons'][0]:,}/{x['persons'][1]:,}, "
                  f"selectors {x['psi_selectors'][0]:,}/{x['psi_selectors'][1]:,}, "
                  f"encodings received {x['encodings_received']:,}, candidates {x['candidates']}")  # fmt: skip
            print(f"         stages: {stages}")
        t = r["truth"]
        print(f"  against the generator's truth ({t['true_pairs']:,} persons on both sides): likely "
              f"P {t['likely_precision']:.4f} R {t['likely_recall']:.4f}; likely + possible "
              f"P {t['both_precision']:.4f} R {t['both_recall']:.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--persons", default="10000,100000", help="persons per side for whole rounds, comma-separated"
    )
    parser.add_argument("--component-persons", type=int, default=20000)
    parser.add_argument("--components-only", action="store_true")
    parser.add_argument("--rounds-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    comp = None if args.rounds_only else components(args.component_persons)
    rounds = []
    if not args.components_only:
        for rows in (int(x) for x in args.persons.split(",") if x):
            with tempfile.TemporaryDirectory(prefix="palermo-bench-") as tmp:
                rounds.append(round_trip(rows, Path(tmp)))
    if args.json:
        print(json.dumps({"components": comp, "rounds": rounds}, indent=2))
    else:
        show(comp, rounds)


if __name__ == "__main__":
    main()
