#!/usr/bin/env python3
"""PSI speed: the whole Diffie-Hellman PSI for N selectors a side, beside the raw PyNaCl rates.

Measures, in this run:
  raw     single-core rates of the three libsodium group operations PSI is made of
          (crypto_core_ed25519_from_uniform, crypto_scalarmult_ed25519_noclamp,
          crypto_core_ed25519_is_valid_point), and X25519 as a reference point
  psi     both parties simulated in this process, group operations over every core through
          node.services.psi_parallel: A hashes and blinds X; payload to canonical JSON and back
          (with the registered payload check); B re-blinds A's points, hashes and blinds Y;
          A validates the re-blinded points, blinds B's points, intersects, sends the result;
          B maps the result back through its permutation. Correctness is checked against the
          plain set intersection.
  bound   the lower bound from the raw rates: sum(operations / single-core rate) / cores

Target (issue 3): 100,000 selectors a side in under 30 s on 2 cores.

Usage: python scripts/bench/psi_speed.py [--sizes 10000 100000] [--overlap 0.1] [--workers N]
"""

from __future__ import annotations

import argparse
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

from node.services.psi_parallel import CHUNK_SIZE, parallel_map_points, point_pool
from protocol import psi
from protocol.canonical import canonical_json, parse_json
from protocol.messages import check_payload

SELECTORS_PER_RECORD = 8


def rate(op: Callable[[bytes], object], inputs: list[bytes], seconds: float = 1.5) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in inputs:
            op(item)
        n += len(inputs)
    return n / (time.perf_counter() - start)


def raw_rates(_: object = None) -> dict[str, float]:
    """Single-core rates of the group operations (and X25519 for reference), per second."""
    scalar = psi.new_scalar(os.urandom(64))
    uniforms = [os.urandom(32) for _ in range(500)]
    points = [sodium.crypto_core_ed25519_from_uniform(u) for u in uniforms]
    x25519_key = os.urandom(32)
    montgomery = [sodium.crypto_scalarmult_base(os.urandom(32)) for _ in range(500)]
    return {
        "from_uniform": rate(sodium.crypto_core_ed25519_from_uniform, uniforms),
        "scalarmult_noclamp": rate(lambda p: sodium.crypto_scalarmult_ed25519_noclamp(scalar, p), points),
        "is_valid_point": rate(sodium.crypto_core_ed25519_is_valid_point, points),
        "x25519 (reference)": rate(lambda u: sodium.crypto_scalarmult(x25519_key, u), montgomery),
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


def wire(type_name: str, payload: dict[str, object]) -> dict[str, object]:
    """What the envelope layer does to a payload: canonical bytes, strict parse, type check."""
    return check_payload(type_name, parse_json(canonical_json(payload)))


def run_psi(n: int, overlap: float, pool: ProcessPoolExecutor) -> tuple[float, dict[str, float], int]:
    shared = int(n * overlap)
    x_set = [b"phone:+4071%07d" % i for i in range(n)]
    y_set = [b"phone:+4071%07d" % i for i in range(n - shared, 2 * n - shared)]
    stages: dict[str, float] = {}

    def pmap(
        name: str, items: list[bytes], scalar: bytes | None = None, sid: bytes | None = None
    ) -> list[bytes]:
        return parallel_map_points(name, items, scalar, session_id=sid, pool=pool)

    def timed(stage: str, started: float) -> float:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - started
        return now

    t0 = t = time.perf_counter()
    # A: hash and blind its selectors, shuffled first so that its order says nothing.
    session_id, a = os.urandom(16), psi.new_scalar(os.urandom(64))
    a_order = psi.shuffle_order(n, seed=os.urandom(32))
    ax = pmap("hash_blind", [x_set[k] for k in a_order], a, session_id)
    request = psi.build_request(session_id=session_id, round=1, record_count=n, points=ax)
    t = timed("A hash+blind X", t)
    payload = wire("psi.request", request.to_payload())
    t = timed("wire (JSON, checks)", t)
    # B: parse, check limits, re-blind A's points, hash and blind Y, shuffle.
    got = psi.parse_request(payload)
    psi.check_request_limits(got, selectors_per_record=SELECTORS_PER_RECORD, sessions_used=0, max_sessions=4)
    b = psi.new_scalar(os.urandom(64))
    reblinded = pmap("blind", list(got.points), b)
    t = timed("B re-blind A's points", t)
    by = pmap("hash_blind", y_set, b, got.session_id)
    permutation = psi.shuffle_order(len(y_set), seed=os.urandom(32))
    response = psi.build_response(
        got, reblinded=reblinded, blinded=by, permutation=permutation, record_count=n
    )
    t = timed("B hash+blind Y", t)
    payload = wire("psi.response", response.to_payload())
    t = timed("wire (JSON, checks)", t)
    # A: validate the re-blinded points, blind B's points, intersect, send the result.
    answer = psi.parse_response(payload, request=request)
    psi.check_response_limits(answer, selectors_per_record=SELECTORS_PER_RECORD)
    pmap("validate", list(answer.reblinded))
    t = timed("A validate re-blinded", t)
    aby = pmap("blind", list(answer.blinded), a)
    t = timed("A blind B's points", t)
    matched = psi.intersect(answer.reblinded, aby)
    result = psi.build_result(answer, positions=matched.theirs)
    a_matches = {x_set[a_order[i]] for i in matched.own}
    payload = wire("psi.result", result.to_payload())
    got_result = psi.parse_result(payload, session_id=session_id, round=1, blinded_count=len(y_set))
    b_matches = {y_set[k] for k in psi.matched_own_indices(got_result, permutation)}
    t = timed("intersect + result", t)
    expected = set(x_set) & set(y_set)
    if a_matches != expected or b_matches != expected:
        raise SystemExit("PSI result differs from the plain set intersection")
    return t - t0, stages, len(expected)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--overlap", type=float, default=0.1, help="share of each side held by both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = args.workers

    load_before = os.getloadavg()[0]  # other processes on the machine skew every figure below
    before = raw_rates()
    started = time.perf_counter()
    runs = []
    with point_pool(cores) as pool:
        # The same operations in every worker at once: what the cores deliver together.
        together = list(pool.map(raw_rates, range(cores)))
        aggregate = {name: sum(r[name] for r in together) for name in before}
        # Start every worker and import protocol.psi in it before timing.
        warm_up = [sodium.crypto_core_ed25519_from_uniform(bytes([1]) + bytes(31))] * (CHUNK_SIZE * cores)
        for _ in range(2):
            parallel_map_points("validate", warm_up, pool=pool)
        pool_seconds = time.perf_counter() - started
        for n in args.sizes:
            runs.append((n, *run_psi(n, args.overlap, pool)))
        workers_peak = max((peak_mib(pid) for pid in pool._processes), default=0.0)
    after = raw_rates()
    rates = {name: (before[name] + after[name]) / 2 for name in before}

    print(
        f"load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"raw PyNaCl {nacl.__version__} rates, this run, per second")
    print(f"  {'':<22} {'1 core before':>13} {'after':>9} {'mean':>9}   {cores} cores at once")
    for name in before:
        print(
            f"  {name:<22} {before[name]:>13,.0f} {after[name]:>9,.0f} {rates[name]:>9,.0f}"
            f"   {aggregate[name]:>9,.0f} ({aggregate[name] / rates[name]:.2f}x)"
        )
    print(f"\nprocess pool: {cores} workers, started and warmed in {pool_seconds:.2f} s (not counted)")
    for n, seconds, stages, shared in runs:
        # hash |X|+|Y|; scalar multiplication 2|X|+2|Y|; is_valid_point |X| (A's re-blinded points)
        ops = {"from_uniform": 2 * n, "scalarmult_noclamp": 4 * n, "is_valid_point": n}
        bound = sum(count / rates[name] for name, count in ops.items()) / cores
        measured = sum(count / aggregate[name] for name, count in ops.items())
        print(f"\nPSI {n:,} selectors a side ({shared:,} shared), {cores} worker processes")
        for stage, value in stages.items():
            print(f"  {stage:<24} {value:7.2f} s")
        print(f"  {'total':<24} {seconds:7.2f} s   (target at 100,000: under 30 s)")
        print(
            f"  {'lower bound':<24} {bound:7.2f} s   = group operations / (1-core mean rate x {cores} cores)"
        )
        print(f"  {'':<24} {measured:7.2f} s   = group operations / rate of {cores} cores at once")
        print(
            f"  {'ratio total / bound':<24} {seconds / bound:7.2f}  ({seconds / measured:.2f} to the measured one)"
        )
        print("  group operations:      " + ", ".join(f"{count:,} {name}" for name, count in ops.items()))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory: this process {own:.0f} MiB, largest worker {workers_peak:.0f} MiB")


if __name__ == "__main__":
    main()
