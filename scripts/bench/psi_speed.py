#!/usr/bin/env python3
"""PSI speed: the whole Diffie-Hellman PSI for N selectors a side, beside the raw PyNaCl rates.

Measures, in this run:
  raw     the single-core rate (before and after the PSI runs) and the all-cores rate (every worker
          at once) of each operation PSI is made of: X25519 (crypto_scalarmult, the scalar
          multiplication), hashing a selector to the group (SHA-512, crypto_core_ed25519_from_uniform,
          the map to the u-line), and the check of a received point; and, for reference, the
          ed25519 noclamp multiplication that version 1 used
  psi     both parties simulated in this process, group operations over every core through
          node.services.psi_session (the helpers the round code calls): A hashes and blinds X;
          the payload goes to canonical JSON and back (with the registered payload check); B
          re-blinds A's points while it hashes and blinds Y; A checks the re-blinded points while
          it blinds B's points, intersects and sends the result; B maps the result back through its
          permutation. Checked against the plain set intersection.
  bound   lower bounds from the raw rates of this run: the scalar multiplications alone, and every
          group operation, each divided by the all-cores rate

Target (issue 3): 100,000 selectors a side in under 30 s on 2 cores.

Usage: python scripts/bench/psi_speed.py [--selectors 10000 100000] [--overlap 0.1] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nacl
import nacl.bindings as sodium

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.services import psi_session
from node.services.psi_parallel import CHUNK_SIZE, parallel_map_points, point_pool
from protocol import psi
from protocol.canonical import canonical_json, parse_json
from protocol.messages import check_payload

SELECTORS_PER_RECORD = 8
BATCH = 500


def rate(op: Callable[[list[bytes]], object], inputs: list[bytes], seconds: float = 1.0) -> float:
    """Items per second of ``op`` applied to the whole list ``inputs`` (a batch) repeatedly."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        op(inputs)
        n += len(inputs)
    return n / (time.perf_counter() - start)


def raw_rates(_: object = None) -> dict[str, float]:
    """Single-core rates of the group operations, per second (batches of 500, as in the chunks)."""
    scalar = psi.new_scalar(os.urandom(64))
    selectors = [b"phone:+4071%07d" % i for i in range(BATCH)]
    session_id = os.urandom(16)
    points = psi.hash_to_group(selectors, session_id=session_id)
    uniforms = [hashlib.sha512(s).digest()[:32] for s in selectors]
    edwards = [sodium.crypto_core_ed25519_from_uniform(u) for u in uniforms]
    ed_scalar = sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))
    multiply = sodium.crypto_scalarmult
    noclamp = sodium.crypto_scalarmult_ed25519_noclamp
    return {
        "x25519": rate(lambda ps: [multiply(scalar, p) for p in ps], points),
        "hash_to_group": rate(lambda xs: psi.hash_to_group(xs, session_id=session_id), selectors),
        "check_points": rate(psi.check_points, points),
        "ed25519 noclamp (v1)": rate(lambda ps: [noclamp(ed_scalar, p) for p in ps], edwards),
    }


def peak_mib(pid: int) -> float:
    """A live process's peak resident memory (Linux /proc VmHWM) in MiB; 0 where unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by this process and the given live processes (Linux /proc)."""
    own = os.times()
    total = own.user + own.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def wire(type_name: str, payload: dict[str, object]) -> dict[str, object]:
    """What the envelope layer does to a payload: canonical bytes, strict parse, type check."""
    return check_payload(type_name, parse_json(canonical_json(payload)))


def run_psi(n: int, overlap: float, pool: ProcessPoolExecutor) -> tuple[float, dict[str, float], int, float]:
    shared = int(n * overlap)
    x_set = [b"phone:+4071%07d" % i for i in range(n)]
    y_set = [b"phone:+4071%07d" % i for i in range(n - shared, 2 * n - shared)]
    stages: dict[str, float] = {}

    def timed(stage: str, started: float) -> float:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - started
        return now

    pids = list(pool._processes)
    cpu0 = cpu_seconds(pids)
    t0 = t = time.perf_counter()
    # A: shuffle, hash and blind its selectors.
    session_id, a = os.urandom(16), psi.new_scalar(os.urandom(64))
    sent = psi_session.initiator_points(
        x_set, session_id=session_id, scalar=a, shuffle_seed=os.urandom(32), pool=pool
    )
    request = psi.build_request(session_id=session_id, round=1, record_count=n, points=sent.points)
    t = timed("A hash+blind X", t)
    payload = wire("psi.request", request.to_payload())
    t = timed("wire (JSON, checks)", t)
    # B: parse, check limits, re-blind A's points while hashing and blinding Y, shuffle.
    got = psi.parse_request(payload)
    psi.check_request_limits(got, selectors_per_record=SELECTORS_PER_RECORD, sessions_used=0, max_sessions=4)
    b, b_seed = psi.new_scalar(os.urandom(64)), os.urandom(32)
    answer = psi_session.responder_answer(got, y_set, scalar=b, shuffle_seed=b_seed, pool=pool)
    response = answer.response(got, record_count=n)
    t = timed("B re-blind + hash+blind Y", t)
    payload = wire("psi.response", response.to_payload())
    t = timed("wire (JSON, checks)", t)
    # A: check the re-blinded points while blinding B's, intersect, send the result.
    reply = psi.parse_response(payload, request=request)
    psi.check_response_limits(reply, selectors_per_record=SELECTORS_PER_RECORD)
    matched = psi_session.initiator_matches(reply, sent, scalar=a, pool=pool)
    result = psi.build_result(reply, positions=matched.theirs)
    a_matches = {x_set[i] for i in matched.own}
    t = timed("A check + blind Y, match", t)
    payload = wire("psi.result", result.to_payload())
    got_result = psi.parse_result(payload, session_id=session_id, round=1, blinded_count=len(y_set))
    b_matches = {y_set[k] for k in psi.matched_own_indices(got_result, answer.permutation)}
    t = timed("result to B", t)
    cpu = cpu_seconds(pids) - cpu0
    expected = set(x_set) & set(y_set)
    if a_matches != expected or b_matches != expected:
        raise SystemExit("PSI result differs from the plain set intersection")
    return t - t0, stages, len(expected), cpu


def report(runs: list[tuple[int, float, dict[str, float], int, float]], rates: dict[str, float],
           aggregate: dict[str, float], cores: int) -> None:  # fmt: skip
    for n, seconds, stages, shared, cpu in runs:
        # per side: X25519 2n (own set, then the other's); hashing n; checks n at B, 2n at A
        ops = {"x25519": 4 * n, "hash_to_group": 2 * n, "check_points": 3 * n}
        mult_bound = ops["x25519"] / aggregate["x25519"]
        all_bound = sum(count / aggregate[name] for name, count in ops.items())
        one_core = sum(count / rates[name] for name, count in ops.items())
        print(f"\nPSI {n:,} selectors a side ({shared:,} shared), {cores} worker processes")
        for stage, value in stages.items():
            print(f"  {stage:<28} {value:7.2f} s")
        print(f"  {'total, end to end':<28} {seconds:7.2f} s   (target at 100,000: under 30 s)")
        print(
            f"  {'bound: multiplications':<28} {mult_bound:7.2f} s   = {ops['x25519']:,} X25519"
            f" / {aggregate['x25519']:,.0f} per s ({cores} cores at once)"
        )
        print(
            f"  {'bound: all group operations':<28} {all_bound:7.2f} s   = "
            + " + ".join(f"{count:,} {name}" for name, count in ops.items())
            + f" at the {cores}-core rates ({one_core:.2f} s on one core)"
        )
        print(
            f"  {'ratio total / bounds':<28} {seconds / mult_bound:7.2f}  to the multiplications,"
            f" {seconds / all_bound:.2f} to all group operations"
        )
        print(
            f"  {'CPU time used':<28} {cpu:7.2f} s   = {cpu / seconds:.2f} cores busy on average"
            f" ({cpu / cores:.2f} s = CPU time / {cores} cores: this run alone on free cores, perfectly parallel)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--selectors", "--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--overlap", type=float, default=0.1, help="share of each side held by both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = args.workers

    load_before = os.getloadavg()[0]  # other processes on the machine skew every figure below
    before = raw_rates()
    started = time.perf_counter()
    runs = []
    with point_pool(cores) as pool:
        # Start every worker and import protocol.psi in it before timing.
        warm_up = psi.hash_to_group([b"%d" % i for i in range(CHUNK_SIZE * cores)], session_id=bytes(16))
        for _ in range(2):
            parallel_map_points("validate", warm_up, pool=pool)
        pool_seconds = time.perf_counter() - started
        # The same operations in every worker at once: what the cores deliver together.
        together = list(pool.map(raw_rates, range(cores)))
        aggregate = {name: sum(r[name] for r in together) for name in before}
        for n in args.selectors:
            runs.append((n, *run_psi(n, args.overlap, pool)))
        workers_peak = max((peak_mib(pid) for pid in pool._processes), default=0.0)
    after = raw_rates()
    rates = {name: (before[name] + after[name]) / 2 for name in before}

    print(
        f"load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"raw PyNaCl {nacl.__version__} rates, this run, per second (per point, batches of {BATCH})")
    print(f"  {'':<22} {'1 core before':>13} {'after':>9} {'mean':>9}   {cores} cores at once")
    for name in before:
        print(
            f"  {name:<22} {before[name]:>13,.0f} {after[name]:>9,.0f} {rates[name]:>9,.0f}"
            f"   {aggregate[name]:>9,.0f} ({aggregate[name] / rates[name]:.2f}x)"
        )
    print(f"\nprocess pool: {cores} workers, started and warmed in {pool_seconds:.2f} s (not counted)")
    report(runs, rates, aggregate, cores)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory: this process {own:.0f} MiB, largest worker {workers_peak:.0f} MiB")


if __name__ == "__main__":
    main()
