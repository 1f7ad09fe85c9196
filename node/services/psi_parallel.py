"""PSI group operations over every core: hash to the group, blind, validate, in ordered chunks.

The operations of :mod:`protocol.psi` cost 10-90 µs per point (``scripts/bench/psi_speed.py``
measures them), so 100,000 selectors take seconds per step on one core. This helper cuts each
input into chunks of ``CHUNK_SIZE``, runs :mod:`protocol.psi` on them in a process pool and puts
the results back in input order. :func:`parallel_map_tasks` runs several operations in one pass
(the responder re-blinds the request while it hashes and blinds its own set), so that no core
waits for the other at the end of one operation before the next starts. Small inputs (fewer than
``CHUNK_SIZE`` items in all, or one worker) run in this process.

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

CHUNK_SIZE = 2_500
OPERATIONS = ("hash_to_group", "blind", "hash_blind", "validate")
_HASHING = ("hash_to_group", "hash_blind")
_SCALAR = ("blind", "hash_blind")


@contextmanager
def point_pool(workers: int | None = None) -> Iterator[ProcessPoolExecutor]:
    """A process pool for several :func:`parallel_map_points` calls (workers start once)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=context) as pool:
        yield pool


@dataclass(frozen=True)
class PointTask:
    """One operation of :data:`OPERATIONS` over one list, for :func:`parallel_map_tasks`."""

    fn_name: str
    items: Sequence[bytes] = field(repr=False)
    scalar: bytes | None = field(default=None, repr=False)  # a secret: never in a log line
    session_id: bytes | None = None


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
    - ``blind``: items are received points; needs ``scalar``; checks every point;
    - ``hash_blind``: both in one pass for the node's own selectors (:func:`protocol.psi.hash_blind`);
    - ``validate``: items are points; returns them once every one is valid (``check_points``).

    ``workers`` defaults to the number of CPUs; ``pool`` reuses a pool from :func:`point_pool`.
    Raises ValueError for an unknown operation or a missing argument, and whatever
    :mod:`protocol.psi` raises for bad input (``psi_invalid_point`` names the index in ``items``).
    """
    task = PointTask(fn_name, items, scalar, session_id)
    return parallel_map_tasks([task], workers=workers, pool=pool, chunk_size=chunk_size)[0]


def parallel_map_tasks(
    tasks: Sequence[PointTask],
    *,
    workers: int | None = None,
    pool: ProcessPoolExecutor | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> list[list[bytes]]:
    """Run several :class:`PointTask` in one pass over the pool; one result list per task, in order.

    The chunks of every task are queued at once, so both cores stay busy until the last chunk of
    the last task. Arguments and errors are those of :func:`parallel_map_points`; an error names
    the index in its own task's items (the first task's error wins when several fail).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    jobs = [_job(task) for task in tasks]
    workers = workers or os.cpu_count() or 1
    if sum(len(task.items) for task in tasks) < CHUNK_SIZE or (workers == 1 and pool is None):
        return [_split(run_chunk(job, _pack(job, t.items), 0)) for job, t in zip(jobs, tasks, strict=True)]
    if pool is not None:
        return _map(pool, jobs, tasks, chunk_size)
    with point_pool(workers) as own_pool:
        return _map(own_pool, jobs, tasks, chunk_size)


@dataclass(frozen=True)
class _Job:
    fn_name: str
    scalar: bytes = field(repr=False)  # a secret: never in a log line or a traceback
    session_id: bytes = b""


def _job(task: PointTask) -> _Job:
    name = task.fn_name
    if name not in OPERATIONS:
        raise ValueError(f"unknown PSI operation {name!r}; expected one of {', '.join(OPERATIONS)}")
    if (task.scalar is None) == (name in _SCALAR):
        raise ValueError(f"{name} {'needs' if task.scalar is None else 'takes no'} scalar")
    if (task.session_id is None) == (name in _HASHING):
        raise ValueError(f"{name} {'needs' if task.session_id is None else 'takes no'} session_id")
    if name not in _HASHING:
        _check_sizes(task.items)
    return _Job(name, task.scalar or b"", task.session_id or b"")


def _map(
    pool: ProcessPoolExecutor, jobs: list[_Job], tasks: Sequence[PointTask], chunk_size: int
) -> list[list[bytes]]:
    futures: list[list[Future[bytes]]] = [
        [
            pool.submit(run_chunk, job, _pack(job, task.items[start : start + chunk_size]), start)
            for start in range(0, len(task.items), chunk_size)
        ]
        for job, task in zip(jobs, tasks, strict=True)
    ]
    results: list[list[bytes]] = []
    try:
        for per_task in futures:
            blobs = [future.result() for future in per_task]
            results.append(_split(b"".join(blobs)))
    except BaseException:
        for per_task in futures:
            for future in per_task:
                future.cancel()
        raise
    return results


def run_chunk(job: _Job, chunk: bytes | list[bytes], offset: int) -> bytes:
    """One chunk in a worker. Points travel as one concatenated blob: far cheaper to pickle.

    ``offset`` is the chunk's start in the whole input, so that errors name the right index.
    """
    if job.fn_name == "hash_blind":
        assert isinstance(chunk, list)
        return b"".join(psi.hash_blind(chunk, job.scalar, session_id=job.session_id, offset=offset))
    if job.fn_name == "hash_to_group":
        assert isinstance(chunk, list)
        return b"".join(psi.hash_to_group(chunk, session_id=job.session_id))
    assert isinstance(chunk, bytes)
    points = psi.split_points(chunk, count=len(chunk) // psi.POINT_SIZE)
    if job.fn_name == "blind":
        return b"".join(psi.blind(points, job.scalar, offset=offset))
    return b"".join(psi.check_points(points, offset=offset))


def _pack(job: _Job, items: Sequence[bytes]) -> bytes | list[bytes]:
    return list(items) if job.fn_name in _HASHING else b"".join(items)


def _check_sizes(items: Sequence[bytes]) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, bytes) or len(item) != psi.POINT_SIZE:
            raise MalformedError(f"point {i} is not {psi.POINT_SIZE} bytes", code=psi.INVALID_POINT)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + psi.POINT_SIZE] for i in range(0, len(blob), psi.POINT_SIZE)]
