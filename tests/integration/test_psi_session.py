"""The round code's PSI helpers: one call per side and step, the same answers as protocol.psi."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from node.services import psi_session
from node.services.psi_parallel import CHUNK_SIZE, point_pool
from protocol import psi
from protocol.errors import MalformedError

P = 2**255 - 19
SESSION = bytes(range(16))
A_SCALAR = psi.new_scalar(hashlib.sha512(b"session test a").digest())
B_SCALAR = psi.new_scalar(hashlib.sha512(b"session test b").digest())
TWIST = (3).to_bytes(32, "little")  # u = 3 is on the twist of Curve25519


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with point_pool(2) as executor:
        yield executor


def run(xs: list[bytes], ys: list[bytes], pool: ProcessPoolExecutor | None) -> tuple[set[bytes], set[bytes]]:
    """Both sides through the helpers and the wire checks; the selectors each side found matched."""
    sent = psi_session.initiator_points(
        xs, session_id=SESSION, scalar=A_SCALAR, shuffle_seed=b"a" * 32, pool=pool, workers=1
    )
    request = psi.build_request(session_id=SESSION, round=1, record_count=len(xs), points=sent.points)
    got = psi.parse_request(request.to_payload())
    answer = psi_session.responder_answer(
        got, ys, scalar=B_SCALAR, shuffle_seed=b"b" * 32, pool=pool, workers=1
    )
    response = psi.parse_response(answer.response(got, record_count=len(ys)).to_payload(), request=request)
    matched = psi_session.initiator_matches(response, sent, scalar=A_SCALAR, pool=pool, workers=1)
    result = psi.build_result(response, positions=matched.theirs)
    b_own = psi.matched_own_indices(result, answer.permutation)
    return {xs[i] for i in matched.own}, {ys[k] for k in b_own}


def test_small_session_in_process() -> None:
    xs = [b"doc:NLD:%04d" % i for i in range(40)]
    ys = [b"doc:NLD:%04d" % i for i in range(30, 90)]
    assert run(xs, ys, None) == (set(xs) & set(ys), set(xs) & set(ys))
    assert run(xs, [b"other"], None) == (set(), set())


def test_large_session_over_the_pool(pool: ProcessPoolExecutor) -> None:
    xs = [b"phone:+4071%07d" % i for i in range(CHUNK_SIZE + 1_200)]
    ys = [b"phone:+4071%07d" % i for i in range(CHUNK_SIZE, 3 * CHUNK_SIZE)]
    assert run(xs, ys, pool) == (set(xs) & set(ys), set(xs) & set(ys))


def test_initiator_points_are_the_shuffled_selectors_blinded() -> None:
    xs = [b"email:%d@x.example" % i for i in range(50)]
    sent = psi_session.initiator_points(xs, session_id=SESSION, scalar=A_SCALAR, shuffle_seed=b"s" * 32)
    assert sent.order == psi.shuffle_order(50, seed=b"s" * 32)
    assert sent.points == psi.blind(
        psi.hash_to_group([xs[k] for k in sent.order], session_id=SESSION), A_SCALAR
    )
    assert sent.selector_indices([1, 0]) == sorted(sent.order[:2])
    assert repr(sent) == "InitiatorPoints()"  # nothing of the session in a log line


def test_responder_answer_is_what_build_response_needs() -> None:
    xs, ys = [b"x1", b"x2"], [b"y1", b"y2", b"y3"]
    points = psi.hash_blind(xs, A_SCALAR, session_id=SESSION)
    request = psi.build_request(session_id=SESSION, round=2, record_count=2, points=points)
    answer = psi_session.responder_answer(request, ys, scalar=B_SCALAR, shuffle_seed=b"p" * 32)
    assert answer.reblinded == psi.blind(points, B_SCALAR)
    assert answer.blinded == psi.hash_blind(ys, B_SCALAR, session_id=SESSION)
    assert answer.permutation == psi.shuffle_order(3, seed=b"p" * 32)
    assert answer.response(request, record_count=9) == psi.build_response(
        request,
        reblinded=answer.reblinded,
        blinded=answer.blinded,
        permutation=answer.permutation,
        record_count=9,
    )


def _mixed(point: bytes) -> bytes:
    """P + (0, 0): u becomes 1/u. A different valid encoding with the same product under X25519."""
    return pow(int.from_bytes(point, "little"), -1, P).to_bytes(32, "little")


@pytest.mark.parametrize(
    ("bad", "code", "message"),
    [
        (TWIST, "psi_invalid_point", "point 1 is not a valid point of the PSI group"),
        (bytes(32), "psi_invalid_point", "point 1 is not a valid point of the PSI group"),
        (None, "psi_duplicate_point", "psi.request.points: the same point appears twice"),
    ],
    ids=["twist", "small_order", "same_point_plus_small_order"],
)
def test_responder_refuses_hostile_request_points(bad: bytes | None, code: str, message: str) -> None:
    points = psi.hash_blind([b"x1", b"x2"], A_SCALAR, session_id=SESSION)
    points[1] = bad if bad is not None else _mixed(points[0])
    request = psi.build_request(session_id=SESSION, round=1, record_count=2, points=points)
    with pytest.raises(MalformedError) as e:
        psi_session.responder_answer(request, [b"y"], scalar=B_SCALAR, shuffle_seed=bytes(32))
    assert (e.value.code, str(e.value)) == (code, message)


@pytest.mark.parametrize(
    ("field", "bad", "code"),
    [
        ("reblinded", TWIST, "psi_invalid_point"),
        ("blinded", TWIST, "psi_invalid_point"),
        ("blinded", (P - 1).to_bytes(32, "little"), "psi_invalid_point"),
        ("blinded", None, "psi_duplicate_point"),
    ],
    ids=["reblinded_twist", "blinded_twist", "blinded_small_order", "blinded_same_point_plus_small_order"],
)
def test_initiator_refuses_hostile_response_points(field: str, bad: bytes | None, code: str) -> None:
    xs = [b"x1", b"x2"]
    sent = psi_session.initiator_points(xs, session_id=SESSION, scalar=A_SCALAR, shuffle_seed=bytes(32))
    request = psi.build_request(session_id=SESSION, round=1, record_count=2, points=sent.points)
    honest = psi.blind(sent.points, B_SCALAR)
    lists = {
        "reblinded": list(honest),
        "blinded": psi.hash_blind([b"y1", b"y2"], B_SCALAR, session_id=SESSION),
    }
    lists[field][1] = bad if bad is not None else _mixed(lists[field][0])
    response = psi.PSIResponse(SESSION, 1, 2, tuple(lists["reblinded"]), tuple(lists["blinded"]))
    psi.parse_response(response.to_payload(), request=request)  # the shape is fine
    with pytest.raises(MalformedError) as e:
        psi_session.initiator_matches(response, sent, scalar=A_SCALAR)
    assert e.value.code == code
