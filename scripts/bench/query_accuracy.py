#!/usr/bin/env python3
"""Query accuracy: the error of released cells against the true counts, beside the mechanism's theory.

A temporary node home is loaded with a synthetic register (``--rows`` rows, a few thousand
persons); the true table of a realistic query (victims by type of exploitation x sex, 15 cells)
is counted from the node's query frame (node.query.count.count_cells), and the node's own release
(node.query.release.release_table: OpenDP's discrete Gaussian at the scale the loss gives) is
drawn many times, bypassing the ledger (it would answer repeats from its release cache), at several
privacy losses rho and contribution bounds k (cells_per_unit).

Per row (k, rho):
  epsilon     the loss as epsilon at delta 1e-7 (OpenDP's conversion, node.query.ledger.epsilon_at)
  scale       sigma = sqrt(k) / sqrt(2 rho) (1 + 1e-9), protocol.query.privacy.gaussian_scale
  theory      the mechanism's standard deviation, sqrt(discrete_gaussian_variance(scale))
  RMSE        root-mean-square of (released - true) over every cell of every draw
  SE          the sampling error of that RMSE: theory * sqrt((kurtosis - 1) / (4 N)) for N
              cell-draws, with the discrete Gaussian's own kurtosis (3 above scale ~1)
  z, match    (RMSE - theory) / SE, and whether |z| <= 3 ("match within sampling error")
  bias        the mean error and its standard error (the release is unbiased: expect |bias| < 3 SE)
  cover95     how often the true count lies in released +- 1.96 theory (the interval that
              protocol.query.combine gives), beside that probability under the exact distribution
  rate        cells released per second by release_table, beside the reference: the samples per
              second of a plain OpenDP discrete Gaussian measurement on 10,000 zeros at the same
              scale, measured in the same run

    python scripts/bench/query_accuracy.py [--quick] [--draws 4000] [--rows 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.context import NodeContext, open_node
from node.query.count import count_cells
from node.query.frame import current_frame
from node.query.ledger import epsilon_at, period_of
from node.query.release import release_table
from node.services.ingest import ingest_file
from node.services.init import init_home
from node.services.synth import generate_country, write_rows
from protocol.query.combine import Z95
from protocol.query.privacy import discrete_gaussian_variance, gaussian_scale
from protocol.query.spec import QuerySpec, parse_spec

RHOS = ("0.005", "0.02", "0.05", "0.1", "0.5", "1")
BOUNDS = (1, 5)
DELTA = 1e-7
RAW_CELLS = 10_000
QUERY = {
    "title": "Victims by type of exploitation and sex",
    "measure": "victims",
    "dimensions": ["exploitation_group", "sex"],
}


def load_node(workdir: Path, rows: int) -> tuple[NodeContext, dict[str, Any]]:
    """A fresh node home with ``rows`` synthetic rows ingested; its figures."""
    home = workdir / "nld"
    init_home(home, node_id="nld", country="NLD", url="http://127.0.0.1:9")
    path = workdir / "nld.csv"
    write_rows(generate_country("NLD", rows, seed=9), path)
    node = open_node(home)
    started = time.perf_counter()
    report = ingest_file(node, path)
    seconds = time.perf_counter() - started
    return node, {"rows": report.rows_loaded, "persons": report.persons_created,
                  "cases": report.cases_created, "ingest_seconds": round(seconds, 2)}  # fmt: skip


def exact_distribution(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The support (-B..B) and probabilities of the discrete Gaussian N_Z(0, scale**2)."""
    bound = math.ceil(12 * scale) + 2  # weights beyond 12 sigma are below exp(-72)
    xs = np.arange(-bound, bound + 1, dtype=np.float64)
    weights = np.exp(-(xs * xs) / (2 * scale * scale))
    return xs, weights / weights.sum()


def theory(scale: float) -> dict[str, float]:
    """The mechanism's standard deviation, kurtosis and the coverage of +- 1.96 sd, exactly."""
    sd = math.sqrt(discrete_gaussian_variance(scale))
    xs, p = exact_distribution(scale)
    variance = float((p * xs**2).sum())
    kurtosis = float((p * xs**4).sum()) / variance**2
    cover = float(p[np.abs(xs) <= Z95 * sd].sum())
    return {"sd": sd, "kurtosis": kurtosis, "cover95": cover}


def release_rate(spec: QuerySpec, truth: np.ndarray, draws: int, period: str) -> tuple[np.ndarray, float]:
    """``draws`` releases of ``truth`` (their errors, draws x cells) and the cells released per second."""
    errors = np.empty((draws, spec.cells), np.int64)
    started = time.perf_counter()
    for i in range(draws):
        answer = release_table(spec, truth, period=period, released_at=int(time.time()))
        errors[i] = answer["cells"]
    seconds = time.perf_counter() - started
    errors -= truth
    return errors, draws * spec.cells / seconds


def raw_rate(scale: float, seconds: float = 0.4) -> float:
    """Samples per second of a plain OpenDP discrete Gaussian measurement (10,000 zeros a call)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    plain = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int), size=RAW_CELLS), dp.l2_distance(T=float), scale=scale
    )
    zeros = [0] * RAW_CELLS
    calls, started = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - started < seconds:
        plain(zeros)
        calls += 1
    return calls * RAW_CELLS / (time.perf_counter() - started)


def measure_row(spec: QuerySpec, truth: np.ndarray, draws: int, period: str) -> dict[str, Any]:
    scale = gaussian_scale(spec.l2_sensitivity, spec.rho_nano)
    expected = theory(scale)
    errors, rate = release_rate(spec, truth, draws, period)
    n = errors.size
    rmse = float(np.sqrt(np.mean(errors.astype(np.float64) ** 2)))
    sd = expected["sd"]
    se = sd * math.sqrt((expected["kurtosis"] - 1) / (4 * n))
    cover = float(np.mean(np.abs(errors) <= Z95 * sd))
    return {
        "k": spec.cells_per_unit,
        "rho": spec.rho,
        "epsilon": epsilon_at(spec.rho_nano, DELTA),
        "scale": scale,
        "theory_sd": sd,
        "kurtosis": expected["kurtosis"],
        "rmse": rmse,
        "rmse_se": se,
        "z": (rmse - sd) / se,
        "match": abs(rmse - sd) <= 3 * se,
        "bias": float(errors.mean()),
        "bias_se": sd / math.sqrt(n),
        "cover95": cover,
        "cover95_theory": expected["cover95"],
        "cover95_se": math.sqrt(expected["cover95"] * (1 - expected["cover95"]) / n),
        "cell_draws": n,
        "release_cells_per_s": rate,
        "raw_samples_per_s": raw_rate(scale),
    }


def run(rows: int, draws: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="palermo-accuracy-") as tmp:
        node, data = load_node(Path(tmp), rows)
        try:
            frame = current_frame(node)
            period = period_of("month", int(time.time()))
            results, truths = [], {}
            for k in BOUNDS:
                base = parse_spec({**QUERY, "privacy": {"rho": RHOS[0]}, "bounds": {"cells_per_unit": k}})
                truth = count_cells(frame, base)
                truths[k] = truth.tolist()
                for rho in RHOS:
                    spec = parse_spec({**QUERY, "privacy": {"rho": rho}, "bounds": {"cells_per_unit": k}})
                    results.append(measure_row(spec, truth, draws, period))
        finally:
            node.close()
    labels = [" x ".join(cell) for cell in base.cell_labels()]
    query = f"{base.measure} by {' x '.join(base.dimensions)}"
    return {"data": data, "query": query, "cells": base.cells, "labels": labels,
            "true_counts": truths, "releases_per_row": draws, "rows": results}  # fmt: skip


def show(result: dict[str, Any]) -> None:
    d = result["data"]
    print(f"node: {d['persons']:,} persons, {d['rows']:,} rows, {d['cases']:,} cases (ingested in "
          f"{d['ingest_seconds']:.1f} s); query: {result['query']}, {result['cells']} cells")  # fmt: skip
    for k, counts in result["true_counts"].items():
        print(f"  true counts, k = {k}: {counts}")
    print(f"{result['releases_per_row']:,} releases a row, each cell's error = released - true; "
          f"theory = sqrt(discrete_gaussian_variance(scale)); SE = sampling error of the RMSE\n")  # fmt: skip
    head = (f"{'k':>2} {'rho':>6} {'eps@1e-7':>8} {'scale':>8} {'theory':>8} {'RMSE':>8} {'SE':>7} "
            f"{'z':>6} {'match':>5} {'bias':>14} {'cover95':>7} {'(theory)':>8} {'cells':>7} "
            f"{'release/s':>10} {'raw OpenDP/s':>12}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in result["rows"]:
        bias = f"{r['bias']:+.3f}±{r['bias_se']:.3f}"
        print(f"{r['k']:>2} {r['rho']:>6} {r['epsilon']:>8.3f} {r['scale']:>8.3f} {r['theory_sd']:>8.3f} "
              f"{r['rmse']:>8.3f} {r['rmse_se']:>7.3f} {r['z']:>+6.2f} {'yes' if r['match'] else 'NO':>5} "
              f"{bias:>14} {r['cover95']:>7.4f} {r['cover95_theory']:>8.4f} {r['cell_draws']:>7,} "
              f"{r['release_cells_per_s']:>10,.0f} {r['raw_samples_per_s']:>12,.0f}")  # fmt: skip
    matched = sum(r["match"] for r in result["rows"])
    print(f"\n{matched} of {len(result['rows'])} rows match theory within 3 sampling errors; "
          f"release/s is cells per second through release_table ({result['cells']} cells a call), "
          f"raw OpenDP/s the samples per second of a plain measurement at the same scale "
          f"({RAW_CELLS:,} cells a call)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=5000, help="synthetic rows ingested (about 0.96 persons a row)"
    )
    parser.add_argument("--draws", type=int, default=4000, help="releases per (k, rho) row")
    parser.add_argument("--quick", action="store_true", help="400 releases a row (a looser estimate)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    draws = 400 if args.quick else args.draws
    if draws < 1:
        raise SystemExit("expected at least one release a row")
    result = run(args.rows, draws)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
