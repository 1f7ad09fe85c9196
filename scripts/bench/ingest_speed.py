"""Ingest speed: rows per second that ``palermo ingest`` loads into a fresh SQLite node, beside the raw
rate of csv.DictReader + executemany of the same rows into a bare SQLite table, measured in the same run.

    .venv/bin/python scripts/bench/ingest_speed.py [--rows 50000] [--format csv] [--generator synth|local]

The rows come from node.services.synth (realistic HTCDS rows) when it is importable, else from a
small local generator. Generation time is not counted. Prints one figure per line and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.context import open_node
from node.keys import NodeKeys, save_keys
from node.services.ingest import ingest_file
from node.settings import SETTINGS_FILE, render_settings
from node.storage.db import migrate

COUNTRIES = ("ROU", "MDA", "UKR", "NGA", "VNM", "BGR", "NLD", "DEU", "ITA", "ESP")
EXPLOITATION = ("ForcedLabour", "SexualExploitation", "ForcedCriminality", "ForcedBegging", "Servitude")
CONTROL = ("DebtBondage", "WithholdsDocuments", "PhysicalThreats", "RestrictsMovement", "FalsePromises")


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


def make_node_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'palermo.db'}"
    settings = render_settings(
        node_id="bench", country="ROU", url="http://127.0.0.1:8400", database_url=url, bind="127.0.0.1:8400"
    )
    (home / SETTINGS_FILE).write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(url)
    return home


def raw_rate(path: Path, db: Path) -> float:
    """csv.DictReader + executemany into one bare table of TEXT columns, one transaction."""
    start = time.perf_counter()
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        connection.execute(f"CREATE TABLE raw ({', '.join(f'{c} TEXT' for c in columns)})")
        statement = f"INSERT INTO raw VALUES ({', '.join(f':{c}' for c in columns)})"
        count = 0
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 2000:
                connection.executemany(statement, batch)
                count, batch = count + len(batch), []
        connection.executemany(statement, batch)
        count += len(batch)
    connection.commit()
    connection.close()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--format", choices=("csv", "jsonl", "xlsx"), default="csv")
    parser.add_argument("--generator", choices=("synth", "local"), default="synth")
    args = parser.parse_args()
    rows = synth_rows(args.rows) if args.generator == "synth" else None
    generator = "node.services.synth" if rows is not None else "local generator"
    rows = rows or local_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / f"rows.{args.format}"
        write_file(rows, source, args.format)
        write_csv(rows, root / "rows.csv")
        reference = raw_rate(root / "rows.csv", root / "raw.db")
        node = open_node(make_node_home(root))
        try:
            start, cpu = time.perf_counter(), time.process_time()
            report = ingest_file(node, source)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            node.close()
        print(f"rows: {len(rows):,} ({generator}), format {args.format}")
        print(
            f"palermo ingest (check + load, one transaction): {report.rows_loaded / elapsed:,.0f} rows/s "
            f"({elapsed:.2f} s wall, {cpu:.2f} s CPU in this process)"
        )
        print(f"reference csv.DictReader + executemany into a bare SQLite table: {reference:,.0f} rows/s")
        print(f"ratio palermo / reference: {report.rows_loaded / elapsed / reference:.2f}")


if __name__ == "__main__":
    main()
