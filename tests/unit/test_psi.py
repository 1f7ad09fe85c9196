"""Diffie-Hellman PSI (protocol/SPEC.md section 10): group operations, messages, bad input, what leaks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import psi
from protocol.canonical import b64encode, canonical_json, parse_json
from protocol.errors import InvalidRequestError, MalformedError, ProtocolError
from protocol.messages import MESSAGE_TYPES, check_payload

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
IDENTITY = bytes.fromhex("01" + "00" * 31)
SESSION = bytes(range(16))
OTHER_SESSION = bytes(range(16, 32))


def seed(n: int) -> bytes:
    """Fixed 64-byte scalar seeds, so every test is reproducible."""
    return hashlib.sha512(b"test scalar %d" % n).digest()


def encode_y(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


def negate(point: bytes) -> bytes:
    return point[:31] + bytes([point[31] ^ 0x80])


def order(point: bytes) -> int:
    """Order of a small-order point, by repeated addition (crypto_core_ed25519_add takes any curve point)."""
    acc = point
    for k in range(1, 9):
        if acc == IDENTITY:
            return k
        acc = sodium.crypto_core_ed25519_add(acc, point)
    raise AssertionError("not of small order")


A_SCALAR, B_SCALAR = psi.new_scalar(seed(1)), psi.new_scalar(seed(2))
VALID = psi.hash_to_group([b"phone:+40712345678"], session_id=SESSION)[0]

# The eight points of order dividing 8 (libsodium's small-order list, canonical encodings).
SMALL_ORDER = {
    "identity": (IDENTITY, 1),
    "order2": (encode_y(P - 1), 2),
    "order4": (encode_y(0), 4),
    "order4_sign": (encode_y(0, 1), 4),
    "order8_a": (bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), 8),
    "order8_a_sign": (bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"), 8),
    "order8_b": (bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), 8),
    "order8_b_sign": (bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"), 8),
}
BAD_POINTS = {
    **{name: point for name, (point, _) in SMALL_ORDER.items()},
    "not_on_curve": encode_y(2),  # (y^2 - 1)/(d y^2 + 1) is not a square: no x
    "noncanonical_identity": encode_y(P + 1),  # y = p + 1 ≡ 1
    "noncanonical_order4": encode_y(P),  # y = p ≡ 0
    "identity_negative_zero": encode_y(1, 1),  # x = 0 with the sign bit set
    "mixed_order": sodium.crypto_core_ed25519_add(VALID, SMALL_ORDER["order8_a"][0]),  # P + T8
    "all_ones": b"\xff" * 32,
}


# --- the group ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_ORDER)
def test_small_order_table_is_right(name: str) -> None:
    point, expected = SMALL_ORDER[name]
    assert order(point) == expected


def test_not_on_curve_point_does_not_decode() -> None:
    with pytest.raises(Exception, match="library error"):
        sodium.crypto_core_ed25519_add(BAD_POINTS["not_on_curve"], VALID)


@given(st.binary(min_size=1, max_size=64))
@settings(max_examples=50, deadline=None)
def test_hashed_points_are_in_the_prime_order_subgroup(selector: bytes) -> None:
    point = psi.hash_to_group([selector], session_id=SESSION)[0]
    assert sodium.crypto_core_ed25519_is_valid_point(point)
    # L·P = O, shown as (L-1)·P = -P (libsodium refuses to output the identity itself)
    assert sodium.crypto_scalarmult_ed25519_noclamp((L - 1).to_bytes(32, "little"), point) == negate(point)


def test_hash_to_group_is_the_specified_construction() -> None:
    selector = b"doc:ROU:AB123456"
    digest = hashlib.sha512(b"palermo/psi/v1" + SESSION + selector).digest()
    assert psi.hash_to_group([selector], session_id=SESSION) == [
        sodium.crypto_core_ed25519_from_uniform(digest[:32])
    ]


def test_from_uniform_facts_the_spec_states() -> None:
    r = hashlib.sha512(b"r").digest()[:32]
    flipped = r[:31] + bytes([r[31] ^ 0x80])
    # bit 255 only chooses the sign of x; the other 255 bits are a field element taken mod p
    assert sodium.crypto_core_ed25519_from_uniform(flipped) == negate(
        sodium.crypto_core_ed25519_from_uniform(r)
    )
    assert sodium.crypto_core_ed25519_from_uniform(encode_y(5)) == sodium.crypto_core_ed25519_from_uniform(
        encode_y(P + 5)
    )
    # r = 0 maps to the identity: a selector whose hash is 0 or p (probability 2^-254) is refused by blind()
    assert sodium.crypto_core_ed25519_from_uniform(bytes(32)) == IDENTITY


def test_session_id_separates_domains() -> None:
    one = psi.hash_to_group([b"email:a@b.example"], session_id=SESSION)[0]
    two = psi.hash_to_group([b"email:a@b.example"], session_id=OTHER_SESSION)[0]
    assert one != two and one != negate(two)
    # nothing from one session matches in another, even with the same scalars
    x = [b"email:a@b.example", b"phone:+31612345678"]
    a_side = psi.blind(psi.blind(psi.hash_to_group(x, session_id=SESSION), A_SCALAR), B_SCALAR)
    b_side = psi.blind(psi.blind(psi.hash_to_group(x, session_id=OTHER_SESSION), B_SCALAR), A_SCALAR)
    assert psi.intersect(a_side, b_side) == psi.Intersection(own=(), theirs=())


scalars = st.integers(min_value=1, max_value=L - 1).map(lambda k: k.to_bytes(64, "little"))


@given(scalars, scalars, st.binary(max_size=40))
@settings(max_examples=40, deadline=None)
def test_blinding_commutes(seed_a: bytes, seed_b: bytes, selector: bytes) -> None:
    a, b = psi.new_scalar(seed_a), psi.new_scalar(seed_b)
    point = psi.hash_to_group([selector], session_id=SESSION)
    assert psi.blind(psi.blind(point, a), b) == psi.blind(psi.blind(point, b), a)
    assert sodium.crypto_core_ed25519_is_valid_point(psi.blind(point, a)[0])


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=200, deadline=None)
def test_blind_refuses_exactly_what_is_valid_point_refuses(point: bytes) -> None:
    valid = sodium.crypto_core_ed25519_is_valid_point(point)
    try:
        psi.blind([point], A_SCALAR)
        blinded = True
    except MalformedError as e:
        assert e.code == "psi_invalid_point"
        blinded = False
    assert blinded == valid


# --- bad points and scalars ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_POINTS)
def test_bad_point_is_refused_everywhere(name: str) -> None:
    point = BAD_POINTS[name]
    assert not sodium.crypto_core_ed25519_is_valid_point(point)
    for attempt in (
        lambda: psi.check_points([VALID, point]),
        lambda: psi.validate_points(VALID + point, count=2),
        lambda: psi.blind([VALID, point], A_SCALAR),
    ):
        with pytest.raises(MalformedError) as e:
            attempt()
        assert e.value.code == "psi_invalid_point"
        assert str(e.value) == "point 1 is not an element of the prime-order group"


@pytest.mark.parametrize(
    ("blob", "count"),
    [(VALID[:31], 1), (VALID + VALID[:1], 1), (VALID, 2), (b"", 1), (VALID, 0)],
    ids=["short", "long", "fewer_than_declared", "empty", "more_than_declared"],
)
def test_wrong_length_blob_is_a_count_mismatch(blob: bytes, count: int) -> None:
    with pytest.raises(MalformedError) as e:
        psi.validate_points(blob, count=count)
    assert e.value.code == "psi_count_mismatch"


@pytest.mark.parametrize(
    "item", [VALID[:31], VALID + b"\0", "not bytes"], ids=["31_bytes", "33_bytes", "str"]
)
def test_wrong_size_point_is_invalid(item: Any) -> None:
    for attempt in (lambda: psi.check_points([item]), lambda: psi.blind([item], A_SCALAR)):
        with pytest.raises(MalformedError) as e:
            attempt()
        assert e.value.code == "psi_invalid_point"


@pytest.mark.parametrize(
    ("random64", "code"),
    [
        (bytes(64), "psi_zero_scalar"),
        (L.to_bytes(64, "little"), "psi_zero_scalar"),  # reduces to zero
        ((3 * L).to_bytes(64, "little"), "psi_zero_scalar"),
        (bytes(63), "psi_bad_scalar"),
        (bytes(65), "psi_bad_scalar"),
        ("0" * 64, "psi_bad_scalar"),
    ],
    ids=["zero", "L", "3L", "63_bytes", "65_bytes", "str"],
)
def test_new_scalar_refuses(random64: Any, code: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.new_scalar(random64)
    assert e.value.code == code


@pytest.mark.parametrize(
    ("scalar", "code"),
    [
        (bytes(32), "psi_zero_scalar"),
        (L.to_bytes(32, "little"), "psi_bad_scalar"),  # not reduced
        (b"\xff" * 32, "psi_bad_scalar"),
        (bytes(31), "psi_bad_scalar"),
    ],
    ids=["zero", "L", "all_ones", "short"],
)
def test_blind_refuses_bad_scalar(scalar: bytes, code: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.blind([VALID], scalar)
    assert e.value.code == code


def test_new_scalar_is_reduce_of_the_64_bytes() -> None:
    value = int.from_bytes(seed(7), "little") % L
    assert psi.new_scalar(seed(7)) == value.to_bytes(32, "little")


def test_hash_to_group_refuses_bad_arguments() -> None:
    for call in (
        lambda: psi.hash_to_group([b"x"], session_id=bytes(15)),
        lambda: psi.hash_to_group(["x"], session_id=SESSION),  # type: ignore[list-item]  # the wrong type is the point
    ):
        with pytest.raises(InvalidRequestError) as e:
            call()
        assert e.value.code == "psi_bad_argument"


# --- the protocol end to end --------------------------------------------------------------------


@dataclass
class Run:
    request: psi.PSIRequest
    response: psi.PSIResponse
    permutation: list[int]
    a_matches: set[bytes]
    b_matches: set[bytes]


def through_wire(type_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return check_payload(type_name, parse_json(canonical_json(payload)))


def run_psi(xs: list[bytes], ys: list[bytes], *, shuffle_seed: bytes = bytes(32)) -> Run:
    """Both parties, in-process, through canonical JSON and the registered payload checks."""
    a, b = psi.new_scalar(seed(10)), psi.new_scalar(seed(11))
    request = psi.build_request(
        session_id=SESSION,
        round=3,
        record_count=len(xs),
        points=psi.blind(psi.hash_to_group(xs, session_id=SESSION), a),
    )
    got = psi.parse_request(through_wire("psi.request", request.to_payload()))
    psi.check_request_limits(got, selectors_per_record=1, sessions_used=0, max_sessions=1)
    permutation = psi.shuffle_order(len(ys), seed=shuffle_seed)
    response = psi.build_response(
        got,
        reblinded=psi.blind(got.points, b),
        blinded=psi.blind(psi.hash_to_group(ys, session_id=got.session_id), b),
        permutation=permutation,
        record_count=len(ys),
    )
    answer = psi.parse_response(through_wire("psi.response", response.to_payload()), request=request)
    psi.check_points(answer.reblinded)
    matched = psi.intersect(answer.reblinded, psi.blind(answer.blinded, a))
    result = psi.build_result(answer, positions=matched.theirs)
    got_result = psi.parse_result(
        through_wire("psi.result", result.to_payload()), session_id=SESSION, round=3, blinded_count=len(ys)
    )
    b_own = psi.matched_own_indices(got_result, permutation)
    return Run(request, response, permutation, {xs[i] for i in matched.own}, {ys[k] for k in b_own})


selector_sets = st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=10, unique=True)


@given(selector_sets, selector_sets, st.lists(st.binary(min_size=1, max_size=12), max_size=6, unique=True))
@settings(max_examples=40, deadline=None)
def test_intersection_equals_plain_set_intersection(
    only_x: list[bytes], only_y: list[bytes], both: list[bytes]
) -> None:
    xs = list(dict.fromkeys(only_x + both))
    ys = list(dict.fromkeys(both + only_y))
    run = run_psi(xs, ys)
    assert run.a_matches == set(xs) & set(ys)
    assert run.b_matches == set(xs) & set(ys)


def test_intersect_pairs_indices() -> None:
    got = psi.intersect([b"p" * 32, b"q" * 32, b"r" * 32], [b"r" * 32, b"s" * 32, b"p" * 32])
    assert got == psi.Intersection(own=(0, 2), theirs=(2, 0))


def test_response_carries_only_blinded_points_in_shuffled_order() -> None:
    ys = sorted(b"phone:+4071%07d" % i for i in range(200))
    xs = ys[:5]
    run = run_psi(xs, ys, shuffle_seed=b"s" * 32)
    payload = run.response.to_payload()
    assert set(payload) == {
        "session_id", "round", "record_count", "reblinded_count", "reblinded", "blinded_count", "blinded",
    }  # fmt: skip
    b = psi.new_scalar(seed(11))
    hashed = psi.hash_to_group(ys, session_id=SESSION)
    expected = psi.blind(hashed, b)
    # B's list is its blinded set, permuted as the permutation says ...
    assert sorted(run.response.blinded) == sorted(expected)
    assert list(run.response.blinded) == [expected[k] for k in run.permutation]
    # ... and nothing else: no selector and no unblinded hash appears anywhere in the payload
    wire = canonical_json(payload)
    blobs = b"".join(run.response.blinded) + b"".join(run.response.reblinded)
    for y, h in zip(ys, hashed, strict=True):
        assert y not in wire and h not in blobs and b64encode(h)[:40].encode() not in wire
    # The order says nothing about B's order: rank correlation with the sorted input is small.
    positions = {k: j for j, k in enumerate(run.permutation)}
    n = len(ys)
    rho = 1 - 6 * sum((k - positions[k]) ** 2 for k in range(n)) / (n * (n * n - 1))
    assert abs(rho) < 0.2
    assert run.a_matches == run.b_matches == set(xs)


def test_shuffle_order_spreads_each_position() -> None:
    firsts = {psi.shuffle_order(20, seed=bytes([i]) * 32).index(0) for i in range(60)}
    assert len(firsts) >= 12  # where selector 0 lands varies with the seed
    assert sorted(psi.shuffle_order(1000, seed=b"k" * 32)) == list(range(1000))
    assert psi.shuffle_order(50, seed=b"k" * 32) == psi.shuffle_order(50, seed=b"k" * 32)


@pytest.mark.parametrize(("count", "seed_value"), [(-1, b"k" * 32), (3, b"k" * 31), (3, "k" * 32)])
def test_shuffle_order_refuses(count: int, seed_value: Any) -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.shuffle_order(count, seed=seed_value)
    assert e.value.code == "psi_bad_argument"


# --- payloads -----------------------------------------------------------------------------------


POINTS = psi.blind(psi.hash_to_group([b"a", b"b", b"c"], session_id=SESSION), A_SCALAR)
REQUEST = psi.build_request(session_id=SESSION, round=1, record_count=10, points=POINTS)
RESPONSE = psi.build_response(
    REQUEST, reblinded=psi.blind(POINTS, B_SCALAR), blinded=POINTS[:2], permutation=[1, 0], record_count=4
)
RESULT = psi.build_result(RESPONSE, positions=[1])


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is DROP:
            del out[key]
        else:
            out[key] = value
    return out


DROP = object()
REQ = REQUEST.to_payload()
RESP = RESPONSE.to_payload()
RES = RESULT.to_payload()
TWO = b64encode(b"".join(POINTS[:2]))

BAD_REQUESTS = [
    ("not_object", [REQ], "psi_malformed"),
    ("unknown_field", changed(REQ, extra=1), "psi_malformed"),
    ("missing_points", changed(REQ, points=DROP), "psi_malformed"),
    ("session_uppercase", changed(REQ, session_id=SESSION.hex().upper()), "psi_malformed"),
    ("session_short", changed(REQ, session_id=SESSION.hex()[:-2]), "psi_malformed"),
    ("session_newline", changed(REQ, session_id=SESSION.hex() + "\n"), "psi_malformed"),
    ("session_bytes_as_int", changed(REQ, session_id=7), "psi_malformed"),
    ("round_zero", changed(REQ, round=0), "psi_malformed"),
    ("round_string", changed(REQ, round="1"), "psi_malformed"),
    ("round_bool", changed(REQ, round=True), "psi_malformed"),
    ("record_count_negative", changed(REQ, record_count=-1), "psi_malformed"),
    ("record_count_huge", changed(REQ, record_count=2**53), "psi_malformed"),
    ("count_string", changed(REQ, count="3"), "psi_malformed"),
    ("count_bool", changed(REQ, count=True), "psi_malformed"),
    ("count_null", changed(REQ, count=None), "psi_malformed"),
    ("points_list", changed(REQ, points=[TWO]), "psi_malformed"),
    ("points_bad_base64", changed(REQ, points="!" * 128), "psi_malformed"),
    ("points_noncanonical_base64", changed(REQ, points=REQ["points"][:-2] + "B="), "psi_malformed"),
    ("count_mismatch_more_declared", changed(REQ, count=4), "psi_count_mismatch"),
    ("count_mismatch_fewer_declared", changed(REQ, count=2), "psi_count_mismatch"),
    ("count_mismatch_same_text_length", changed(REQ, count=3, points=b64encode(b"".join(POINTS)[:-1])), "psi_count_mismatch"),
    ("count_zero", changed(REQ, count=0, points=""), "psi_malformed"),
    ("duplicate_point", changed(REQ, points=b64encode(POINTS[0] * 3)), "psi_duplicate_point"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "code"), [(p, c) for _, p, c in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS]
)
def test_bad_request_payloads(payload: Any, code: str) -> None:
    with pytest.raises(MalformedError) as e:
        psi.parse_request(payload)
    assert e.value.code == code
    with pytest.raises(MalformedError) as envelope_level:
        check_payload("psi.request", payload)
    assert envelope_level.value.code == "invalid_payload"
    assert isinstance(envelope_level.value.__cause__, ProtocolError)
    assert envelope_level.value.__cause__.code == code


def test_too_many_points() -> None:
    with pytest.raises(MalformedError) as e:
        psi.parse_request(REQ, max_points=2)
    assert e.value.code == "psi_too_many_points"
    with pytest.raises(MalformedError) as e:
        psi.parse_response(RESP, request=REQUEST, max_points=2)
    assert e.value.code == "psi_too_many_points"
    with pytest.raises(MalformedError) as e:
        psi.parse_result(changed(RES, positions=[0, 1]), max_points=1)
    assert e.value.code == "psi_too_many_points"
    # the default bound (2,000,000) refuses before decoding anything
    with pytest.raises(MalformedError) as e:
        psi.parse_request(changed(REQ, count=2_000_001))
    assert e.value.code == "psi_too_many_points"


OTHER_REQUEST = psi.build_request(session_id=OTHER_SESSION, round=1, record_count=10, points=POINTS)

BAD_RESPONSES = [
    ("unknown_field", changed(RESP, note="hi"), "psi_malformed"),
    ("missing_blinded", changed(RESP, blinded=DROP), "psi_malformed"),
    ("other_session", changed(RESP, session_id=OTHER_SESSION.hex()), "psi_session_mismatch"),
    ("other_round", changed(RESP, round=2), "psi_session_mismatch"),
    ("fewer_reblinded", changed(RESP, reblinded_count=2, reblinded=TWO), "psi_count_mismatch"),
    ("blinded_count_mismatch", changed(RESP, blinded_count=3), "psi_count_mismatch"),
    ("duplicate_blinded", changed(RESP, blinded=b64encode(POINTS[0] * 2)), "psi_duplicate_point"),
    ("reblinded_wrong_type", changed(RESP, reblinded=3), "psi_malformed"),
    ("record_count_string", changed(RESP, record_count="4"), "psi_malformed"),
]


@pytest.mark.parametrize(
    ("payload", "code"), [(p, c) for _, p, c in BAD_RESPONSES], ids=[n for n, _, _ in BAD_RESPONSES]
)
def test_bad_response_payloads(payload: Any, code: str) -> None:
    with pytest.raises(MalformedError) as e:
        psi.parse_response(payload, request=REQUEST)
    assert e.value.code == code


def test_response_for_another_request_is_refused() -> None:
    with pytest.raises(MalformedError) as e:
        psi.parse_response(RESP, request=OTHER_REQUEST)
    assert e.value.code == "psi_session_mismatch"


BAD_RESULTS = [
    ("unknown_field", changed(RES, matches=1), "psi_malformed"),
    ("positions_not_list", changed(RES, positions="1"), "psi_malformed"),
    ("position_string", changed(RES, positions=["1"]), "psi_malformed"),
    ("position_bool", changed(RES, positions=[True]), "psi_malformed"),
    ("position_out_of_range", changed(RES, positions=[2]), "psi_bad_positions"),
    ("position_negative", changed(RES, positions=[-1]), "psi_bad_positions"),
    ("positions_unsorted", changed(RES, positions=[1, 0]), "psi_bad_positions"),
    ("positions_repeated", changed(RES, positions=[1, 1]), "psi_bad_positions"),
    ("other_session", changed(RES, session_id=OTHER_SESSION.hex()), "psi_session_mismatch"),
    ("blinded_count_mismatch", changed(RES, blinded_count=3), "psi_count_mismatch"),
]


@pytest.mark.parametrize(
    ("payload", "code"), [(p, c) for _, p, c in BAD_RESULTS], ids=[n for n, _, _ in BAD_RESULTS]
)
def test_bad_result_payloads(payload: Any, code: str) -> None:
    with pytest.raises(MalformedError) as e:
        psi.parse_result(payload, session_id=SESSION, round=1, blinded_count=2)
    assert e.value.code == code


def test_payloads_round_trip() -> None:
    assert psi.parse_request(REQ) == REQUEST
    assert psi.parse_response(RESP, request=REQUEST) == RESPONSE
    assert psi.parse_result(RES, session_id=SESSION, round=1, blinded_count=2) == RESULT
    assert {"session_id": SESSION.hex(), "round": 1, "blinded_count": 2, "positions": [1]} == RES
    assert psi.matched_own_indices(RESULT, [1, 0]) == [0]
    assert set(REQ) == {"session_id", "round", "record_count", "count", "points"}


def test_message_types_are_registered() -> None:
    assert {n: (t.kind, t.reply_types) for n, t in MESSAGE_TYPES.items() if n.startswith("psi.")} == {
        "psi.request": ("request", ("psi.response",)),
        "psi.response": ("reply", ()),
        "psi.result": ("request", ("receipt",)),
    }
    for name, payload in (("psi.request", REQ), ("psi.response", RESP), ("psi.result", RES)):
        assert check_payload(name, payload) == payload


def test_build_refuses_local_mistakes() -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.build_response(
            REQUEST, reblinded=POINTS[:2], blinded=POINTS, permutation=[0, 1, 2], record_count=1
        )
    assert e.value.code == "psi_bad_argument"
    with pytest.raises(InvalidRequestError) as e:
        psi.build_response(REQUEST, reblinded=POINTS, blinded=POINTS, permutation=[0, 1, 1], record_count=1)
    assert e.value.code == "psi_bad_argument"
    with pytest.raises(InvalidRequestError) as e:
        psi.matched_own_indices(RESULT, [0, 1, 2])
    assert e.value.code == "psi_bad_argument"
    with pytest.raises(MalformedError) as e2:
        psi.build_request(session_id=SESSION, round=1, record_count=1, points=[POINTS[0], POINTS[0]])
    assert e2.value.code == "psi_duplicate_point"


# --- limits (dictionary probing) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_record", "used", "max_sessions", "cap", "code"),
    [
        (1, 0, 1, None, None),  # 3 points, 10 declared records: fine
        (1, 1, 1, None, "psi_session_limit"),
        (1, 5, 3, None, "psi_session_limit"),
        (1, 0, 1, 2, "psi_too_many_selectors"),  # the node holds 2 records for this peer
        (0, 0, 1, None, "psi_too_many_selectors"),
    ],
)
def test_request_limits(
    per_record: int, used: int, max_sessions: int, cap: int | None, code: str | None
) -> None:
    def check() -> None:
        psi.check_request_limits(
            REQUEST,
            selectors_per_record=per_record,
            sessions_used=used,
            max_sessions=max_sessions,
            record_cap=cap,
        )

    if code is None:
        check()
        return
    with pytest.raises(psi.LimitError) as e:
        check()
    assert e.value.code == code


def test_declared_record_count_bounds_the_request() -> None:
    small = psi.build_request(session_id=SESSION, round=1, record_count=1, points=POINTS)
    with pytest.raises(psi.LimitError) as e:
        psi.check_request_limits(small, selectors_per_record=2, sessions_used=0, max_sessions=9)
    assert e.value.code == "psi_too_many_selectors"
    psi.check_request_limits(small, selectors_per_record=3, sessions_used=0, max_sessions=9)


def test_response_limits_bound_the_responder_too() -> None:
    psi.check_response_limits(RESPONSE, selectors_per_record=1)  # 2 points, 4 records
    with pytest.raises(psi.LimitError) as e:
        psi.check_response_limits(RESPONSE, selectors_per_record=1, record_cap=1)
    assert e.value.code == "psi_too_many_selectors"


def test_spec_vector() -> None:
    """The worked example in protocol/SPEC.md section 10 ("Test vector")."""
    session_id, selector = bytes(range(16)), b"phone:+40712345678"
    message = psi.DOMAIN + session_id + selector
    assert message.hex() == (
        "70616c65726d6f2f7073692f7631000102030405060708090a0b0c0d0e0f70686f6e653a2b3430373132333435363738"
    )
    assert hashlib.sha512(message).digest()[:32].hex() == (
        "e33f3330213c911b81ca3c6ac6483ce023540848864d26a86385e9e087621a4b"
    )
    (point,) = psi.hash_to_group([selector], session_id=session_id)
    assert point.hex() == "11517d2f67b684da39c3f95b010e85c6ae63aa28b72c26888236ff13b8114249"
    a, b = psi.new_scalar(bytes(range(64))), psi.new_scalar(bytes(range(64, 128)))
    assert a.hex() == "7a3c6282f02d37a05023b60d5428e6cc5961d4c31221937adae0b574e4d07205"
    assert b.hex() == "c96df00be8c42e58f4e1d8f2726694899b090dffc7e136634fc67427b85daf0b"
    (ha,) = psi.blind([point], a)
    (hb,) = psi.blind([point], b)
    assert ha.hex() == "91a33b9310f72c0624c377d8575720cbb275c04d285eead862aa7055883b0a12"
    assert hb.hex() == "a5f50155e1b9c7c6183f32fa74c0cd1f6ea9c6bb1b8848db97595a5b198471f3"
    expected = "606e79034272a5b8c1ae6602050bd5572f4f711b56a78f944c8d42cb447fa122"
    assert psi.blind([ha], b)[0].hex() == psi.blind([hb], a)[0].hex() == expected
