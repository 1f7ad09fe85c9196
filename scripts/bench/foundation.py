#!/usr/bin/env python3
"""The node foundation's figures in one run: envelopes/s, ingest rows/s and `palermo demo` wall time.

Each figure is printed by its own script beside the raw library rate measured in the same run;
this script runs them one after the other and then times the demo (target: under a minute).

Usage: python scripts/bench/foundation.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str]) -> None:
    print(f"$ {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    run(["scripts/bench/envelopes.py", "--count", "200" if args.quick else "1000"])
    run(["scripts/bench/ingest_speed.py", *(["--rows", "20000"] if args.quick else [])])
    print("$ palermo demo", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "node", "demo"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    seconds = time.perf_counter() - started
    print(f"palermo demo wall time: {seconds:.1f} s (target: under 60 s on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
