"""One measured step of audit_speed.py, run in a fresh process so that its peak memory is its own.

    .venv/bin/python scripts/bench/audit_measure.py STEP ARG...

prints one JSON object: the step's figures (seconds, sizes), what the step found, and the
process's peak resident size (VmHWM, procs.py) after its imports (``baseline_kib``) and at the end
(``peak_kib``). Not ``ru_maxrss`` (getrusage or wait4): Linux keeps in it the high-water mark of
the image before exec, i.e. the forking parent's size. Steps:

  proof HOME inclusion INDEX SIZE | proof HOME consistency OLD NEW
        the node's witness.inclusion / witness.consistency, first call after start and warm,
        verifying the answer, and the raw floors under them (leaf-hash read, SHA-256 rates)
  export HOME OUT               the node's export_bundle
  raw-export DB OUT ENTRIES     raw sqlite3 read of the rows, json.dumps, gzip -6, write, fsync
  verify BUNDLE                 protocol.translog.audit.verify_bundle
  raw-verify BUNDLE             raw gunzip, json.loads of every line, SHA-256 of every line
  reconcile BUNDLE_A BUNDLE_B   protocol.translog.reconcile.reconcile
  raw-reconcile BUNDLE_A BUNDLE_B   raw gunzip + json.loads of both, envelopes paired in dicts
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import sqlite3
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import tree_peak_kib

from protocol.canonical import b64decode
from protocol.translog import (
    SubtreeCache,
    log_origin,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from protocol.translog.bundle import CHUNK_BYTES, read_lines

WARM_CALLS = 2
VERIFY_CALLS = 20_000
NODE_HASH_INPUT = b"\x01" + bytes(64)  # what one Merkle node hash hashes: 0x01 || left || right


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sha256_seconds(messages: int) -> float:
    """Seconds that ``messages`` raw SHA-256 of 65 bytes take (from a 200,000-hash run)."""
    n = 200_000
    seconds, _ = timed(lambda: [hashlib.sha256(NODE_HASH_INPUT).digest() for _ in range(n)])
    return seconds / n * messages


def leaf_hashes_raw(db: Path, size: int) -> list[bytes]:
    """The first ``size`` stored leaf hashes, through sqlite3 alone."""
    conn = sqlite3.connect(db)
    try:
        query = "SELECT leaf_hash FROM log_entries WHERE idx < ? ORDER BY idx"
        return [bytes.fromhex(h) for (h,) in conn.execute(query, (size,))]
    finally:
        conn.close()


def proof(home: str, kind: str, first: str, second: str) -> dict[str, Any]:
    """A proof through the node's service, first call after start and warm, then verified."""
    from node.context import open_node
    from node.services import witness

    a, b = int(first), int(second)
    opened, node = timed(lambda: open_node(Path(home)))
    service = witness.inclusion if kind == "inclusion" else witness.consistency
    cold, answer = timed(lambda: service(node, a, b))
    warm = min(timed(lambda: service(node, a, b))[0] for _ in range(WARM_CALLS))
    hashes = [b64decode(h, what="proof[]", length=32) for h in answer["proof"]]
    verify, verify_hashes = _verifier(node, kind, answer, hashes, a, b)
    verify()  # raises ProofError unless the answer verifies
    one_verify = timed(lambda: [verify() for _ in range(VERIFY_CALLS)])[0] / VERIFY_CALLS
    floors = _proof_floors(Path(node.db.url.removeprefix("sqlite:///")), kind, a, b, hashes)
    node.close()
    return {
        "open_seconds": opened,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "proof_hashes": len(hashes),
        "verify_seconds": one_verify,
        "verify_floor_seconds": sha256_seconds(verify_hashes),
        "verify_floor_hashes": verify_hashes,
        **floors,
    }


def _proof_floors(database: Path, kind: str, a: int, b: int, hashes: list[bytes]) -> dict[str, float]:
    """What a proof from the leaves of the tree of size ``b`` costs at least, and from a SubtreeCache."""
    read, leaves = timed(lambda: leaf_hashes_raw(database, b))
    cache = SubtreeCache(leaves)
    prove = cache.inclusion_proof if kind == "inclusion" else cache.consistency_proof
    cache_first, cached_proof = timed(lambda: prove(a, b))
    assert cached_proof == hashes, "SubtreeCache disagrees with the service"
    return {
        "raw_leaf_read_seconds": read,
        "raw_tree_hash_seconds": sha256_seconds(b - 1),
        "subtree_cache_first_seconds": cache_first,
        "subtree_cache_warm_seconds": timed(lambda: prove(a, b))[0],
    }


def _verifier(
    node: Any, kind: str, answer: dict[str, Any], hashes: list[bytes], a: int, b: int
) -> tuple[Callable[[], None], int]:
    """What an auditor runs on the answer, and the SHA-256 it needs at least."""
    origin, key = log_origin(node.node_id), node.keys.log.verify_key

    def root(note: str) -> bytes:
        return verify_checkpoint(note.encode(), origin=origin, public_key=key).root

    if kind == "inclusion":
        leaf, new_root = bytes.fromhex(answer["leaf_hash"]), root(answer["checkpoint"])
        return (lambda: verify_inclusion(leaf, a, b, hashes, new_root)), len(hashes)
    old_root, new_root = root(answer["old_checkpoint"]), root(answer["new_checkpoint"])
    # Both roots are recomputed along the path: up to two hashes per proof hash.
    return (lambda: verify_consistency(a, b, old_root, new_root, hashes)), 2 * len(hashes)


def export(home: str, out: str) -> dict[str, Any]:
    from node.context import open_node
    from node.services.audit_bundle import export_bundle

    node = open_node(Path(home))
    seconds, result = timed(lambda: export_bundle(node, Path(out)))
    node.close()
    return {
        "seconds": seconds,
        "bytes": result["bytes"],
        "entries": result["entries"],
        "checkpoint_refused": result["checkpoint_refused"],
    }


ROW_KEYS = ("index", "time", "kind", "direction", "peer", "message_id", "message_type", "envelope_hash")
ROW_KEYS += ("size", "outcome", "code", "detail", "prev", "leaf_hash")


class Phases:
    """Seconds spent in each named phase: ``with phases("read"): ...``."""

    def __init__(self, *names: str) -> None:
        self.seconds = dict.fromkeys(names, 0.0)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] += time.perf_counter() - start


def raw_export(db: str, out: str, entries: str) -> dict[str, Any]:
    """The floor under export_bundle: the same rows as JSON lines, gzip -6, to a file, phase by phase."""
    phase = Phases("read", "encode", "gzip", "write")
    conn = sqlite3.connect(db)
    cursor = conn.execute(f"SELECT {', '.join(('idx', *ROW_KEYS[1:]))} FROM log_entries ORDER BY idx")
    deflater, size, lines = zlib.compressobj(6, zlib.DEFLATED, 31), 0, 0
    with open(out, "wb") as f:
        while True:
            with phase("read"):
                rows = cursor.fetchmany(20_000)
            with phase("encode"):
                data = b"".join(map(_raw_line, rows))
            with phase("gzip"):
                chunk = deflater.compress(data) if rows else deflater.flush()
            with phase("write"):
                f.write(chunk)
                if not rows:
                    f.flush()
                    os.fsync(f.fileno())
            size, lines = size + len(chunk), lines + len(rows)
            if not rows:
                break
    conn.close()
    assert lines == int(entries), f"read {lines} rows, expected {entries}"
    seconds = {f"{name}_seconds": value for name, value in phase.seconds.items()}
    return {"seconds": sum(phase.seconds.values()), "bytes": size, **seconds}


def _raw_line(row: tuple[Any, ...]) -> bytes:
    obj = dict(zip(ROW_KEYS, row, strict=True))
    obj["type"] = "entry"
    obj["detail"] = {} if obj["detail"] == "{}" else json.loads(obj["detail"])
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def bundle_lines(path: str) -> Iterator[bytes]:
    """The bundle's lines as the auditor's CLI reads them (node/cli/audit_offline.bundle_lines)."""
    with open(path, "rb") as f:
        yield from read_lines(iter(lambda: f.read(CHUNK_BYTES), b""))


def gunzipped_lines(path: str) -> Iterator[bytes]:
    """The file's lines through zlib alone (no checks, no line limits), 1 MiB out at a time."""
    inflater, pending = zlib.decompressobj(31), b""
    with open(path, "rb") as f:
        for data in iter(lambda: f.read(CHUNK_BYTES), b""):
            while data:
                lines = (pending + inflater.decompress(data, CHUNK_BYTES)).split(b"\n")
                pending, data = lines.pop(), inflater.unconsumed_tail
                yield from lines
    yield from (pending + inflater.flush()).split(b"\n")[:-1]


def verify(path: str) -> dict[str, Any]:
    from protocol.translog.audit import verify_bundle

    seconds, report = timed(lambda: verify_bundle(bundle_lines(path)))
    return {"seconds": seconds, "ok": report.ok, "entries": report.entries, "summary": report.summary()}


def raw_verify(path: str) -> dict[str, Any]:
    """The floor under verify_bundle: gunzip, json.loads of every line, SHA-256 of every line.

    Two passes (gunzip alone; gunzip and json.loads), then SHA-256 of 0x00 || line timed over the
    first 10,000 lines, again and again until as many lines were hashed as the bundle has."""
    sample: list[bytes] = []

    def gunzip() -> int:
        count = 0
        for line in gunzipped_lines(path):
            count += 1
            if len(sample) < 10_000:
                sample.append(b"\x00" + line)
        return count

    unzip, count = timed(gunzip)
    parse = timed(lambda: deque(map(json.loads, gunzipped_lines(path)), maxlen=0))[0] - unzip
    sha256, rounds = hashlib.sha256, -(-count // len(sample))
    hashing = timed(lambda: [deque(map(sha256, sample), maxlen=0) for _ in range(rounds)])[0]
    hashing *= count / (rounds * len(sample))
    return {
        "gunzip_seconds": unzip,
        "parse_seconds": parse,
        "sha256_seconds": hashing,
        "seconds": unzip + parse + hashing,
        "lines": count,
    }


def reconcile_step(path_a: str, path_b: str) -> dict[str, Any]:
    from protocol.translog.reconcile import reconcile  # where the CLI and tests import it from

    seconds, report = timed(lambda: reconcile(bundle_lines(path_a), bundle_lines(path_b)))
    return {
        "seconds": seconds,
        "ok": report.ok,
        "paired": report.paired,
        "mismatch_count": report.mismatch_count,
        "summary": report.summary(),
    }


def raw_reconcile(path_a: str, path_b: str) -> dict[str, Any]:
    """Both bundles parsed with json.loads, envelopes kept by hash, sent matched to accepted."""

    def envelopes(path: str) -> dict[str, tuple[str, str, str]]:
        found = {}
        for line in gunzipped_lines(path):
            obj = json.loads(line)
            if obj.get("kind") == "envelope":
                found[obj["envelope_hash"]] = (obj["direction"], obj["outcome"], obj["message_id"])
        return found

    def pair() -> int:
        a, b = envelopes(path_a), envelopes(path_b)
        paired = 0
        for mine, theirs in ((a, b), (b, a)):
            for hash_, (direction, outcome, message_id) in mine.items():
                other = theirs.get(hash_)
                if direction == "out" and outcome == "sent" and other and other[1] == "accepted":
                    paired += other[2] == message_id
        return paired

    seconds, paired = timed(pair)
    return {"seconds": seconds, "paired": paired}


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "proof": proof,
    "export": export,
    "raw-export": raw_export,
    "verify": verify,
    "raw-verify": raw_verify,
    "reconcile": reconcile_step,
    "raw-reconcile": raw_reconcile,
}


IMPORTS = {
    "proof": ("node.context", "node.services.witness"),
    "export": ("node.context", "node.services.audit_bundle"),
    "verify": ("protocol.translog.audit",),
    "reconcile": ("protocol.translog.reconcile",),
}


def main() -> None:
    step, args = sys.argv[1], sys.argv[2:]
    for module in IMPORTS.get(step, ()):  # before the baseline: the step's peak is then its work
        importlib.import_module(module)
    baseline = tree_peak_kib(os.getpid())
    result = STEPS[step](*args)
    print(json.dumps({**result, "baseline_kib": baseline, "peak_kib": tree_peak_kib(os.getpid())}))


if __name__ == "__main__":
    main()
