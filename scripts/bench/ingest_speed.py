"""Ingest speed: rows per second that ``palermo ingest`` loads into a fresh node, beside a raw reference
(csv.DictReader + executemany of the same rows into one bare table of text columns, one transaction)
measured in the same run on the same database, for SQLite and, when a server answers, PostgreSQL.

    .venv/bin/python scripts/bench/ingest_speed.py [--rows 100000] [--format csv|jsonl|xlsx]
        [--generator synth|local] [--postgres URL | --no-postgres]

The rows come from node.services.synth (realistic HTCDS rows) when it is importable, else from a
small local generator; generating them is not counted. Each measurement runs in a fresh Python
process, so that its peak memory (getrusage maxrss) is its own; for palermo it is given for the
loading process and for the process that checks rows beside it on large files. The PostgreSQL
figures use a throwaway database created on the server (default: postgres@127.0.0.1:5432, via
the database ``test``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
COUNTRIES = ("ROU", "MDA", "UKR", "NGA", "VNM", "BGR", "NLD", "DEU", "ITA", "ESP")
EXPLOITATION = ("ForcedLabour", "SexualExploitation", "ForcedCriminality", "ForcedBegging", "Servitude")
CONTROL = ("DebtBondage", "WithholdsDocuments", "PhysicalThreats", "RestrictsMovement", "FalsePromises")


# ---- rows -------------------------------------------------------------------------------------


def local_rows(n: int, seed: int = 7) -> list[dict[str, str]]:
    """``n`` plausible rows, about 2.5 persons per case, 1 in 10 rows a person already in another case."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: list[int] = []  # person numbers so far
    case = 0
    while len(rows) < n:
        case += 1
        case_fields = {
            "cas_CaseId": f"C{case:07d}",
            "cas_Status": rng.choice(("Active", "Closed")),
            "cas_RegistrationDate": f"{rng.randrange(2015, 2026)}-{rng.randrange(1, 13):02d}-15",
        }
        in_case: set[int] = set()
        for member in range(rng.choice((1, 2, 2, 3, 4))):
            number = rng.choice(seen) if seen and rng.random() < 0.1 else len(seen)
            number = len(seen) if number in in_case else number
            if number == len(seen):
                seen.append(number)
            in_case.add(number)
            victim = member > 0 or rng.random() < 0.5
            row = {**case_fields, **_person(number), "role": "victim" if victim else "perpetrator"}
            row |= {
                "hte_RecruitmentCountry": rng.choice(COUNTRIES),
                "hte_ExploitationCountry": rng.choice(COUNTRIES),
                "shr_Matchable": rng.choice(("true", "false")),
                "shr_HandlingCode": rng.choice(("H0", "H1", "H2")),
            }
            if victim:
                row["vic_TypeOfExploitation"] = ";".join(rng.sample(EXPLOITATION, rng.randrange(1, 3)))
                row["vic_MethodsOfControl"] = ";".join(rng.sample(CONTROL, rng.randrange(1, 4)))
            else:
                row["per_RoleInProcess"] = rng.choice(("RecruiterOrIntermediary", "Exploiter", "Transporter"))
            rows.append(row)
    return rows[:n]


def _person(number: int) -> dict[str, str]:
    """The fields of person ``number``: the same in every case the person is in."""
    rng = random.Random(number)
    return {
        "prs_PersonId": f"P{number:08d}",
        "prs_FirstName": rng.choice(("Ana", "Ion", "Maria", "Олена", "Chukwuemeka", "Thị Lan")),
        "prs_SecondName": rng.choice(("Popescu", "Rusu", "Коваленко", "Okafor", "Nguyễn")),
        "prs_Birthdate": f"{rng.randrange(1960, 2008)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "prs_Gender": rng.choice(("Feminine", "Masculine")),
        "prs_Citizenship": rng.choice(COUNTRIES),
        "prs_MobilePhone": f"+40 7{rng.randrange(10**8):08d}",
    }


def synth_rows(n: int) -> list[dict[str, str]] | None:
    try:
        from node.services.synth import generate_country
    except ImportError:
        return None
    rows = generate_country("ROU", n, seed=1)
    return [{k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows]


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    header = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def write_file(rows: list[dict[str, str]], path: Path, fmt: str) -> None:
    """The rows as CSV, JSON Lines (multi-valued as arrays, empty fields left out) or XLSX."""
    if fmt == "csv":
        write_csv(rows, path)
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                obj = {k: v.split(";") if ";" in v else v for k, v in row.items() if v}
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("records")
        header = list(dict.fromkeys(k for row in rows for k in row))
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(column) or None for column in header])
        book.save(path)


# ---- measurements (each in a fresh process) ------------------------------------------------------


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def measure_palermo(source: str, home: str) -> dict[str, Any]:
    from node.context import open_node
    from node.services.ingest import ingest_file

    node = open_node(Path(home))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        report = ingest_file(node, Path(source))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        node.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rows": report.rows_loaded,
        "seconds": elapsed,
        "cpu": cpu,
        "child_cpu": children.ru_utime + children.ru_stime,
        "peak_mb": peak_mb(resource.RUSAGE_SELF),
        "child_peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
    }


def measure_raw(source: str, database: str) -> dict[str, Any]:
    """csv.DictReader + executemany into one bare table of TEXT columns, one transaction."""
    start = time.perf_counter()
    postgres = database.startswith("postgresql")
    if postgres:
        import psycopg

        connection: Any = psycopg.connect(_libpq(database))
        mark, table = "%({})s", f"raw_{uuid.uuid4().hex[:8]}"
    else:
        import sqlite3

        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        mark, table = ":{}", "raw"
    count = 0
    with open(source, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        connection.execute(f"CREATE TABLE {table} ({', '.join(f'{c} TEXT' for c in columns)})")
        statement = f"INSERT INTO {table} VALUES ({', '.join(mark.format(c) for c in columns)})"  # noqa: S608
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 2000:
                connection.cursor().executemany(statement, batch)
                count, batch = count + len(batch), []
        connection.cursor().executemany(statement, batch)
        count += len(batch)
    connection.commit()
    elapsed = time.perf_counter() - start
    connection.close()
    return {"rows": count, "seconds": elapsed, "peak_mb": peak_mb(resource.RUSAGE_SELF)}


def _libpq(url: str) -> str:
    """postgresql+psycopg://user@host:port/name -> a libpq connection string."""
    rest = url.split("://", 1)[1]
    user, _, rest = rest.rpartition("@")
    hostport, _, name = rest.partition("/")
    host, _, port = hostport.partition(":")
    return f"host={host} port={port or 5432} user={user or 'postgres'} dbname={name}"


def in_fresh_process(kind: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---- node homes and databases -----------------------------------------------------------------


def make_node_home(root: Path, database_url: str) -> Path:
    from node.keys import NodeKeys, save_keys
    from node.settings import SETTINGS_FILE, render_settings
    from node.storage.db import migrate

    home = root / "home"
    home.mkdir(parents=True)
    settings = render_settings(node_id="bench", country="ROU", url="http://127.0.0.1:8400",
                               database_url=database_url, bind="127.0.0.1:8400")  # fmt: skip
    (home / SETTINGS_FILE).write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(database_url)
    return home


class ThrowawayPostgres:
    """A database created on the server for this run and dropped afterwards (None if no server)."""

    def __init__(self, admin: str) -> None:
        import psycopg

        self.admin = psycopg.connect(admin, autocommit=True)
        self.name = f"palermo_bench_{uuid.uuid4().hex[:12]}"
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        info = self.admin.info
        self.url = f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{self.name}"

    def close(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()


def open_postgres(admin: str) -> ThrowawayPostgres | None:
    try:
        return ThrowawayPostgres(admin)
    except Exception as e:  # no driver, no server, no rights: the figure is skipped, and says why
        print(f"PostgreSQL: skipped ({type(e).__name__}: {str(e).strip()[:80]})")
        return None


# ---- the run ----------------------------------------------------------------------------------


def report(backend: str, palermo: dict[str, Any], raw: dict[str, Any]) -> None:
    rate, reference = palermo["rows"] / palermo["seconds"], raw["rows"] / raw["seconds"]
    print(
        f"{backend}: palermo ingest (check + load, one transaction): {rate:,.0f} rows/s "
        f"({palermo['seconds']:.2f} s wall; CPU {palermo['cpu']:.2f} s loading + "
        f"{palermo['child_cpu']:.2f} s checking in a second process; peak memory "
        f"{palermo['peak_mb']:.0f} MB + {palermo['child_peak_mb']:.0f} MB)"
    )
    print(
        f"{backend}: reference csv.DictReader + executemany into a bare table: {reference:,.0f} rows/s "
        f"(peak memory {raw['peak_mb']:.0f} MB)"
    )
    print(f"{backend}: ratio palermo / reference: {rate / reference:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("csv", "jsonl", "xlsx"), default="csv")
    parser.add_argument("--generator", choices=("synth", "local"), default="synth")
    parser.add_argument("--postgres", default=PG_ADMIN, help="libpq string of a database to create one from")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args()
    if args.measure:
        kind, *rest = args.measure
        print(json.dumps(measure_palermo(*rest) if kind == "palermo" else measure_raw(*rest)))
        return
    rows = synth_rows(args.rows) if args.generator == "synth" else None
    generator = "node.services.synth" if rows is not None else "local generator"
    rows = rows or local_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source, reference_csv = root / f"rows.{args.format}", root / "rows.csv"
        write_file(rows, source, args.format)
        write_csv(rows, reference_csv)
        del rows
        size = source.stat().st_size / 1e6
        print(f"rows: {args.rows:,} ({generator}), format {args.format}, {size:.1f} MB; {_cores()}")
        sqlite_home = make_node_home(root / "sqlite", f"sqlite:///{root / 'sqlite' / 'palermo.db'}")
        raw = in_fresh_process("raw", str(reference_csv), str(root / "raw.db"))
        report("SQLite", in_fresh_process("palermo", str(source), str(sqlite_home)), raw)
        postgres = None if args.no_postgres else open_postgres(args.postgres)
        if postgres is not None:
            try:
                pg_home = make_node_home(root / "pg", postgres.url)
                raw = in_fresh_process("raw", str(reference_csv), postgres.url)
                report("PostgreSQL", in_fresh_process("palermo", str(source), str(pg_home)), raw)
            finally:
                postgres.close()


def _cores() -> str:
    import os

    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load average {load:.1f} at the start (other work slows both figures)"


if __name__ == "__main__":
    main()
