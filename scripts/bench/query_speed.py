#!/usr/bin/env python3
"""Query speed: one joint query over three real node processes, beside its parts and raw references.

A sandbox of three real node processes (NLD, ROU, UKR: gunicorn and the scheduler, SQLite) is
created, stopped, given caps that answer every query below (``[queries]`` budget_peer_rho and
budget_global_rho 100, budget_query_rho 10, query_timeout_seconds 600) and the scheduler's
prepare jobs turned off (query_prepare_minutes and match_prepare_minutes 0, so that the first
query builds the query frame and nothing else competes for the cores), then loaded one country at
a time: ``palermo synth`` (generate_country/write_rows, seed 9, 10 % of people also in another
country) and ``palermo ingest``, each in its own process. Then the nodes are started again and
NLD's analyst runs ``palermo query run --spec FILE --peers all --json``, each in its own process:

  first      a small query that finds no query frame: each node builds its own (NLD in the
             command's process, ROU and UKR in a gunicorn worker), all at once on the cores
  ready      every specification in config/queries/*.json, the 64,005-cell flow matrix among them
  shape      two queries of the flow matrix's shape (cells, k, rho) with another year range or
             filter: new releases (the release cache cannot answer them), same OpenDP measurement
  cached     the flow matrix again: every country answers from its release cache

Per query: the command's wall time; per country the answer time (``outcomes[].seconds``: from
asking to a checked answer; NLD answers itself in the command's process, so its figure includes
loading its frame from HOME/cache); and, in this process on NLD's frame with no other node
running, the exact count (count_cells), the noise draw (release_table) and a whole answer
(node.query.responder.answer, charged to another asker so that it is a new release).

References measured in the same run: the command's start-up (``palermo query list``), the frame
build alone (node.query.frame.prepare_frame(force=True) in this process, per node) and its load
from HOME/cache, OpenDP's raw discrete Gaussian sampling rate, and for the flow matrix's shape the
cost of building OpenDP's measurement once, of finding it in node.query.release's cache, and of
OpenDP's own scale search (binary_search_param over make_gaussian), which is what computing the
scale per request would cost. Peak memory (VmHWM) of each node's serve processes, and of the
analyst's command (its own answer included).

    python scripts/bench/query_speed.py [--persons 100000,1000000] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import tree_peaks

from node.context import open_node
from node.query import release
from node.query.count import count_cells
from node.query.frame import CACHE_DIR, current_frame, prepare_frame
from node.query.responder import answer
from node.services import sandbox
from protocol.query.privacy import gaussian_scale
from protocol.query.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
COUNTRIES = ["NLD", "ROU", "UKR"]
ASKER = "nld"
SOLO_ASKER = "bench-solo"  # a fresh asker in NLD's ledger: its answers are new releases, not cached
# distinct prs_PersonId per row of the generator at seed 9 with 10 % overlap (measured: 0.958 for
# two or three countries; a person in several cases has several rows)
PERSONS_PER_ROW = 0.958
SETTINGS = {
    "budget_peer_rho": "100.0",
    "budget_global_rho": "100.0",
    "budget_query_rho": "10.0",
    "query_timeout_seconds": "600.0",
    "query_prepare_minutes": "0",
    "match_prepare_minutes": "0",
}
FIRST = {"title": "Victims by type of exploitation and sex", "measure": "victims",
         "dimensions": ["exploitation_group", "sex"], "privacy": {"rho": "0.05"}}  # fmt: skip
FLOW = "flow-citizenship-exploitation"
COMMAND_TIMEOUT = 1800


# ---- processes ------------------------------------------------------------------------------


def palermo(home: Path | None, *args: str) -> tuple[dict[str, Any], float, int]:
    """``palermo ARGS --json`` in its own process: its JSON, wall seconds and peak memory (KiB)."""
    command = [sys.executable, "-m", "node", *(["--home", str(home)] if home else []), *args, "--json"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
        deadline = started + COMMAND_TIMEOUT
        while (waited := os.wait4(child.pid, os.WNOHANG))[0] == 0:
            if time.perf_counter() > deadline:
                child.kill()
                raise SystemExit(f"palermo {' '.join(args)} took over {COMMAND_TIMEOUT} s")
            time.sleep(0.002)
        wall = time.perf_counter() - started
        _, status, usage = waited
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        text, errors = stdout.read().decode(), stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"palermo {' '.join(args)} failed: {text[-500:]} {errors[-1500:]}")
    return dict(json.loads(text)), wall, usage.ru_maxrss


# ---- the sandbox ----------------------------------------------------------------------------


def configure(home: Path) -> None:
    """Raise the caps and turn the scheduler's prepare jobs off in the home's palermo.toml."""
    path = home / "palermo.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in SETTINGS.items():
        text, found = re.subn(rf"(?m)^{key}\s*=\s*[^#\n]*", f"{key} = {value}   ", text)
        if found != 1:
            raise SystemExit(f"{path}: no single '{key} =' line to change")
    path.write_text(text, encoding="utf-8")


def load(workdir: Path, persons: int) -> dict[str, Any]:
    """Generate and ingest each country's register, one at a time (a million rows take gigabytes)."""
    rows = round(persons / PERSONS_PER_ROW)
    out: dict[str, Any] = {"rows": {}, "persons": {}, "cases": {}, "synth_seconds": {}, "ingest_seconds": {}}
    for country in COUNTRIES:
        others = ",".join(c for c in COUNTRIES if c != country)
        path = workdir / f"{country.lower()}.csv"
        _, seconds, _ = palermo(None, "synth", "--country", country, "--records", str(rows), "--out",
                                str(path), "--seed", "9", "--overlap-with", others, "--overlap", "0.1")  # fmt: skip
        out["synth_seconds"][country] = round(seconds, 1)
        report, seconds, _ = palermo(workdir / country.lower(), "ingest", str(path))
        out["ingest_seconds"][country] = round(seconds, 1)
        out["rows"][country] = report["rows_loaded"]
        out["persons"][country] = report["persons_created"]
        out["cases"][country] = report["cases_created"]
        path.unlink()
    return out


def query_files(workdir: Path) -> list[tuple[str, str, Path]]:
    """(kind, name, file) of every query, in the order they run."""
    folder = workdir / "queries"
    folder.mkdir(exist_ok=True)
    first = folder / "first.json"
    first.write_text(json.dumps(FIRST), encoding="utf-8")
    ready = sorted((ROOT / "config" / "queries").glob("*.json"))
    flow = json.loads((ROOT / "config" / "queries" / f"{FLOW}.json").read_text(encoding="utf-8"))
    years = folder / "flow-years.json"
    years.write_text(json.dumps({**flow, "years": [2019, 2026]}), encoding="utf-8")
    female = folder / "flow-female.json"
    female.write_text(json.dumps({**flow, "filters": {"sex": ["female"]}}), encoding="utf-8")
    return [
        ("first", "first after ingest (frame build)", first),
        *(("ready", path.stem, path) for path in ready),
        ("shape", "flow, same shape: years 2019-2026", years),
        ("shape", "flow, same shape: sex female", female),
        ("cached", "flow again (release cache)", ROOT / "config" / "queries" / f"{FLOW}.json"),
    ]


def run_query(workdir: Path, kind: str, name: str, path: Path) -> dict[str, Any]:
    home = workdir / ASKER
    result, wall, peak = palermo(home, "query", "run", "--spec", str(path), "--peers", "all")
    outcomes = {o["country"]: o for o in result["outcomes"]}
    return {
        "kind": kind,
        "name": name,
        "spec": str(path),
        "cells": len(result["table"]["cells"]),
        "wall_seconds": round(wall, 3),
        "seconds": {c: o["seconds"] for c, o in outcomes.items()},
        "status": {c: o["status"] + (" (cached)" if o["cached"] else "") for c, o in outcomes.items()},
        "command_peak_mib": round(peak / 1024),
    }


# ---- this process's figures -----------------------------------------------------------------


def frame_figures(workdir: Path) -> dict[str, Any]:
    """Per node: the frame loaded from HOME/cache, then built afresh (prepare_frame), and its size."""
    out: dict[str, Any] = {}
    for country in COUNTRIES:
        home = workdir / country.lower()
        node = open_node(home)
        try:
            loaded = prepare_frame(node)
            node.cache.clear()
            built = prepare_frame(node, force=True)
            checked = prepare_frame(node)  # in memory: only the data version is read
            held = current_frame(node)
            in_memory = sum(a.nbytes for a in held.arrays().values())
        finally:
            node.close()
        on_disk = sum(p.stat().st_size for p in (home / CACHE_DIR).glob("query-frame-*.npz"))
        out[country] = {
            "load_seconds": loaded["seconds"],
            "loaded_from_disk": not loaded["rebuilt"],
            "build_seconds": built["seconds"],
            "version_check_seconds": checked["seconds"],
            "rows": built["rows"],
            "persons": built["persons"],
            "cases": built["cases"],
            "memory_mib": round(in_memory / 2**20, 1),
            "disk_mib": round(on_disk / 2**20, 1),
        }
    return out


def best(work: Any, repeat: int = 3) -> float:
    """The fastest of ``repeat`` calls of ``work``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def parts(workdir: Path, queries: list[tuple[str, str, Path]]) -> dict[str, dict[str, float]]:
    """Per query, on NLD's frame in this process: the exact count, the noise draw, and a whole answer
    (node.query.responder.answer: frame, count, ledger transaction, draw) with no other node
    running, in seconds; and whether the draw needed a new OpenDP measurement."""
    node = open_node(workdir / ASKER)
    try:
        frame = current_frame(node)
        out = {}
        for _, name, path in queries:
            spec = parse_spec(json.loads(path.read_text(encoding="utf-8")))
            counts = count_cells(frame, spec)
            misses = release.measurement.cache_info().misses
            release.release_table(spec, counts, period="bench", released_at=0)
            started = time.perf_counter()
            answer(
                node, spec, asker=SOLO_ASKER, query_id=os.urandom(16).hex(), message_id=os.urandom(16).hex()
            )
            out[name] = {
                "solo_answer_seconds": time.perf_counter() - started,
                "new_measurement": release.measurement.cache_info().misses > misses,
                "count_seconds": best(lambda spec=spec: count_cells(frame, spec)),
                "draw_seconds": best(
                    lambda spec=spec, counts=counts: release.release_table(
                        spec, counts, period="bench", released_at=0
                    ),
                    repeat=2,
                ),
                "true_total": int(counts.sum()),
            }
        return out
    finally:
        node.close()


def measurement_figures() -> dict[str, Any]:
    """For the flow matrix's shape: OpenDP's measurement built, found in the cache, searched for;
    and OpenDP's raw sampling rate."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    flow = parse_spec(json.loads((ROOT / "config" / "queries" / f"{FLOW}.json").read_text(encoding="utf-8")))
    cells, l2, rho_nano = flow.cells, flow.l2_sensitivity, flow.rho_nano
    build = best(lambda: release.measurement.__wrapped__(cells, l2, rho_nano))
    release.measurement.cache_clear()
    release.measurement(cells, l2, rho_nano)
    before = release.measurement.cache_info()
    cached = best(lambda: release.measurement(cells, l2, rho_nano), repeat=1000)
    after = release.measurement.cache_info()

    def search() -> float:
        return float(
            dp.binary_search_param(
                lambda s: dp.m.make_gaussian(
                    dp.vector_domain(dp.atom_domain(T=int), size=cells), dp.l2_distance(T=float), scale=s
                ),
                d_in=l2,
                d_out=rho_nano / 1e9,
            )
        )

    started = time.perf_counter()
    found = search()
    searched = time.perf_counter() - started
    scale = gaussian_scale(l2, rho_nano)
    plain = release.measurement(cells, l2, rho_nano)[0]
    zeros = [0] * cells
    raw = cells / best(lambda: plain(zeros), repeat=2)
    return {
        "cells": cells,
        "l2_sensitivity": l2,
        "rho": flow.rho,
        "build_seconds": build,
        "cached_seconds": cached,
        "cache_misses": after.misses - before.misses,
        "cache_hits": after.hits - before.hits,
        "search_seconds": searched,
        "search_scale": found,
        "closed_form_scale": scale,
        "raw_samples_per_s": raw,
        "scale_per_cell_seconds": 1 / raw,
    }


def alone(workdir: Path, flow: Path, tries: int = 3) -> list[float]:
    """Seconds of new releases of the flow matrix's shape asked of ROU alone over HTTP (nothing
    else busy): ``query.request`` sent from NLD in this process, with a year range not asked yet."""
    from node.services.exchange import send_request

    node = open_node(workdir / ASKER)
    try:
        seconds = []
        for first in range(2020, 2020 + tries):
            spec = parse_spec({**json.loads(flow.read_text(encoding="utf-8")), "years": [first, 2026]})
            payload = {"query_id": os.urandom(16).hex(), "spec": spec.to_wire()}
            started = time.perf_counter()
            send_request(node, "rou", "query.request", payload, timeout=node.settings.query_timeout_seconds)
            seconds.append(round(time.perf_counter() - started, 3))
        return seconds
    finally:
        node.close()


def node_peaks(workdir: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for country in COUNTRIES:
        pid = int((workdir / country.lower() / "serve.pid").read_text())
        out[country] = [
            {"pid": p, "role": role, "peak_mib": round(kib / 1024)} for p, role, kib in tree_peaks(pid)
        ]
    return out


def bench(persons: int, workdir: Path) -> dict[str, Any]:
    sandbox.up(workdir, COUNTRIES)
    sandbox.down(workdir)
    for country in COUNTRIES:
        configure(workdir / country.lower())
    out: dict[str, Any] = {"persons_asked": persons, "data": load(workdir, persons)}
    queries = query_files(workdir)
    _, startup, _ = palermo(workdir / ASKER, "query", "list")
    out["cli_startup_seconds"] = round(startup, 3)
    sandbox.up(workdir, COUNTRIES)
    try:
        out["queries"] = [run_query(workdir, *queries[0])]
        out["frames"] = frame_figures(workdir)
        for query in queries[1:]:
            out["queries"].append(run_query(workdir, *query))
        out["rou_alone_seconds"] = alone(workdir, ROOT / "config" / "queries" / f"{FLOW}.json")
        out["node_peaks"] = node_peaks(workdir)
    finally:
        sandbox.down(workdir)
    out["parts"] = parts(workdir, queries)
    out["measurement"] = measurement_figures()
    return out


# ---- output ---------------------------------------------------------------------------------


def show(r: dict[str, Any]) -> None:
    d = r["data"]
    print(f"\nthree real nodes (SQLite), about {r['persons_asked']:,} persons each:")
    for c in COUNTRIES:
        f = r["frames"][c]
        print(f"  {c}  {d['persons'][c]:>9,} persons, {d['rows'][c]:>9,} rows, {d['cases'][c]:>8,} cases; "
              f"synth {d['synth_seconds'][c]:5.1f} s, ingest {d['ingest_seconds'][c]:6.1f} s; frame: build "
              f"{f['build_seconds']:6.2f} s, load from HOME/cache {f['load_seconds']:5.2f} s, version check "
              f"{f['version_check_seconds']:5.3f} s, "
              f"{f['memory_mib']:.1f} MiB in memory, {f['disk_mib']:.1f} on disk")  # fmt: skip
    m = r["measurement"]
    print(f"  reference: command start-up ('palermo query list') {r['cli_startup_seconds']:.2f} s; OpenDP "
          f"discrete Gaussian {m['raw_samples_per_s']:,.0f} samples/s (plain measurement, "
          f"{m['cells']:,} cells a call)")  # fmt: skip
    print(f"  OpenDP measurement of the flow matrix's shape ({m['cells']:,} cells, L2 {m['l2_sensitivity']:.3f}, "
          f"rho {m['rho']}): built in {m['build_seconds'] * 1e3:.1f} ms once per shape and process; from "
          f"node.query.release's cache in {m['cached_seconds'] * 1e6:.1f} us ({m['cache_misses']} misses, "
          f"{m['cache_hits']:,} hits); OpenDP's scale search (binary_search_param) "
          f"{m['search_seconds'] * 1e3:.0f} ms (scale {m['search_scale']:.6f} vs closed form "
          f"{m['closed_form_scale']:.6f})")  # fmt: skip
    head = (f"  {'query':36s} {'cells':>7} {'wall s':>7} " + " ".join(f"{c + ' s':>7}" for c in COUNTRIES)
            + f" {'count s':>8} {'draw s':>7} {'solo s':>7} {'new m.':>6} {'cmd MiB':>7}  answers")  # fmt: skip
    print("\n" + head)
    print("  " + "-" * (len(head) - 2))
    for q in r["queries"]:
        p = r["parts"][q["name"]]
        seconds = " ".join(f"{q['seconds'].get(c, float('nan')):>7.2f}" for c in COUNTRIES)
        statuses = sorted(set(q["status"].values()))
        print(f"  {q['name'][:36]:36s} {q['cells']:>7,} {q['wall_seconds']:>7.2f} {seconds} "
              f"{p['count_seconds']:>8.3f} {_draw(q, p):>7} {p['solo_answer_seconds']:>7.2f} "
              f"{'yes' if p['new_measurement'] else 'no':>6} "
              f"{q['command_peak_mib']:>7}  "
              f"{', '.join(statuses)}")  # fmt: skip
    print(f"  {'flow, ROU alone (nothing else busy)':36s} {64005:>7,} {'':>7} {'':>7} "
          f"{', '.join(f'{x:.2f}' for x in r['rou_alone_seconds'])} s (3 new releases over HTTP)")  # fmt: skip
    for line in (
        "per country: from asking to a checked answer, the three nodes answering at once on this machine's",
        "cores; NLD answers itself inside the command. On NLD's frame in this process, one node alone:",
        "count s count_cells, draw s release_table (in brackets: no draw was needed), solo s a whole answer",
        "(responder.answer: frame, count, ledger, draw); new m.: the draw built a new OpenDP measurement.",
        "cmd MiB: peak memory of the command. Target: under 2 s a node at a million persons.",
    ):
        print(f"  {line}")
    peaks = "; ".join(
        f"{c} "
        + ", ".join(
            f"{p['role']} {p['peak_mib']}" for p in sorted(r["node_peaks"][c], key=lambda p: p["role"])
        )
        for c in COUNTRIES
    )
    print(f"  peak memory (VmHWM, MiB) of each node's serve processes: {peaks}")


def _draw(query: dict[str, Any], part: dict[str, Any]) -> str:
    """The draw's seconds; in brackets when every country answered from its cache (no draw)."""
    text = f"{part['draw_seconds']:.3f}"
    return f"({text})" if query["kind"] == "cached" else text


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", default="100000", help="persons per node, comma-separated")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox folder (nodes stopped)")
    args = parser.parse_args()
    results = []
    for persons in (int(x) for x in args.persons.split(",") if x):
        workdir = Path(tempfile.mkdtemp(prefix="palermo-query-bench-"))
        try:
            results.append(bench(persons, workdir))
        finally:
            if args.keep:
                print(f"sandbox left in {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        if not args.json:
            show(results[-1])
    if args.json:
        print(json.dumps({"runs": results}, indent=2))


if __name__ == "__main__":
    main()
