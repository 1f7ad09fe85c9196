#!/usr/bin/env python3
"""Matching speed: the stages of a round beside the machine's raw rates, then whole rounds between real nodes.

Components (this process, synthetic persons), each beside a physical reference measured in the same run:
  scalar mult   the PSI group's scalar multiplication (PyNaCl) per second, one core (reference for PSI)
  popcount      np.bitwise_count over a large uint64 array, bytes per second    (reference for comparisons)
  features      persons normalised per second (names in any script, dates, selectors)
  encode        persons encoded per second (keyed field-level Bloom filters with BLIP noise)
  psi           selectors hashed to the group and blinded per second, over every core
  link          candidate pairs compared per second by the engine (blocking + Fellegi-Sunter)

Rounds (``--persons``): a sandbox of two real node processes (gunicorn, SQLite), each loaded with
that many synthetic rows (one row per person per case; about 0.87 persons per row), then
``palermo match run`` in a separate process, timed, with the peak memory of the initiator and of
the responder's processes. A second round shows the incremental case (nothing new to send).

    python scripts/bench/matching_speed.py [--persons 10000,100000] [--components-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.matching.engine import encode, link
from node.matching.features import features
from node.services import sandbox
from node.services.psi_parallel import parallel_map_points, point_pool
from node.services.synth import generate_federation, write_rows
from protocol import psi
from protocol.encoding import DEFAULT_LAYOUT, Encoder

ROOT = Path(__file__).resolve().parents[2]


def rate(work: Any, seconds: float = 1.5) -> float:
    """Calls per second of ``work`` (best of the time given)."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        work()
        count += 1
    return count / elapsed


def scalar_mult_rate() -> float:
    scalar = psi.new_scalar(os.urandom(64))
    point = psi.hash_to_group([b"x"], session_id=bytes(16))[0]
    return rate(lambda: psi.blind([point], scalar))


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


def components(count: int) -> dict[str, float]:
    out: dict[str, float] = {
        "scalar_mult_per_s_1_core": scalar_mult_rate(),
        "popcount_bytes_per_s": popcount_rate(),
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


def tree_peak_kib(pid: int) -> int:
    """The largest peak resident size (VmHWM) of ``pid`` and its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    peak, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak


def round_trip(rows: int, workdir: Path) -> dict[str, Any]:
    """Two real nodes with ``rows`` rows each; one round, then a second (incremental) one."""
    info = sandbox.up(workdir, ["NLD", "ROU"])
    try:
        data = generate_federation(["NLD", "ROU"], rows, seed=9, overlap=0.1)
        for country, country_rows in data.items():
            path = workdir / f"{country.lower()}.csv"
            write_rows(country_rows, path)
            home = workdir / country.lower()
            subprocess.run([sys.executable, "-m", "node", "--home", str(home), "ingest", str(path), "--json"],
                           check=True, capture_output=True, cwd=ROOT)  # fmt: skip
        out: dict[str, Any] = {"rows_per_side": rows}
        for label in ("first", "second"):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "node", "--home", str(workdir / "nld"), "match", "run", "--peer", "rou",
                 "--json"], capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"the round failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
            summary = json.loads(done.stdout)
            out[label] = {
                "wall_seconds": round(wall, 1),
                "persons": [summary["own_records"], summary["peer_records"]],
                "psi_selectors": [summary["psi_own_selectors"], summary["psi_peer_selectors"]],
                "encodings_received": summary["encodings_received"],
                "candidates": summary["candidates"],
                "seconds": summary["seconds"],
            }
        out["initiator_peak_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
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
        print(f"  link                      {comp['link_comparisons_per_s']:>14,.0f} pairs compared/s"
              f" ({comp['link_seconds']:.1f} s in all)")  # fmt: skip
    for r in rounds:
        print(f"\nround between two real nodes, {r['rows_per_side']:,} rows a side "
              f"(peak memory: initiator {r['initiator_peak_mib']} MiB, responder {r['responder_peak_mib']} MiB):")  # fmt: skip
        for label in ("first", "second"):
            x = r[label]
            stages = ", ".join(f"{k} {v:.1f}" for k, v in x["seconds"].items())
            print(f"  {label:6s} {x['wall_seconds']:>7.1f} s wall; persons {x['persons'][0]:,}/{x['persons'][1]:,}, "
                  f"selectors {x['psi_selectors'][0]:,}/{x['psi_selectors'][1]:,}, "
                  f"encodings received {x['encodings_received']:,}, candidates {x['candidates']}")  # fmt: skip
            print(f"         stages: {stages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--persons", default="10000,100000", help="rows per side for whole rounds, comma-separated"
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
