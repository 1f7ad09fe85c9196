#!/usr/bin/env python3
"""Does the fitted linkage model depend on the pair key? One pair of registers, linked under many keys.

Features do not depend on the key; encodings, blocking and the random pairs EM estimates u from do.
For each key (derived from ``--seed`` and the key's number, so a run can be repeated) the two
registers are encoded and linked by the engine, and the run prints the fitted share of matches
beside the true one, and the likely and possible bands with how many of their pairs are true.
A fit that drifts to "same name" shows as a share several times the truth and a likely band whose
precision falls (SPEC 11.6.2: 2 keys of 36 did at 116,822 rows a side before u was bounded by the
candidates).

    .venv/bin/python scripts/bench/model_stability.py [--rows 116822] [--keys 10] [--seed 9] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.matching.engine import encode, link
from node.matching.features import features, one_per_person
from node.services.synth import generate_federation
from protocol.encoding import DEFAULT_LAYOUT, Encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=116_822, help="rows per country (default 116,822)")
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = generate_federation(["NLD", "ROU"], args.rows, seed=args.seed, overlap=0.1, include_truth=True)
    a, b = one_per_person(rows["NLD"]), one_per_person(rows["ROU"])
    fa = [features(p, default_region="NLD") for p in a]
    fb = [features(p, default_region="ROU") for p in b]
    where: dict[str, list[int]] = {}
    for j, p in enumerate(b):
        where.setdefault(str(p["synth_TrueId"]), []).append(j)
    true = {(i, j) for i, p in enumerate(a) for j in where.get(str(p["synth_TrueId"]), ())}
    holders: dict[bytes, list[tuple[int, str]]] = {}
    for j, f in enumerate(fb):
        for s in f.selectors:
            holders.setdefault(s.value, []).append((j, s.kind))
    exact = sorted(
        {(i, j, k) for i, f in enumerate(fa) for s in f.selectors for j, k in holders.get(s.value, ())}
    )
    share = len(true) / (len(a) * len(b))
    runs: list[dict[str, Any]] = []
    for number in range(args.keys):
        key = hashlib.sha256(f"model stability {args.seed} {number}".encode()).digest()
        noise = [hashlib.sha256(key + side).digest() for side in (b"a", b"b")]
        ids_a, ids_b = [str(p["prs_PersonId"]) for p in a], [str(p["prs_PersonId"]) for p in b]
        ba = encode(fa, ids_a, Encoder(DEFAULT_LAYOUT, pair_key=key, noise_key=noise[0], epoch=1))
        bb = encode(fb, ids_b, Encoder(DEFAULT_LAYOUT, pair_key=key, noise_key=noise[1], epoch=1))
        started = time.perf_counter()
        result = link(ba, bb, blocking_seed=key, exact=exact)
        bands = {
            band: {(c.a, c.b) for c in result.candidates if c.band == band} for band in ("likely", "possible")
        }
        run = {
            "key": number,
            "prior_over_truth": result.prior / share,
            "likely": len(bands["likely"]),
            "likely_true": len(bands["likely"] & true),
            "possible": len(bands["possible"]),
            "possible_true": len(bands["possible"] & true),
            "seconds": round(time.perf_counter() - started, 1),
        }
        runs.append(run)
        if not args.json:
            precision = run["likely_true"] / max(1, run["likely"])
            print(f"key {number:3d}: share of matches {run['prior_over_truth']:5.2f} x the truth; likely "
                  f"{run['likely']:,} ({run['likely_true']:,} true, P {precision:.4f}); possible "
                  f"{run['possible']:,} ({run['possible_true']:,} true); {run['seconds']} s", flush=True)  # fmt: skip
    if args.json:
        print(json.dumps({"persons": [len(a), len(b)], "true_pairs": len(true), "runs": runs}, indent=2))
    else:
        print(f"{len(a):,} x {len(b):,} persons, {len(true):,} true pairs, true share {share:.3e}")


if __name__ == "__main__":
    main()
