"""PSI group operations over every core: hash to the group, blind, validate, in ordered chunks.

The operations of :mod:`protocol.psi` cost 40-200 µs per point (field notes; ``scripts/bench/
psi_speed.py`` measures them), so 100,000 selectors take seconds per step on one core. This
helper cuts the input into chunks of ``CHUNK_SIZE``, runs :mod:`protocol.psi` on them in a
process pool and puts the results back in input order. Small inputs (fewer than ``CHUNK_SIZE``
items, or one worker) run in this process.

Workers start with ``forkserver`` where the platform has it, otherwise ``spawn``: never a plain
``fork`` of a node process that has threads (gunicorn, APScheduler) and open database handles.
The blinding scalar travels to the node's own worker processes over a local pipe; it is never
written anywhere.

Errors raised in a worker (``psi_invalid_point`` with the index in the whole input) reach the
caller unchanged; the remaining chunks are cancelled.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from protocol import psi
from protocol.errors import MalformedError

CHUNK_SIZE = 5_000
OPERATIONS = ("hash_to_group", "blind", "hash_blind", "validate")
_HASHING = ("hash_to_group", "hash_blind")


@contextmanager
def point_pool(workers: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """A process pool for several :func:`parallel_map_points` calls (workers start once)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=context) as pool:
        yield pool


def parallel_map_points(
    fn_name: str,
    items: Sequence[bytes],
    scalar: bytes | None = None,
    *,
    session_id: bytes | None = None,
    workers: int | None = None,
    pool: ProcessPoolExecutor | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> list[bytes]:
    """Apply a :mod:`protocol.psi` operation to ``items`` over several processes, in order.

    ``fn_name`` is one of

    - ``hash_to_group``: items are selectors; needs ``session_id``;
    - ``blind``: items are points; needs ``scalar``;
    - ``hash_blind``: both in one pass (selectors to blinded points, no round trip between);
    - ``validate``: items are points; returns them once every one is a valid group element.

    ``workers`` defaults to the number of CPUs; ``pool`` reuses a pool from :func:`point_pool`.
    Raises ValueError for an unknown operation or a missing argument, and whatever
    :mod:`protocol.psi` raises for bad input (``psi_invalid_point`` names the index in ``items``).
    """
    if fn_name not in OPERATIONS:
        raise ValueError(f"unknown PSI operation {fn_name!r}; expected one of {', '.join(OPERATIONS)}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if (scalar is None) == (fn_name in ("blind", "hash_blind")):
        raise ValueError(f"{fn_name} {'needs' if scalar is None else 'takes no'} scalar")
    if (session_id is None) == (fn_name in _HASHING):
        raise ValueError(f"{fn_name} {'needs' if session_id is None else 'takes no'} session_id")
    if fn_name not in _HASHING:
        _check_sizes(items)
    job = _Job(fn_name, scalar or b"", session_id or b"")
    workers = workers or os.cpu_count() or 1
    if len(items) < CHUNK_SIZE or (workers == 1 and pool is None):
        return _split(run_chunk(job, _pack(fn_name, items), 0))
    if pool is not None:
        return _map(pool, job, items, chunk_size)
    with point_pool(workers) as own_pool:
        return _map(own_pool, job, items, chunk_size)


@dataclass(frozen=True)
class _Job:
    fn_name: str
    scalar: bytes = field(repr=False)  # a secret: never in a log line or a traceback
    session_id: bytes = b""


def _map(pool: ProcessPoolExecutor, job: _Job, items: Sequence[bytes], chunk_size: int) -> list[bytes]:
    futures: list[Future[bytes]] = [
        pool.submit(run_chunk, job, _pack(job.fn_name, items[start : start + chunk_size]), start)
        for start in range(0, len(items), chunk_size)
    ]
    results: list[bytes] = []
    try:
        for future in futures:
            results.extend(_split(future.result()))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


def run_chunk(job: _Job, chunk: bytes | list[bytes], offset: int) -> bytes:
    """One chunk in a worker. Points travel as one concatenated blob: far cheaper to pickle.

    ``offset`` is the chunk's start in the whole input, so that errors name the right index.
    """
    if isinstance(chunk, list):  # selectors
        points = psi.hash_to_group(chunk, session_id=job.session_id)
        if job.fn_name == "hash_blind":
            points = psi.blind(points, job.scalar, offset=offset)
        return b"".join(points)
    points = psi.split_points(chunk, count=len(chunk) // psi.POINT_SIZE)
    if job.fn_name == "blind":
        return b"".join(psi.blind(points, job.scalar, offset=offset))
    return b"".join(psi.check_points(points, offset=offset))


def _pack(fn_name: str, items: Sequence[bytes]) -> bytes | list[bytes]:
    return list(items) if fn_name in _HASHING else b"".join(items)


def _check_sizes(items: Sequence[bytes]) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, bytes) or len(item) != psi.POINT_SIZE:
            raise MalformedError(f"point {i} is not {psi.POINT_SIZE} bytes", code=psi.INVALID_POINT)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + psi.POINT_SIZE] for i in range(0, len(blob), psi.POINT_SIZE)]
