"""Exchange-log speed: appends and verification through the service, each beside a raw rate.

The machine this runs on may be shared and noisy, so every figure is printed beside the raw
rate underneath it, measured in the same run just before it, and their ratio:

  * ``append``, one transaction per append (how envelopes are logged), beside raw SQLite doing
    the same three statements (read the head, insert, update the head) and a commit per row;
  * ``append_many`` in batches of 100 and 1,000 (one transaction each), beside raw SQLite doing
    one head read, one ``executemany`` insert, one head update and a commit per batch;
  * ``exchange_log.verify`` of N entries, beside raw SHA-256 of an entry-sized leaf and a raw
    SQLite read of the same rows (the floors of re-hashing and of reading them);
  * the first checkpoint (re-checks every entry) and one after 1,000 more entries.

Raw SQLite is the sqlite3 module with WAL and synchronous=NORMAL, as the node configures it
(also when ``--database-url`` runs the service on PostgreSQL). Append figures are the best of
``--rounds`` runs, each run right after its reference's.

    .venv/bin/python scripts/bench/log_speed.py [--entries 1000000] [--appends 5000]
        [--batched 20000] [--rounds 3] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.context import NodeContext, open_node
from node.keys import NodeKeys, save_keys
from node.services import exchange_log
from node.settings import render_settings
from node.storage.db import migrate
from protocol.translog import ZERO_HASH, CompactRange, LogEntry, merkle_root

T0 = 1767225600
BATCHES = (100, 1_000)
# A raw row's members after message_id, then its prev and leaf hash.
RAW_TAIL = ("ping", "ab" * 32, 2048, "accepted", "", "{}", "cd" * 32, "ef" * 32)
COLUMNS = "idx, time, kind, direction, peer, message_id, message_type, envelope_hash, size, outcome, code, detail, prev, leaf_hash"


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:>11,.0f} /s"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def show(label: str, rate: float, reference: str, reference_rate: float) -> None:
    """One figure, its reference from the same run, and their ratio."""
    print(
        f"{label:<36}{rate:>11,.0f} /s   beside {reference:<40}{reference_rate:>11,.0f} /s"
        f"   ({rate / reference_rate:.3f})"
    )


def sample_fields(i: int) -> dict[str, Any]:
    """append's arguments for a typical entry: an envelope, every tenth with a detail."""
    return {
        "time": T0 + i,
        "kind": "envelope",
        "direction": "in" if i % 2 else "out",
        "peer": "rou-anitp",
        "message_id": f"{i:032x}",
        "message_type": "psi.request",
        "envelope_hash": hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        "size": 2048,
        "outcome": "accepted" if i % 2 else "sent",
        "detail": {"set_size": i % 5000} if i % 10 == 0 else {},
    }


def make_node(
    root: Path, database_url: str | None, *, node_id: str = "bench-node", country: str = "NLD"
) -> NodeContext:
    """A fresh node home at ``root / node_id`` (keys without a passphrase, migrated), opened."""
    home = root / node_id
    home.mkdir()
    settings = render_settings(
        node_id=node_id,
        country=country,
        url=f"http://127.0.0.1:9/{node_id}",
        database_url=database_url,
        bind="127.0.0.1:0",
    )
    (home / "palermo.toml").write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(database_url or f"sqlite:///{home / 'palermo.db'}")
    return open_node(home)


def sha256_rate() -> float:
    """Raw SHA-256 of the leaf-hash input of a typical entry, per second."""
    entry = LogEntry(index=1, prev=ZERO_HASH, **sample_fields(1))
    message = b"\x00" + entry.canonical_bytes()
    n = 300_000
    return n / timed(lambda: [hashlib.sha256(message).digest() for _ in range(n)])


class RawSqlite:
    """The statements an append runs, through the sqlite3 module alone: the floor under the service."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(f"CREATE TABLE log_entries ({COLUMNS}, PRIMARY KEY (idx))")
        self.conn.execute("CREATE TABLE log_head (id INTEGER PRIMARY KEY, size, last_leaf_hash, compact)")
        self.conn.execute("INSERT INTO log_head VALUES (1, 0, '', '')")
        self.insert = f"INSERT INTO log_entries ({COLUMNS}) VALUES ({', '.join('?' * 14)})"
        self.next = 0

    def rows(self, n: int) -> list[tuple[Any, ...]]:
        start, self.next = self.next, self.next + n
        return [
            (i, T0, "envelope", "in", "rou-anitp", f"{i:032x}", *RAW_TAIL) for i in range(start, start + n)
        ]

    def transaction(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("SELECT size, last_leaf_hash, compact FROM log_head WHERE id = 1").fetchone()
        if len(rows) == 1:
            self.conn.execute(self.insert, rows[0])
        else:
            self.conn.executemany(self.insert, rows)
        self.conn.execute(
            "UPDATE log_head SET size = ?, last_leaf_hash = ?, compact = ? WHERE id = 1",
            (rows[-1][0] + 1, "ef" * 32, "ab" * 64),
        )
        self.conn.execute("COMMIT")

    def rate(self, n: int, batch: int) -> float:
        batches = [self.rows(batch) for _ in range(n // batch)]
        return n / timed(lambda: [self.transaction(rows) for rows in batches])


class ServiceAppends:
    """The same through the node: a transaction, then ``append`` or ``append_many`` in it."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.next = 0

    def fields(self, n: int) -> list[dict[str, Any]]:
        start, self.next = self.next, self.next + n
        return [sample_fields(i) for i in range(start, start + n)]

    def one_per_transaction(self, n: int) -> float:
        batch = self.fields(n)

        def run() -> None:
            for fields in batch:
                with self.node.db.transaction() as session:
                    exchange_log.append(session, **fields)

        return n / timed(run)

    def many(self, n: int, batch: int) -> float:
        batches = [self.fields(batch) for _ in range(n // batch)]

        def run() -> None:
            for entries in batches:
                with self.node.db.transaction() as session:
                    exchange_log.append_many(session, entries)

        return n / timed(run)


def bench_appends(raw: RawSqlite, service: ServiceAppends, appends: int, batched: int, rounds: int) -> None:
    """Each figure the best of ``rounds``, each round right after its reference's round."""
    cases: list[tuple[str, str, Callable[[], float], Callable[[], float]]] = [
        (
            "append, 1 transaction per append",
            "raw SQLite, 1 transaction per row",
            lambda: service.one_per_transaction(appends),
            lambda: raw.rate(appends, 1),
        )
    ]
    for batch in BATCHES:
        cases.append(
            (
                f"append_many, batches of {batch:,}",
                f"raw SQLite, 1 transaction per {batch:,} rows",
                functools.partial(service.many, batched, batch),
                functools.partial(raw.rate, batched, batch),
            )
        )
    for label, reference, figure, floor in cases:
        best = best_floor = 0.0
        for _ in range(rounds):
            best_floor = max(best_floor, floor())
            best = max(best, figure())
        show(label, best, reference, best_floor)


def fill(node: NodeContext, total: int, fields: Callable[[int], dict[str, Any]] = sample_fields) -> None:
    """Grow the log to ``total`` entries with ``append_many``, 10,000 a transaction; entry i is
    made of ``fields(i)``."""
    with node.db.transaction() as session:
        start = exchange_log._lock_head(session).size
    for first in range(start, total, 10_000):
        with node.db.transaction() as session:
            exchange_log.append_many(session, [fields(i) for i in range(first, min(first + 10_000, total))])


def raw_read_rate(node: NodeContext) -> float | None:
    """Rows per second of a raw sqlite3 read of the whole log (None on PostgreSQL)."""
    if not node.db.is_sqlite:
        return None
    conn = sqlite3.connect(node.db.url.removeprefix("sqlite:///"))
    try:
        cursor = conn.execute(f"SELECT {COLUMNS} FROM log_entries ORDER BY idx")
        start, rows = time.perf_counter(), 0
        while batch := cursor.fetchmany(20_000):
            rows += len(batch)
        return rows / (time.perf_counter() - start)
    finally:
        conn.close()


def bench_verify(node: NodeContext, total: int) -> None:
    print(f"filling the log to {total:,} entries with append_many ...", flush=True)
    fill(node, total)
    read = raw_read_rate(node)
    sha = sha256_rate()
    start = time.perf_counter()
    report = exchange_log.verify(node)
    seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"the bench log does not verify: {report.problems[:3]}")
    rate = report.entries / seconds
    print(f"verify {report.entries:,} entries: {seconds:.2f} s")
    show("verify", rate, "raw SHA-256 of a leaf", sha)
    if read is not None:
        show("verify", rate, "raw SQLite read of the same rows", read)
    print(
        f"first checkpoint (re-checks every entry)  {timed(lambda: exchange_log.checkpoint(node)):>10.2f} s"
    )
    fill(node, total + 1000)
    print(
        f"checkpoint after 1,000 more entries       {timed(lambda: exchange_log.checkpoint(node)):>10.3f} s"
    )


def bench_merkle() -> None:
    leaves = [os.urandom(32) for _ in range(1_000_000)]
    print(f"RFC 6962 root of 1,000,000 leaves         {timed(lambda: merkle_root(leaves)):>10.2f} s")
    extend = timed(lambda: CompactRange().extend(leaves))
    print(f"compact-range appends of 1,000,000 leaves {extend:>10.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size to verify (1,000,000)")
    parser.add_argument("--appends", type=int, default=5_000, help="appends, 1 per transaction (5,000)")
    parser.add_argument("--batched", type=int, default=20_000, help="entries per append_many run (20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per append figure, best kept (3)")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL for the service (default SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="palermo-log-bench-") as tmp:
        root = Path(tmp)
        print(f"raw SHA-256 of a leaf                     {sha256_rate():>11,.0f} /s")
        bench_merkle()
        raw = RawSqlite(root / "raw.db")
        node = make_node(root, args.database_url)
        try:
            empty = timed(lambda: [_read_head(node) for _ in range(args.appends)])
            print(f"node transaction reading the head only    {per_second(args.appends, empty)}")
            bench_appends(raw, ServiceAppends(node), args.appends, args.batched, args.rounds)
            bench_verify(node, args.entries)
        finally:
            node.close()
            raw.conn.close()


def _read_head(node: NodeContext) -> None:
    with node.db.transaction() as session:
        exchange_log._lock_head(session)


if __name__ == "__main__":
    main()
