"""Exchange-log speed: appends per second through the service, beside the raw rates underneath.

Measured in one run on one machine:
  * raw SHA-256 of an entry-sized message, and the RFC 6962 root of 1,000,000 leaves;
  * raw SQLite inserts of log-shaped rows (sqlite3 module, WAL, as the node configures it),
    one transaction per row and many rows per transaction;
  * ``exchange_log.append`` through the node's Database, one transaction per append (how
    envelopes are logged) and many appends per transaction, beside a node transaction that
    only reads the log head (the SQLAlchemy session cost every caller pays anyway);
  * ``exchange_log.verify`` and the first and an incremental ``checkpoint`` over N entries.

    .venv/bin/python scripts/bench/log_speed.py [--entries 1000000] [--appends 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.context import NodeContext, open_node
from node.keys import NodeKeys, save_keys
from node.services import exchange_log
from node.settings import render_settings
from node.storage.db import migrate
from protocol.translog import ZERO_HASH, CompactRange, LogEntry, merkle_root

T0 = 1767225600


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} /s"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sample_entry(i: int, prev: str) -> LogEntry:
    return LogEntry(
        index=i,
        time=T0 + i,
        kind="envelope",
        direction="in" if i % 2 else "out",
        peer="rou-anitp",
        message_id=f"{i:032x}",
        message_type="psi.request",
        envelope_hash=hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        size=2048,
        outcome="accepted" if i % 2 else "sent",
        detail={"set_size": i % 5000} if i % 10 == 0 else {},
        prev=prev,
    )


def make_node(root: Path, database_url: str | None) -> NodeContext:
    home = root / "home"
    home.mkdir()
    settings = render_settings(
        node_id="bench-node",
        country="NLD",
        url="http://127.0.0.1:9/",
        database_url=database_url,
        bind="127.0.0.1:0",
    )
    (home / "palermo.toml").write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(database_url or f"sqlite:///{home / 'palermo.db'}")
    return open_node(home)


def bench_hashing() -> None:
    message = b"\x00" + sample_entry(1, ZERO_HASH).canonical_bytes()
    n = 300_000
    seconds = timed(lambda: [hashlib.sha256(message).digest() for _ in range(n)])
    print(f"raw SHA-256 of a {len(message)}-byte leaf        {rate(n, seconds)}")
    leaves = [os.urandom(32) for _ in range(1_000_000)]
    print(f"RFC 6962 root of 1,000,000 leaves          {timed(lambda: merkle_root(leaves)):>10.2f} s")
    print(
        f"compact-range appends of 1,000,000 leaves  {timed(lambda: CompactRange().extend(leaves)):>10.2f} s"
    )


def bench_raw_sqlite(root: Path, n: int) -> tuple[float, float]:
    conn = sqlite3.connect(root / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    columns = "idx, time, kind, direction, peer, message_id, message_type, envelope_hash, size, outcome, code, detail, prev, leaf_hash"
    conn.execute(f"CREATE TABLE log_entries ({columns}, PRIMARY KEY (idx))")
    conn.execute("CREATE TABLE log_head (id INTEGER PRIMARY KEY, size, last_leaf_hash, compact)")
    conn.execute("INSERT INTO log_head VALUES (1, 0, '', '')")
    rows = [
        (
            i,
            T0,
            "envelope",
            "in",
            "rou-anitp",
            f"{i:032x}",
            "ping",
            "ab" * 32,
            2048,
            "accepted",
            "",
            "{}",
            "cd" * 32,
            "ef" * 32,
        )
        for i in range(2 * n)
    ]
    insert = f"INSERT INTO log_entries ({columns}) VALUES ({', '.join('?' * 14)})"

    def one_per_transaction() -> None:
        for row in rows[:n]:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("SELECT size, last_leaf_hash, compact FROM log_head WHERE id = 1").fetchone()
            conn.execute(insert, row)
            conn.execute(
                "UPDATE log_head SET size = ?, last_leaf_hash = ?, compact = ? WHERE id = 1",
                (row[0], "ef" * 32, ""),
            )
            conn.execute("COMMIT")

    def batched() -> None:
        conn.execute("BEGIN IMMEDIATE")
        for row in rows[n:]:
            conn.execute(insert, row)
        conn.execute("COMMIT")

    per_txn, batch = timed(one_per_transaction), timed(batched)
    conn.close()
    print(f"raw SQLite, 1 txn per row (select+insert+update)  {rate(n, per_txn)}")
    print(f"raw SQLite, inserts in one transaction     {rate(n, batch)}")
    return n / per_txn, n / batch


def bench_service(node: NodeContext, n: int) -> tuple[float, float]:
    def one(i: int) -> None:
        with node.db.transaction() as session:
            exchange_log.append(
                session, time=T0 + i, kind="envelope", direction="in", peer="rou-anitp", message_id=f"{i:032x}",
                message_type="ping", envelope_hash="ab" * 32, size=2048, outcome="accepted",
            )  # fmt: skip

    def batched() -> None:
        with node.db.transaction() as session:
            for i in range(n):
                exchange_log.append(
                    session, time=T0 + i, kind="envelope", peer="rou-anitp", outcome="accepted"
                )

    def empty() -> None:
        for _ in range(n):
            with node.db.transaction() as session:
                session.execute(exchange_log._SELECT_HEAD)

    floor = timed(empty)
    per_txn = timed(lambda: [one(i) for i in range(n)])
    batch = timed(batched)
    print(f"node transaction reading the head only     {rate(n, floor)}  (floor for 1 txn per append)")
    print(f"service append, 1 txn per append           {rate(n, per_txn)}")
    print(f"service append, all in one transaction     {rate(n, batch)}")
    return n / per_txn, n / batch


def bulk_fill(node: NodeContext, total: int) -> None:
    """Grow the log to ``total`` entries with rows exactly as append() writes them, but in bulk."""
    head = exchange_log.recent_entries(node, limit=1)
    start = head[0]["index"] + 1 if head else 0
    prev = head[0]["leaf_hash"] if head else ZERO_HASH
    with node.db.transaction() as session:
        compact = exchange_log._lock_head(session).compact
    batch: list[dict[str, object]] = []
    for i in range(start, total):
        entry = sample_entry(i, prev)
        leaf = entry.leaf_hash()
        compact, prev = compact.append(leaf), leaf.hex()
        row = entry.to_dict()
        row.update(idx=row.pop("index"), detail=entry.detail_json.decode(), leaf_hash=prev)
        batch.append(row)
        if len(batch) == 20_000 or i == total - 1:
            with node.db.transaction() as session:
                session.execute(exchange_log._INSERT_ENTRY, batch)
                values = {"new_size": i + 1, "new_last": prev, "new_compact": compact.to_hex()}
                session.execute(exchange_log._UPDATE_HEAD, values)
            batch = []


def bench_verify(node: NodeContext, total: int) -> None:
    print(f"filling the log to {total:,} entries ...", flush=True)
    bulk_fill(node, total)
    start = time.perf_counter()
    report = exchange_log.verify(node)
    seconds = time.perf_counter() - start
    assert report.ok, report.problems[:3]
    print(f"verify {total:,} entries                    {seconds:>10.2f} s  ({rate(total, seconds).strip()})")
    print(
        f"first checkpoint (re-checks every entry)   {timed(lambda: exchange_log.checkpoint(node)):>10.2f} s"
    )
    bulk_fill(node, total + 1000)
    print(
        f"checkpoint after 1,000 more entries        {timed(lambda: exchange_log.checkpoint(node)):>10.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--entries", type=int, default=100_000, help="log size for verification (default 100,000)"
    )
    parser.add_argument(
        "--appends", type=int, default=5_000, help="appends per append measurement (default 5,000)"
    )
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL for the service figures (default SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="palermo-log-bench-") as tmp:
        root = Path(tmp)
        bench_hashing()
        raw_txn, raw_batch = bench_raw_sqlite(root, args.appends)
        node = make_node(root, args.database_url)
        try:
            svc_txn, svc_batch = bench_service(node, args.appends)
            print(f"ratio service/raw, 1 txn per append        {svc_txn / raw_txn:>12.2f}")
            print(f"ratio service/raw, one transaction         {svc_batch / raw_batch:>12.2f}")
            bench_verify(node, args.entries)
        finally:
            node.close()


if __name__ == "__main__":
    main()
