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
import os
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
        statement = f"INSERT INTO {table} VALUES ({', '.join(mark.format(c) for c in columns)})"
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


def create_postgres(admin: str) -> dict[str, Any]:
    """A database for this run on the server that ``admin`` reaches (libpq string), or why not."""
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            name = f"palermo_bench_{uuid.uuid4().hex[:12]}"
            connection.execute(f'CREATE DATABASE "{name}"')
            info = connection.info
            return {"url": f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{name}", "name": name}
    except Exception as e:  # no driver, no server, no rights: the figure is skipped, and says why
        return {"skipped": f"{type(e).__name__}: {str(e).strip()[:80]}"}


def drop_postgres(admin: str, name: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {}


def generate(rows: str, generator: str, fmt: str, folder: str) -> dict[str, Any]:
    made = synth_rows(int(rows)) if generator == "synth" else None
    used = "node.services.synth" if made is not None else "local generator"
    made = made or local_rows(int(rows))
    write_file(made, Path(folder) / f"rows.{fmt}", fmt)
    write_csv(made, Path(folder) / "rows.csv")
    return {"generator": used}


STEPS = {
    "generate": generate,
    "home": lambda folder, url: {"home": str(make_node_home(Path(folder), url))},
    "raw": measure_raw,
    "palermo": measure_palermo,
    "create_postgres": create_postgres,
    "drop_postgres": drop_postgres,
}


# ---- the run ----------------------------------------------------------------------------------


def report(backend: str, palermo: dict[str, Any], raw: dict[str, Any]) -> None:
    rate, reference = palermo["rows"] / palermo["seconds"], raw["rows"] / raw["seconds"]
    second = palermo["child_cpu"] > 0
    print(
        f"{backend}: palermo ingest (check + load, one transaction): {rate:,.0f} rows/s "
        f"({palermo['seconds']:.2f} s wall; CPU {palermo['cpu']:.2f} s loading"
        + (f" + {palermo['child_cpu']:.2f} s checking in a second process" if second else "")
        + f"; peak memory {palermo['peak_mb']:.0f} MB"
        + (f" + {palermo['child_peak_mb']:.0f} MB" if second else "")
        + ")"
    )
    print(
        f"{backend}: reference csv.DictReader + executemany into a bare table: {reference:,.0f} rows/s "
        f"({raw['seconds']:.2f} s wall; peak memory {raw['peak_mb']:.0f} MB)"
    )
    print(f"{backend}: ratio palermo / reference: {rate / reference:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("csv", "jsonl", "xlsx"), default="csv")
    parser.add_argument("--generator", choices=("synth", "local"), default="synth")
    parser.add_argument("--postgres", default=PG_ADMIN, help="libpq string of a database to create one from")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)  # internal: one step, in a child
    args = parser.parse_args()
    if args.step:
        print(json.dumps(STEPS[args.step[0]](*args.step[1:])))
        return
    # This process only starts the others: a child's peak memory starts from its parent's.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        made = step("generate", str(args.rows), args.generator, args.format, tmp)
        source, reference_csv = root / f"rows.{args.format}", root / "rows.csv"
        size = source.stat().st_size / 1e6
        print(f"rows: {args.rows:,} ({made['generator']}), format {args.format}, {size:.1f} MB; {_machine()}")
        home = step("home", str(root / "sqlite"), f"sqlite:///{root / 'sqlite.db'}")["home"]
        raw = step("raw", str(reference_csv), str(root / "raw.db"))
        report("SQLite", step("palermo", str(source), home), raw)
        database = (
            {"skipped": "--no-postgres"} if args.no_postgres else step("create_postgres", args.postgres)
        )
        if "skipped" in database:
            print(f"PostgreSQL: skipped ({database['skipped']})")
            return
        try:
            home = step("home", str(root / "pg"), database["url"])["home"]
            raw = step("raw", str(reference_csv), database["url"])
            report("PostgreSQL", step("palermo", str(source), home), raw)
        finally:
            step("drop_postgres", args.postgres, database["name"])


def step(name: str, *args: str) -> dict[str, Any]:
    """Run one step in a fresh Python process; its result is the last line it prints (JSON)."""
    done = subprocess.run(
        [sys.executable, __file__, "--step", name, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load average {load:.1f} at the start (other work slows both figures)"


if __name__ == "__main__":
    main()
