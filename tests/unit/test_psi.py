"""Diffie-Hellman PSI (protocol/SPEC.md section 10): group operations, messages, bad input, what leaks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import psi
from protocol.canonical import b64encode, canonical_json, parse_json
from protocol.errors import InvalidRequestError, MalformedError, ProtocolError
from protocol.messages import MESSAGE_TYPES, check_payload

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
A24 = 121665  # (486662 - 2) / 4, RFC 7748
SESSION = bytes(range(16))
ED_IDENTITY = bytes.fromhex("01" + "00" * 31)
OTHER_SESSION = bytes(range(16, 32))


def seed(n: int) -> bytes:
    """Fixed 64-byte scalar seeds, so every test is reproducible."""
    return hashlib.sha512(b"test scalar %d" % n).digest()


def u_bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


def on_curve(u: int) -> bool:
    """Euler's criterion for u^3 + 486662 u^2 + u: a square (or 0) means u is on Curve25519."""
    return pow((u**3 + 486662 * u * u + u) % P, (P - 1) // 2, P) in (0, 1)


def ladder(k: int, u: int) -> tuple[int, int]:
    """k·P as projective (X : Z), by the Montgomery ladder of RFC 7748 section 5, without clamping.

    Z = 0 is the identity. (The x-only ladder needs u != 0; u = 0 is handled by :func:`order`.)
    """
    x2, z2, x3, z3, swap = 1, 0, u, 1, 0
    for t in reversed(range(max(k.bit_length(), 1))):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb, da, cb = a * a % P, b * b % P, d * a % P, c * b % P
        e = (aa - bb) % P
        x3, z3 = (da + cb) ** 2 % P, u * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return x2, z2


def x_mul(k: int, u: int) -> int:
    """u(k·P); 0 for the identity."""
    x, z = ladder(k, u)
    return x * pow(z, P - 2, P) % P


def is_identity(k: int, u: int) -> bool:
    return ladder(k, u)[1] == 0


def order(u: int) -> int | None:
    """The order of a point of order dividing 8 (by doubling, which works for u = 0 too)."""
    x, z = u, 1
    for m in range(4):
        if z == 0:
            return 2**m
        aa, bb = (x + z) ** 2 % P, (x - z) ** 2 % P
        e = (aa - bb) % P
        x, z = aa * bb % P, e * (aa + A24 * e) % P
    return None


def clamp(k: bytes) -> int:
    value = int.from_bytes(k, "little")
    return (value & ~7 & ((1 << 254) - 1)) | (1 << 254)


TWIST_L = 2**253 - 55484635554744707071703875581767296995  # the twist has 4 · TWIST_L points


def first_twist_point() -> int:
    """A u on the twist whose point has a part of order 2 or 4 as well as one of order L'."""
    return next(u for u in range(2, 1000) if not on_curve(u) and not is_identity(TWIST_L, u))


A_SCALAR, B_SCALAR = psi.new_scalar(seed(1)), psi.new_scalar(seed(2))
VALID = psi.hash_to_group([b"phone:+40712345678"], session_id=SESSION)[0]
VALID_U = int.from_bytes(VALID, "little")

# Every u of a point of order 2, 4 or 8 on Curve25519 (u = 0, 1 and two of order 8) and its twist
# (u = 0 and p - 1), in canonical form, with the order of its point. (The identity has no u.)
SMALL_ORDER = {
    "order2_zero": (0, 2),
    "order4_one": (1, 4),
    "order8_a": (325606250916557431795983626356110631294008115727848805560023387167927233504, 8),
    "order8_b": (39382357235489614581723060781553021112529911719440698176882885853963445705823, 8),
    "twist_order4_minus_one": (P - 1, 4),
}
BAD_POINTS = {
    **{name: u_bytes(u) for name, (u, _) in SMALL_ORDER.items()},
    "noncanonical_zero": u_bytes(P),  # u = p ≡ 0
    "noncanonical_one": u_bytes(P + 1),
    "noncanonical_base_point": u_bytes(P + 9),  # u = 9, the X25519 base point, plus p
    # X25519 would mask bit 255 (RFC 7748): a second name for a valid point
    "top_bit_set": (VALID_U | 1 << 255).to_bytes(32, "little"),
    "all_ones": b"\xff" * 32,
    "twist": u_bytes(first_twist_point()),  # on the quadratic twist, not on the curve
    "twist_prime_order": u_bytes(x_mul(4, first_twist_point())),  # twist, order L' (no small part)
}


# --- the group ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_ORDER)
def test_small_order_table_is_right(name: str) -> None:
    u, expected = SMALL_ORDER[name]
    assert on_curve(u) == (name != "twist_order4_minus_one")
    assert order(u) == expected
    assert frozenset(u_bytes(v) for v, _ in SMALL_ORDER.values()) == psi.SMALL_ORDER_POINTS


def test_x_mul_is_x25519() -> None:
    """The test ladder agrees with libsodium, so the facts below are about X25519 itself."""
    assert x_mul(clamp(A_SCALAR), VALID_U) == int.from_bytes(psi.blind([VALID], A_SCALAR)[0], "little")


@given(st.binary(min_size=1, max_size=64))
@settings(max_examples=25, deadline=None)
def test_hashed_points_are_in_the_prime_order_subgroup(selector: bytes) -> None:
    point = psi.hash_to_group([selector], session_id=SESSION)[0]
    u = int.from_bytes(point, "little")
    assert psi.check_points([point]) == [point]
    assert is_identity(L, u) and x_mul(L - 1, u) == u  # L·P = O and (L-1)·P = -P, the same u


def test_hash_to_group_is_the_specified_construction() -> None:
    selector = b"doc:ROU:AB123456"
    digest = hashlib.sha512(b"palermo/psi/v2" + SESSION + selector).digest()
    edwards = sodium.crypto_core_ed25519_from_uniform(digest[:32])
    # libsodium's own Edwards-to-Montgomery conversion (which also checks the point) agrees
    assert psi.hash_to_group([selector], session_id=SESSION) == [
        sodium.crypto_sign_ed25519_pk_to_curve25519(edwards)
    ]


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20))
@settings(max_examples=30, deadline=None)
def test_edwards_to_montgomery_in_one_batch_equals_libsodium(uniforms: list[bytes]) -> None:
    # libsodium refuses the identity (r = 0 or p), which edwards_to_montgomery maps to u = 0
    edwards = [e for r in uniforms if (e := sodium.crypto_core_ed25519_from_uniform(r)) != ED_IDENTITY]
    ys = [int.from_bytes(e, "little") & ((1 << 255) - 1) for e in edwards]
    assert psi.edwards_to_montgomery(ys) == [sodium.crypto_sign_ed25519_pk_to_curve25519(e) for e in edwards]


def test_from_uniform_facts_the_spec_states() -> None:
    r = hashlib.sha512(b"r").digest()[:32]
    flipped = r[:31] + bytes([r[31] ^ 0x80])
    edwards = sodium.crypto_core_ed25519_from_uniform(r)
    # bit 255 only chooses the sign of x, which the u-coordinate does not see
    assert sodium.crypto_core_ed25519_from_uniform(flipped) == edwards[:31] + bytes([edwards[31] ^ 0x80])
    y = int.from_bytes(edwards, "little") & ((1 << 255) - 1)
    five = sodium.crypto_core_ed25519_from_uniform(u_bytes(5))
    assert five == sodium.crypto_core_ed25519_from_uniform(u_bytes(P + 5))
    # r = 0 maps to the identity (y = 1), which becomes u = 0: refused by blinding, so a selector
    # whose hash is 0 or p (probability 2^-254) fails closed rather than matching
    assert sodium.crypto_core_ed25519_from_uniform(bytes(32)) == ED_IDENTITY
    assert psi.edwards_to_montgomery([1, y]) == [bytes(32), psi.edwards_to_montgomery([y])[0]]
    with pytest.raises(MalformedError) as e:
        psi.blind(psi.edwards_to_montgomery([1]), A_SCALAR)
    assert e.value.code == "psi_invalid_point"


def test_session_id_separates_domains() -> None:
    one = psi.hash_to_group([b"email:a@b.example"], session_id=SESSION)[0]
    two = psi.hash_to_group([b"email:a@b.example"], session_id=OTHER_SESSION)[0]
    assert one != two
    # nothing from one session matches in another, even with the same scalars
    x = [b"email:a@b.example", b"phone:+31612345678"]
    a_side = psi.blind(psi.blind(psi.hash_to_group(x, session_id=SESSION), A_SCALAR), B_SCALAR)
    b_side = psi.blind(psi.blind(psi.hash_to_group(x, session_id=OTHER_SESSION), B_SCALAR), A_SCALAR)
    assert psi.intersect(a_side, b_side) == psi.Intersection(own=(), theirs=())


scalars = st.binary(min_size=64, max_size=64).filter(lambda k: any(k[:32]))


@given(scalars, scalars, st.binary(max_size=40))
@settings(max_examples=40, deadline=None)
def test_blinding_commutes(seed_a: bytes, seed_b: bytes, selector: bytes) -> None:
    a, b = psi.new_scalar(seed_a), psi.new_scalar(seed_b)
    point = psi.hash_to_group([selector], session_id=SESSION)
    assert psi.blind(psi.blind(point, a), b) == psi.blind(psi.blind(point, b), a)
    assert psi.hash_blind([selector], a, session_id=SESSION) == psi.blind(point, a)
    assert psi.check_points(psi.blind(point, a))


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=300, deadline=None)
def test_check_points_accepts_exactly_canonical_curve_points_not_of_small_order(point: bytes) -> None:
    u = int.from_bytes(point, "little")
    valid = u < P and on_curve(u) and point not in psi.SMALL_ORDER_POINTS
    for attempt in (lambda: psi.check_points([point]), lambda: psi.blind([point], A_SCALAR)):
        try:
            attempt()
            accepted = True
        except MalformedError as e:
            assert e.code == "psi_invalid_point"
            accepted = False
        assert accepted == valid


def test_twist_is_checked_in_either_place_of_a_pair() -> None:
    """The curve check decodes two points per call; a twist point is found in either slot."""
    twist = BAD_POINTS["twist"]
    others = psi.hash_to_group([b"%d" % i for i in range(5)], session_id=SESSION)
    for index in range(6):
        points = [*others[:index], twist, *others[index:]]
        with pytest.raises(MalformedError) as e:
            psi.check_points(points, offset=100)
        assert str(e.value) == f"point {100 + index} is not a valid point of the PSI group"


def test_small_order_part_is_multiplied_away() -> None:
    """P + T for T = (0, 0) has u = 1/u(P): accepted, and blinded exactly as P is (clamping)."""
    mixed = u_bytes(pow(VALID_U, -1, P))
    assert not is_identity(L, int.from_bytes(mixed, "little"))  # not in the prime-order subgroup
    assert psi.check_points([mixed]) == [mixed]
    assert psi.blind([mixed], A_SCALAR) == psi.blind([VALID], A_SCALAR)
    with pytest.raises(MalformedError) as e:
        psi.check_distinct(psi.blind([VALID, mixed], A_SCALAR), what="reblinded")
    assert e.value.code == "psi_duplicate_point"


def test_twist_points_leak_nothing_about_the_scalar_mod_4() -> None:
    """A clamped scalar kills the twist's small part too: R' + T' and R' blind the same."""
    twist_u = first_twist_point()
    assert not on_curve(twist_u) and is_identity(4 * TWIST_L, twist_u)
    prime_part = x_mul(4 * pow(4, -1, TWIST_L), twist_u)  # ≡ 1 mod L', ≡ 0 mod 4
    assert is_identity(TWIST_L, prime_part) and prime_part != twist_u
    assert x_mul(clamp(A_SCALAR), twist_u) == x_mul(clamp(A_SCALAR), prime_part)


# --- bad points and scalars ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_POINTS)
def test_bad_point_is_refused_everywhere(name: str) -> None:
    point = BAD_POINTS[name]
    for attempt in (
        lambda: psi.check_points([VALID, point]),
        lambda: psi.validate_points(VALID + point, count=2),
        lambda: psi.blind([VALID, point], A_SCALAR),
    ):
        with pytest.raises(MalformedError) as e:
            attempt()
        assert e.value.code == "psi_invalid_point"
        assert str(e.value) == "point 1 is not a valid point of the PSI group"


@pytest.mark.parametrize("name", list(SMALL_ORDER))
def test_libsodium_refuses_small_order_points_too(name: str) -> None:
    """The second line of defence: X25519 itself refuses the all-zero result."""
    with pytest.raises(nacl.exceptions.RuntimeError):
        sodium.crypto_scalarmult(A_SCALAR, BAD_POINTS[name])


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
        (bytes(32) + b"\x01" * 32, "psi_zero_scalar"),  # the 32 bytes used are zero
        (bytes(63), "psi_bad_scalar"),
        (bytes(65), "psi_bad_scalar"),
        ("0" * 64, "psi_bad_scalar"),
    ],
    ids=["zero", "zero_first_half", "63_bytes", "65_bytes", "str"],
)
def test_new_scalar_refuses(random64: Any, code: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.new_scalar(random64)
    assert e.value.code == code


@pytest.mark.parametrize(
    ("scalar", "code"),
    [
        (bytes(32), "psi_zero_scalar"),
        (L.to_bytes(32, "little"), "psi_bad_scalar"),  # a version 1 scalar (reduced mod L): not clamped
        (b"\xff" * 32, "psi_bad_scalar"),
        (b"\x01" + bytes(30) + b"\x40", "psi_bad_scalar"),  # a low bit set
        (b"\x08" + bytes(31), "psi_bad_scalar"),  # bit 254 clear
        (bytes(31) + b"\xc0", "psi_bad_scalar"),  # bit 255 set
        (bytes(32) + b"\x00", "psi_bad_scalar"),
        (bytes(31), "psi_bad_scalar"),
    ],
    ids=["zero", "L", "all_ones", "low_bit", "bit_254_clear", "bit_255_set", "33_bytes", "short"],
)
def test_blind_refuses_bad_scalar(scalar: bytes, code: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        psi.blind([VALID], scalar)
    assert e.value.code == code


def test_smallest_clamped_scalar_is_accepted() -> None:
    assert psi.blind([VALID], bytes(31) + b"\x40") == [u_bytes(x_mul(2**254, VALID_U))]


def test_new_scalar_is_the_first_32_bytes_clamped() -> None:
    assert int.from_bytes(psi.new_scalar(seed(7)), "little") == clamp(seed(7)[:32])
    assert psi.new_scalar(seed(7)[:32] + bytes(32)) == psi.new_scalar(seed(7))
    # X25519 clamps what it is given: the stored scalar is already in that form
    assert psi.blind([VALID], psi.new_scalar(seed(7))) == [sodium.crypto_scalarmult(seed(7)[:32], VALID)]


def test_hash_to_group_refuses_bad_arguments() -> None:
    for call in (
        lambda: psi.hash_to_group([b"x"], session_id=bytes(15)),
        lambda: psi.hash_to_group(["x"], session_id=SESSION),  # type: ignore[list-item]  # the wrong type is the point
        lambda: psi.hash_blind([b"x"], A_SCALAR, session_id=bytes(17)),
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
    import protocol.matching  # noqa: F401  (registers psi.handles)

    assert {n: (t.kind, t.reply_types) for n, t in MESSAGE_TYPES.items() if n.startswith("psi.")} == {
        "psi.request": ("request", ("psi.response",)),
        "psi.response": ("reply", ()),
        "psi.result": ("request", ("psi.handles",)),  # B names its row handles (SPEC 12.3)
        "psi.handles": ("reply", ()),  # registered by protocol.matching
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
        "70616c65726d6f2f7073692f7632000102030405060708090a0b0c0d0e0f70686f6e653a2b3430373132333435363738"
    )
    r = hashlib.sha512(message).digest()[:32]
    assert r.hex() == "10d5f822ff8ac3adae530d09821c6b90abc10fa732f108b0cfee38e6b2571205"
    edwards = sodium.crypto_core_ed25519_from_uniform(r)
    assert edwards.hex() == "ab0fd8a8a71ca0aec1a37622272458792cdeb5cbd7ce3b3455fc04f079859e44"
    (point,) = psi.hash_to_group([selector], session_id=session_id)
    assert point.hex() == "d971a5f1611575ecd45d68586a51034485a3efa292f595396c91dc114bfe613a"
    a, b = psi.new_scalar(bytes(range(64))), psi.new_scalar(bytes(range(64, 128)))
    assert a.hex() == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e5f"
    assert b.hex() == "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    (ha,) = psi.blind([point], a)
    (hb,) = psi.blind([point], b)
    assert ha.hex() == "d4cee909aeb755b21b1a12cda8e631fe97b3746363809b3e31289660a18b4146"
    assert hb.hex() == "1a6ef0614c94ec6bf1e1274e1b4f7917be4096e0b32ff6ac2ee0671a8b593662"
    expected = "1053c8c6578ac7935c25614993ed51e2fe6a1e27b04f83d5a02f93ef0b885c6b"
    assert psi.blind([ha], b)[0].hex() == psi.blind([hb], a)[0].hex() == expected
