"""The exchange log service on SQLite and PostgreSQL: append, checkpoint, verify, tamper, concurrency, CLI.

Tampering is done the way an insider with database access would: SQL on the tables. Each case
asserts the exact list of problems ``verify`` reports.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from node.cli import cli
from node.context import NodeContext, open_node
from node.keys import NodeKeys, save_keys
from node.services import exchange_log
from node.services.exchange_log import LogIntegrityError
from node.settings import render_settings
from node.storage.db import migrate
from protocol.errors import MalformedError
from protocol.translog import LogEntry, merkle_root

REPO = Path(__file__).resolve().parents[2]
T0 = 1767225600
NODE_ID = "nld-police"


@pytest.fixture
def home(tmp_path: Path, database_url: str | None) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    settings = render_settings(
        node_id=NODE_ID,
        country="NLD",
        url="http://127.0.0.1:9/",
        database_url=database_url,
        bind="127.0.0.1:0",
    )
    (home / "palermo.toml").write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(database_url or f"sqlite:///{home / 'palermo.db'}")
    return home


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def node(home: Path) -> Iterator[NodeContext]:
    ctx = open_node(home)
    ctx.clock = Clock()
    yield ctx
    ctx.close()


def append_one(node: NodeContext, i: int) -> LogEntry:
    with node.db.transaction() as session:
        return exchange_log.append(
            session,
            time=T0 + i,
            kind="envelope",
            direction="out" if i % 2 else "in",
            peer="rou-anitp",
            message_id=f"{i:032x}",
            message_type="ping",
            envelope_hash=f"{i:064x}",
            size=100 + i,
            outcome="sent" if i % 2 else "accepted",
            detail={"n": i} if i % 3 == 0 else None,
        )


def fill(node: NodeContext, start: int, stop: int) -> list[LogEntry]:
    return [append_one(node, i) for i in range(start, stop)]


def fields_of(i: int) -> dict[str, Any]:
    """append's arguments for entry ``i``, as append_one gives them."""
    return {
        "time": T0 + i,
        "kind": "envelope",
        "direction": "out" if i % 2 else "in",
        "peer": "rou-anitp",
        "message_id": f"{i:032x}",
        "message_type": "ping",
        "envelope_hash": f"{i:064x}",
        "size": 100 + i,
        "outcome": "sent" if i % 2 else "accepted",
        "detail": {"n": i} if i % 3 == 0 else None,
    }


def fill_many(node: NodeContext, start: int, stop: int, batch: int = 1000) -> list[LogEntry]:
    out: list[LogEntry] = []
    for first in range(start, stop, batch):
        with node.db.transaction() as session:
            out += exchange_log.append_many(
                session, [fields_of(i) for i in range(first, min(first + batch, stop))]
            )
    return out


def problems(node: NodeContext) -> list[str]:
    return [p.message for p in exchange_log.verify(node).problems]


def sql(node: NodeContext, statement: str, **params: Any) -> None:
    with node.db.transaction() as session:
        session.execute(text(statement), params)


# --- the intact log --------------------------------------------------------------------------------


def test_append_checkpoint_and_verify(node: NodeContext) -> None:
    entries = fill(node, 0, 20)
    first = exchange_log.checkpoint(node)
    entries += fill(node, 20, 50)
    second = exchange_log.checkpoint(node)
    assert [e.index for e in entries] == list(range(50))
    assert all(b.prev == a.leaf_hash().hex() for a, b in itertools.pairwise(entries))
    assert (first.size, first.root) == (20, merkle_root([e.leaf_hash() for e in entries[:20]]))
    assert (second.size, second.root) == (50, merkle_root([e.leaf_hash() for e in entries]))
    assert second.note.startswith(f"palermo/{NODE_ID}/exchange-log\n50\n".encode())
    again = exchange_log.checkpoint(node)  # nothing changed: no new checkpoint
    assert again == second and again.note == second.note
    report = exchange_log.verify(node)
    assert report.ok and report.problems == ()
    assert report.summary() == "log OK: 50 entries, 2 checkpoints, last checkpoint at size 50"
    recent = exchange_log.recent_entries(node, limit=2)
    assert [e["index"] for e in recent] == [49, 48]
    assert recent[0]["detail"] == {} and recent[1]["detail"] == {"n": 48}
    assert recent[0]["leaf_hash"] == entries[49].leaf_hash().hex()


def test_an_empty_log_verifies_and_can_be_checkpointed(node: NodeContext) -> None:
    assert exchange_log.verify(node).summary() == "log OK: 0 entries, 0 checkpoints, last checkpoint none"
    assert exchange_log.checkpoint_if_due(node) is None
    empty = exchange_log.checkpoint(node)
    assert empty.size == 0 and empty.root.hex().startswith("e3b0c442")
    assert exchange_log.verify(node).ok


def test_an_entry_commits_or_rolls_back_with_the_callers_transaction(node: NodeContext) -> None:
    fill(node, 0, 3)
    with pytest.raises(RuntimeError), node.db.transaction() as session:
        exchange_log.append(session, time=T0, kind="envelope", outcome="accepted")
        raise RuntimeError("the state change failed")
    assert append_one(node, 3).index == 3
    assert exchange_log.verify(node).entries == 4 and exchange_log.verify(node).ok


def test_append_many_writes_what_appends_one_by_one_write(node: NodeContext) -> None:
    one_by_one = fill(node, 0, 10)
    rows_one_by_one = exchange_log.recent_entries(node, limit=10)
    sql(node, "DELETE FROM log_entries")
    sql(node, "DELETE FROM log_head")
    first = fill_many(node, 0, 3)
    assert append_one(node, 3) == one_by_one[3]  # append carries on after append_many, and back
    rest = fill_many(node, 4, 10, batch=4)
    assert [*first, one_by_one[3], *rest] == one_by_one
    assert exchange_log.recent_entries(node, limit=10) == rows_one_by_one
    signed = exchange_log.checkpoint(node)
    assert signed.root == merkle_root([e.leaf_hash() for e in one_by_one])
    assert exchange_log.verify(node).ok


def test_append_many_of_nothing_writes_nothing(node: NodeContext) -> None:
    fill(node, 0, 2)
    with node.db.transaction() as session:
        assert exchange_log.append_many(session, []) == []
    assert exchange_log.verify(node).entries == 2 and exchange_log.verify(node).ok


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"kind": "Envelope"},
            "entries[2]: entry.kind: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)",
        ),
        (
            {"detail": {"n": 1.5}},
            "entries[2]: entry.detail.n: expected a string, integer, boolean or null (detail is flat)",
        ),
        ({"prev": "ab" * 32}, "entries[2]: log entry: unknown field(s) prev"),
        ({"index": 7}, "entries[2]: log entry: unknown field(s) index"),
        (
            {"outcome": None},
            "entries[2]: entry.outcome: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)",
        ),
    ],
)
def test_append_many_refuses_an_invalid_entry_and_the_transaction_rolls_back(
    node: NodeContext, bad: dict[str, Any], message: str
) -> None:
    fill(node, 0, 3)
    entries = [fields_of(i) for i in range(3, 7)]
    entries[2] = {**entries[2], **bad}
    with pytest.raises(MalformedError) as info, node.db.transaction() as session:
        exchange_log.append(session, **fields_of(3))  # the caller's own change in the same transaction
        exchange_log.append_many(session, entries)
    assert (info.value.code, info.value.message) == ("malformed_log_entry", message)
    report = exchange_log.verify(node)
    assert report.ok and report.entries == 3  # nothing of the transaction was kept


def test_append_many_refuses_missing_fields_and_non_mappings(node: NodeContext) -> None:
    missing = r"^entries\[0\]: log entry: missing field\(s\) outcome, time$"
    with pytest.raises(MalformedError, match=missing), node.db.transaction() as session:
        exchange_log.append_many(session, [{"kind": "envelope"}])
    not_a_mapping = r"^entries\[1\]: log entry: expected a mapping of append's arguments, got list$"
    with pytest.raises(MalformedError, match=not_a_mapping), node.db.transaction() as session:
        pairs: Any = [("kind", "envelope")]  # a list where a mapping belongs, on purpose
        exchange_log.append_many(session, [fields_of(0), pairs])
    assert exchange_log.verify(node).entries == 0


def test_checkpoint_if_due_waits_for_growth_and_the_interval(node: NodeContext) -> None:
    clock = node.clock
    assert isinstance(clock, Clock)
    fill(node, 0, 5)
    assert exchange_log.checkpoint_if_due(node) is not None
    assert exchange_log.checkpoint_if_due(node) is None  # nothing new
    fill(node, 5, 6)
    assert exchange_log.checkpoint_if_due(node) is None  # too soon
    clock.now += node.settings.checkpoint_interval_seconds
    signed = exchange_log.checkpoint_if_due(node)
    assert signed is not None and signed.size == 6


def test_verify_reads_a_snapshot_that_does_not_block_appends(node: NodeContext) -> None:
    fill(node, 0, 3)
    with exchange_log._snapshot(node.db) as conn:
        assert conn.execute(text("SELECT count(*) FROM log_entries")).scalar() == 3
        append_one(node, 3)  # would wait for the reader if the snapshot held a write lock
        assert conn.execute(text("SELECT count(*) FROM log_entries")).scalar() == 3
    assert exchange_log.verify(node).entries == 4


# --- tampering in the database ---------------------------------------------------------------------

CP20 = "checkpoint at size 20: root does not match entries"
CP40 = "checkpoint at size 40: root does not match entries"


@pytest.fixture
def log40(node: NodeContext) -> NodeContext:
    fill(node, 0, 20)
    exchange_log.checkpoint(node)
    fill(node, 20, 40)
    exchange_log.checkpoint(node)
    assert exchange_log.verify(node).ok
    return node


def _swap_rows(node: NodeContext, a: int, b: int) -> None:
    """Swap every column but the index of two entries (moves the entries, keeps the index column)."""
    with node.db.transaction() as session:
        rows = {
            r.idx: r._asdict()
            for r in session.execute(
                text("SELECT * FROM log_entries WHERE idx IN (:a, :b)"), {"a": a, "b": b}
            )
        }
        for target, source in ((a, b), (b, a)):
            values = {k: v for k, v in rows[source].items() if k != "idx"}
            assignments = ", ".join(f"{k} = :{k}" for k in values)
            session.execute(
                text(f"UPDATE log_entries SET {assignments} WHERE idx = :idx"), {**values, "idx": target}
            )


def _insert_forged_at(node: NodeContext, index: int) -> None:
    """Shift entries up by one and put a well-formed forged entry (bogus prev) in the gap."""
    forged = LogEntry(index=index, time=T0, kind="envelope", outcome="accepted", prev="ab" * 32)
    sql(node, "UPDATE log_entries SET idx = idx + 1000 WHERE idx >= :i", i=index)
    sql(node, "UPDATE log_entries SET idx = idx - 999 WHERE idx >= 1000")
    columns = {**forged.to_dict(), "detail": "{}", "leaf_hash": forged.leaf_hash().hex()}
    columns["idx"] = columns.pop("index")
    names = ", ".join(columns)
    sql(node, f"INSERT INTO log_entries ({names}) VALUES ({', '.join(':' + k for k in columns)})", **columns)


TAMPERING: list[tuple[str, Callable[[NodeContext], None], list[str]]] = [
    (
        "update-column",
        lambda n: sql(n, "UPDATE log_entries SET peer = 'ukr-npu' WHERE idx = 17"),
        ["entry 17: contents changed (leaf hash differs)", CP20, CP40],
    ),
    (
        "update-leaf-hash",
        lambda n: sql(n, "UPDATE log_entries SET leaf_hash = :h WHERE idx = 17", h="cd" * 32),
        [
            "entry 17: contents changed (leaf hash differs)",
            "entry 18: inserted or reordered (prev does not match entry 17)",
        ],
    ),
    (
        "delete-row",
        lambda n: sql(n, "DELETE FROM log_entries WHERE idx = 18"),
        ["entry 18: missing (index jumps from 17 to 19)", CP20, CP40 + " (the log holds only 39)"],
    ),
    (
        "delete-last-row",
        lambda n: sql(n, "DELETE FROM log_entries WHERE idx = 39"),
        [CP40 + " (the log holds only 39)", "log head: size 40 but the entries end at index 38"],
    ),
    (
        "insert-row-at-end",
        lambda n: sql(
            n,
            "INSERT INTO log_entries SELECT 40, time, kind, direction, peer, message_id, message_type, "
            "envelope_hash, size, outcome, code, detail, prev, leaf_hash FROM log_entries WHERE idx = 39",
        ),
        [
            "entry 40: contents changed (leaf hash differs)",
            "entry 40: inserted or reordered (prev does not match entry 39)",
            "log head: size 40 but the entries end at index 40",
        ],
    ),
    (
        "insert-row-in-the-middle",
        lambda n: _insert_forged_at(n, 12),
        [
            "entry 12: inserted or reordered (prev does not match entry 11)",
            "entry 13: contents changed (leaf hash differs)",
            "entry 13: inserted or reordered (prev does not match entry 12)",
        ]
        + [f"entry {i}: contents changed (leaf hash differs)" for i in range(14, 20)]
        + [CP20]
        + [f"entry {i}: contents changed (leaf hash differs)" for i in range(20, 40)]
        + [CP40]
        + [
            "entry 40: contents changed (leaf hash differs)",
            "log head: size 40 but the entries end at index 40",
        ],
    ),
    (
        "swap-two-rows",
        lambda n: _swap_rows(n, 5, 9),
        [
            "entry 5: contents changed (leaf hash differs)",
            "entry 5: inserted or reordered (prev does not match entry 4)",
            "entry 6: inserted or reordered (prev does not match entry 5)",
            "entry 9: contents changed (leaf hash differs)",
            "entry 9: inserted or reordered (prev does not match entry 8)",
            "entry 10: inserted or reordered (prev does not match entry 9)",
            CP20,
            CP40,
        ],
    ),
    (
        "reformat-detail",
        lambda n: sql(n, "UPDATE log_entries SET detail = '{\"n\": 9}' WHERE idx = 9"),
        [
            "entry 9: contents changed (stored fields are not an entry: detail is not canonical JSON)",
            CP20,
            CP40,
        ],
    ),
    (
        "forge-checkpoint-size",
        lambda n: sql(
            n,
            "UPDATE log_checkpoints SET note = replace(note, :a, :b) WHERE size = 40",
            a="\n40\n",
            b="\n41\n",
        ),
        ["checkpoint at size 40: bad signature"],
    ),
    (
        "change-checkpoint-root-column",
        lambda n: sql(n, "UPDATE log_checkpoints SET root = :r WHERE size = 40", r="ef" * 32),
        ["checkpoint at size 40: stored root differs from its note"],
    ),
    (
        "delete-checkpoint-note-signature",
        lambda n: sql(
            n,
            "UPDATE log_checkpoints SET note = substr(note, 1, length(note) - 20) || :t WHERE size = 20",
            t="\n",
        ),
        ["checkpoint at size 20: malformed note (note signature: not valid base64)"],
    ),
    (
        "grow-the-head",
        lambda n: sql(n, "UPDATE log_head SET size = 41"),
        ["log head: size 41 but the entries end at index 39"],
    ),
    (
        "change-head-merkle-state",
        lambda n: sql(
            n, "UPDATE log_head SET compact = :c", c="ab" * 32 + "cd" * 32
        ),  # 40 = 32 + 8: two roots
        ["log head: Merkle state does not match the entries"],
    ),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t, e) for _, t, e in TAMPERING], ids=[n for n, _, _ in TAMPERING]
)
def test_tampering_is_named_exactly(
    log40: NodeContext, tamper: Callable[[NodeContext], None], expected: list[str]
) -> None:
    tamper(log40)
    report = exchange_log.verify(log40)
    assert [p.message for p in report.problems] == expected
    assert not report.ok and report.problem_count == len(expected)


def test_checkpoint_refuses_to_sign_over_a_damaged_log(log40: NodeContext) -> None:
    fill(log40, 40, 45)
    sql(log40, "UPDATE log_entries SET size = 1 WHERE idx = 42")
    with pytest.raises(
        LogIntegrityError,
        match=r"^refusing to sign a checkpoint: entry 42: contents changed \(leaf hash differs\)$",
    ):
        exchange_log.checkpoint(log40)
    assert exchange_log.verify(log40).last_checkpoint_size == 40  # nothing was signed


def test_checkpoint_never_signs_a_second_root_for_a_size(log40: NodeContext) -> None:
    sql(log40, "UPDATE log_head SET compact = :c", c="ab" * 32 * 2)  # size 40 = 32 + 8: two subtree roots
    with pytest.raises(LogIntegrityError, match="does not extend the checkpoint at size 40"):
        exchange_log.checkpoint(log40)


def test_checkpoint_refuses_a_head_that_does_not_extend_the_last_checkpoint(log40: NodeContext) -> None:
    fill(log40, 40, 42)
    sql(log40, "UPDATE log_head SET compact = :c", c="ab" * 32 * 3)  # size 42 = 32 + 8 + 2
    with pytest.raises(LogIntegrityError, match="the log head does not match the entries"):
        exchange_log.checkpoint(log40)


@pytest.fixture
def log20k(node: NodeContext) -> NodeContext:
    fill_many(node, 0, 10_000, batch=5_000)
    exchange_log.checkpoint(node)
    fill_many(node, 10_000, 20_000, batch=5_000)
    exchange_log.checkpoint(node)
    assert exchange_log.verify(node).ok
    return node


CP20K = "checkpoint at size 20000: root does not match entries"

LARGE_TAMPERING: list[tuple[str, Callable[[NodeContext], None], list[str]]] = [
    (
        "update-column",
        lambda n: sql(n, "UPDATE log_entries SET peer = 'ukr-npu' WHERE idx = 12345"),
        ["entry 12345: contents changed (leaf hash differs)", CP20K],
    ),
    (
        "update-in-the-first-checkpoint",
        lambda n: sql(n, "UPDATE log_entries SET size = size + 1 WHERE idx = 9999"),
        [
            "entry 9999: contents changed (leaf hash differs)",
            "checkpoint at size 10000: root does not match entries",
            CP20K,
        ],
    ),
    (
        "reformat-detail",
        lambda n: sql(n, "UPDATE log_entries SET detail = '{\"n\": 15000}' WHERE idx = 15000"),
        [
            "entry 15000: contents changed (stored fields are not an entry: detail is not canonical JSON)",
            CP20K,
        ],
    ),
    (
        "delete-row",
        lambda n: sql(n, "DELETE FROM log_entries WHERE idx = 19998"),
        ["entry 19998: missing (index jumps from 19997 to 19999)", CP20K + " (the log holds only 19999)"],
    ),
    (
        "update-leaf-hash",
        lambda n: sql(n, "UPDATE log_entries SET leaf_hash = :h WHERE idx = 123", h="cd" * 32),
        [
            "entry 123: contents changed (leaf hash differs)",
            "entry 124: inserted or reordered (prev does not match entry 123)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t, e) for _, t, e in LARGE_TAMPERING], ids=[n for n, _, _ in LARGE_TAMPERING]
)
def test_tampering_in_a_large_log_is_named_exactly(
    log20k: NodeContext, tamper: Callable[[NodeContext], None], expected: list[str]
) -> None:
    tamper(log20k)
    report = exchange_log.verify(log20k)
    assert [p.message for p in report.problems] == expected
    assert report.problem_count == len(expected)


# --- concurrency -----------------------------------------------------------------------------------


def _assert_one_chain(node: NodeContext, total: int) -> None:
    report = exchange_log.verify(node)
    assert report.problems == () and report.entries == total


def test_concurrent_appends_from_threads_never_fork_the_chain(node: NodeContext) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            fill(node, offset, offset + 40)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    def checkpointer() -> None:
        try:
            for _ in range(10):
                exchange_log.checkpoint(node)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i * 1000,)) for i in range(4)]
    threads.append(threading.Thread(target=checkpointer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    exchange_log.checkpoint(node)
    _assert_one_chain(node, 160)


def test_concurrent_append_many_and_appends_never_fork_the_chain(node: NodeContext) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for first in range(offset, offset + 200, 50):
                fill_many(node, first, first + 50, batch=25)
                fill(node, first + 1000, first + 1005)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i * 10_000,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    exchange_log.checkpoint(node)
    _assert_one_chain(node, 3 * (200 + 4 * 5))


WORKER = """
import sys
from pathlib import Path
from node.context import open_node
from node.services import exchange_log
node = open_node(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    with node.db.transaction() as session:
        exchange_log.append(session, time=i, kind="envelope", peer="rou-anitp", outcome="accepted", detail={"pid": int(sys.argv[3])})
node.close()
"""


def test_concurrent_appends_from_processes_never_fork_the_chain(node: NodeContext, home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home), "40", str(i)], env=env, cwd=REPO, stderr=subprocess.PIPE
        )
        for i in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    exchange_log.checkpoint(node)
    _assert_one_chain(node, 120)


# --- the CLI ---------------------------------------------------------------------------------------


def test_cli_verify_checkpoint_and_log(log40: NodeContext, home: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["--home", str(home), "audit", "verify"])
    assert (
        ok.exit_code == 0 and ok.output == "log OK: 40 entries, 2 checkpoints, last checkpoint at size 40\n"
    )
    fill(log40, 40, 41)
    signed = runner.invoke(cli, ["--home", str(home), "audit", "checkpoint", "--json"])
    assert signed.exit_code == 0 and json.loads(signed.output)["size"] == 41
    listed = runner.invoke(cli, ["--home", str(home), "audit", "log", "--limit", "3", "--json"])
    assert [e["index"] for e in json.loads(listed.output)["entries"]] == [40, 39, 38]
    assert "envelope" in runner.invoke(cli, ["--home", str(home), "audit", "log"]).output

    sql(log40, "UPDATE log_entries SET outcome = 'refused' WHERE idx = 17")
    bad = runner.invoke(cli, ["--home", str(home), "audit", "verify"])
    assert bad.exit_code == 1
    assert bad.output.splitlines() == [
        "log has 4 problem(s): 41 entries, 3 checkpoints",
        "  entry 17: contents changed (leaf hash differs)",
        f"  {CP20}",
        f"  {CP40}",
        "  checkpoint at size 41: root does not match entries",
    ]
    as_json = runner.invoke(cli, ["--home", str(home), "audit", "verify", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.output)["problems"][0] == {
        "subject": "entry",
        "position": 17,
        "message": "entry 17: contents changed (leaf hash differs)",
    }
    fill(log40, 41, 43)
    sql(log40, "UPDATE log_entries SET peer = '' WHERE idx = 42")
    refused = runner.invoke(cli, ["--home", str(home), "audit", "checkpoint"])
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: refusing to sign a checkpoint: entry 42: contents changed (leaf hash differs) [log_integrity]\n"
    )
