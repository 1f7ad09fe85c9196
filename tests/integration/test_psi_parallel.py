"""The PSI process-pool helper gives exactly what protocol.psi gives in one process, in order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from node.services.psi_parallel import (
    CHUNK_SIZE,
    PointTask,
    parallel_map_points,
    parallel_map_tasks,
    point_pool,
)
from protocol import psi
from protocol.errors import MalformedError

N = 12_000  # more than two chunks, and not a multiple of the chunk size
SESSION = bytes(range(16))
SCALAR = psi.new_scalar(hashlib.sha512(b"parallel test scalar").digest())
SELECTORS = [b"doc:NLD:%08d" % i for i in range(N)]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with point_pool(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def expected() -> dict[str, list[bytes]]:
    hashed = psi.hash_to_group(SELECTORS, session_id=SESSION)
    return {"hash_to_group": hashed, "blind": psi.blind(hashed, SCALAR)}


def test_chunking_is_exercised() -> None:
    assert N > 2 * CHUNK_SIZE and N % CHUNK_SIZE


def test_parallel_equals_in_process(pool: ProcessPoolExecutor, expected: dict[str, list[bytes]]) -> None:
    hashed = parallel_map_points("hash_to_group", SELECTORS, session_id=SESSION, pool=pool)
    assert hashed == expected["hash_to_group"]
    assert parallel_map_points("blind", hashed, SCALAR, pool=pool) == expected["blind"]
    assert (
        parallel_map_points("hash_blind", SELECTORS, SCALAR, session_id=SESSION, pool=pool)
        == expected["blind"]
    )
    assert parallel_map_points("validate", expected["blind"], pool=pool) == expected["blind"]


def test_own_pool_and_small_inputs(expected: dict[str, list[bytes]]) -> None:
    # without a pool: a temporary one for large inputs, this process for small ones
    assert parallel_map_points("blind", expected["hash_to_group"], SCALAR, workers=2) == expected["blind"]
    small = expected["hash_to_group"][: CHUNK_SIZE - 1]
    assert parallel_map_points("blind", small, SCALAR, workers=2) == expected["blind"][: CHUNK_SIZE - 1]
    one_core = expected["hash_to_group"][: CHUNK_SIZE + 1]
    assert parallel_map_points("blind", one_core, SCALAR, workers=1) == expected["blind"][: CHUNK_SIZE + 1]


@pytest.mark.parametrize("operation", ["blind", "validate"])
def test_invalid_point_in_a_worker_names_its_index(
    pool: ProcessPoolExecutor, expected: dict[str, list[bytes]], operation: str
) -> None:
    points = list(expected["blind"])
    points[11_001] = bytes.fromhex("01" + "00" * 31)  # u = 1, of order 4, in the last chunk
    with pytest.raises(MalformedError) as e:
        parallel_map_points(operation, points, SCALAR if operation == "blind" else None, pool=pool)
    assert e.value.code == "psi_invalid_point"
    assert str(e.value) == "point 11001 is not a valid point of the PSI group"
    # the pool is still usable afterwards
    assert parallel_map_points("validate", expected["blind"], pool=pool) == expected["blind"]


def test_wrong_size_item_is_refused_before_any_work(
    pool: ProcessPoolExecutor, expected: dict[str, list[bytes]]
) -> None:
    points = list(expected["blind"])
    points[9_999] = points[9_999][:31]
    with pytest.raises(MalformedError) as e:
        parallel_map_points("blind", points, SCALAR, pool=pool)
    assert e.value.code == "psi_invalid_point"
    assert "point 9999 " in str(e.value)


@pytest.mark.parametrize(
    ("operation", "scalar", "session_id", "message"),
    [
        ("unblind", SCALAR, None, "unknown PSI operation"),
        ("blind", None, None, "blind needs scalar"),
        ("hash_to_group", SCALAR, SESSION, "hash_to_group takes no scalar"),
        ("hash_to_group", None, None, "hash_to_group needs session_id"),
        ("validate", None, SESSION, "validate takes no session_id"),
    ],
)
def test_bad_calls(operation: str, scalar: bytes | None, session_id: bytes | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parallel_map_points(operation, [], scalar, session_id=session_id)


def test_several_tasks_in_one_pass(pool: ProcessPoolExecutor, expected: dict[str, list[bytes]]) -> None:
    tasks = [
        PointTask("blind", expected["hash_to_group"], SCALAR),
        PointTask("hash_blind", SELECTORS[:3_000], SCALAR, SESSION),
        PointTask("validate", expected["blind"][:10]),
        PointTask("hash_to_group", [], session_id=SESSION),
    ]
    assert parallel_map_tasks(tasks, pool=pool) == [
        expected["blind"],
        expected["blind"][:3_000],
        expected["blind"][:10],
        [],
    ]
    # small in all: in this process, same answers
    small = [PointTask("blind", expected["hash_to_group"][:5], SCALAR), PointTask("validate", [])]
    assert parallel_map_tasks(small, workers=2) == [expected["blind"][:5], []]
    assert "scalar" not in repr(tasks[0]) and SCALAR.hex() not in repr(tasks[0])


def test_an_error_in_the_second_task_names_its_own_index(
    pool: ProcessPoolExecutor, expected: dict[str, list[bytes]]
) -> None:
    twist = (3).to_bytes(32, "little")  # u = 3 is on the twist
    points = list(expected["blind"])
    points[7_777] = twist
    with pytest.raises(MalformedError) as e:
        parallel_map_tasks(
            [PointTask("hash_blind", SELECTORS, SCALAR, SESSION), PointTask("blind", points, SCALAR)],
            pool=pool,
        )
    assert str(e.value) == "point 7777 is not a valid point of the PSI group"
