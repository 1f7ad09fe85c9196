"""The group of Palermo's PSI: X25519 on Curve25519 (protocol/SPEC.md sections 10.2-10.4).

A point is the 32-byte little-endian u-coordinate of a Curve25519 point (RFC 7748). Selectors are
hashed with libsodium's Elligator 2 map (``crypto_core_ed25519_from_uniform``, whose result is in
the prime-order subgroup) and carried to the u-line by the birational map u = (1 + y) / (1 - y)
of RFC 7748 section 4.1. Blinding is X25519 (``crypto_scalarmult``, the Montgomery ladder) with a
clamped scalar: a multiple of 8, so the small-order part of any input is multiplied away and
(P^a)^b = (P^b)^a holds exactly.

:mod:`protocol.psi` re-exports every public name here; import them from there.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import nacl.bindings as sodium
import nacl.exceptions

from protocol.errors import InvalidRequestError, MalformedError

DOMAIN = b"palermo/psi/v2"
SESSION_ID_SIZE = 16
POINT_SIZE = 32
SCALAR_SIZE = 32
SCALAR_SEED_SIZE = 64

# Stable error codes (ProtocolError.code), listed in protocol/SPEC.md section 10.10.
COUNT_MISMATCH = "psi_count_mismatch"
INVALID_POINT = "psi_invalid_point"
ZERO_SCALAR = "psi_zero_scalar"
BAD_SCALAR = "psi_bad_scalar"
BAD_ARGUMENT = "psi_bad_argument"

FIELD_PRIME = 2**255 - 19
_Y_MASK = 2**255 - 1  # bit 255 of an edwards25519 encoding is the sign of x, not part of y
# The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and its twist, in
# canonical form: the list libsodium's X25519 refuses (non-canonical forms are refused earlier).
SMALL_ORDER_POINTS = frozenset(
    u.to_bytes(POINT_SIZE, "little")
    for u in (
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        FIELD_PRIME - 1,
    )
)
_ZERO = bytes(SCALAR_SIZE)


def hash_to_group(selectors: Sequence[bytes], *, session_id: bytes) -> list[bytes]:
    """Hash each selector to a point of the prime-order subgroup, separated by session.

    ``r = SHA-512(DOMAIN ‖ session_id ‖ selector)[0:32]``; ``y`` = the y-coordinate of
    ``crypto_core_ed25519_from_uniform(r)``; the point is ``u = (1 + y) / (1 - y) mod p``. Raises
    InvalidRequestError (``psi_bad_argument``) for a session id that is not 16 bytes or a selector
    that is not bytes.
    """
    if not isinstance(session_id, bytes) or len(session_id) != SESSION_ID_SIZE:
        raise InvalidRequestError(f"a PSI session id is {SESSION_ID_SIZE} bytes", code=BAD_ARGUMENT)
    prefix = hashlib.sha512(DOMAIN + session_id)
    from_uniform = sodium.crypto_core_ed25519_from_uniform
    ys = []
    for selector in selectors:
        if not isinstance(selector, bytes):
            raise InvalidRequestError("a selector must be bytes", code=BAD_ARGUMENT)
        digest = prefix.copy()
        digest.update(selector)
        ys.append(int.from_bytes(from_uniform(digest.digest()[:32]), "little") & _Y_MASK)
    return edwards_to_montgomery(ys)


def edwards_to_montgomery(ys: Sequence[int]) -> list[bytes]:
    """The u-coordinates ``(1 + y) / (1 - y) mod p`` (RFC 7748 section 4.1) of edwards25519 points.

    One modular inversion for the whole list (Montgomery's trick) instead of one per point. The
    identity (y = 1) has no finite u; it becomes u = 0, a point of small order that :func:`blind`
    refuses, so a selector that hashes to it (probability 2^-254) fails closed.
    """
    return [u.to_bytes(POINT_SIZE, "little") for u in _ratios([1 + y for y in ys], [1 - y for y in ys])]


def _ratios(numerators: Sequence[int], denominators: Sequence[int]) -> list[int]:
    """``n / d mod p`` for each pair; 0 where ``d`` is 0 mod p. One inversion for all."""
    dens = [d % FIELD_PRIME or 1 for d in denominators]
    prefix = []
    acc = 1
    for d in dens:
        prefix.append(acc)
        acc = acc * d % FIELD_PRIME
    inverse = pow(acc, -1, FIELD_PRIME)  # of the product of all denominators
    out = [0] * len(dens)
    for i in range(len(dens) - 1, -1, -1):
        if denominators[i] % FIELD_PRIME:
            out[i] = numerators[i] * prefix[i] % FIELD_PRIME * inverse % FIELD_PRIME
        inverse = inverse * dens[i] % FIELD_PRIME
    return out


def new_scalar(random64: bytes) -> bytes:
    """A per-session secret scalar: the first 32 of 64 random bytes, clamped as X25519 uses it.

    Clamping (RFC 7748 ``decodeScalar25519``) clears bits 0-2 and 255 and sets bit 254. The last
    32 bytes are not used (the size is kept from version 1 so callers need no change). Raises
    InvalidRequestError: ``psi_bad_scalar`` if ``random64`` is not 64 bytes, ``psi_zero_scalar``
    if the bytes used are all zero (a broken random source).
    """
    if not isinstance(random64, bytes) or len(random64) != SCALAR_SEED_SIZE:
        raise InvalidRequestError("a PSI scalar is made from exactly 64 random bytes", code=BAD_SCALAR)
    if hmac.compare_digest(random64[:SCALAR_SIZE], _ZERO):
        raise InvalidRequestError("the random bytes for a PSI scalar are all zero", code=ZERO_SCALAR)
    scalar = bytearray(random64[:SCALAR_SIZE])
    scalar[0] &= 0xF8
    scalar[31] = (scalar[31] & 0x7F) | 0x40
    return bytes(scalar)


def _check_scalar(scalar: bytes) -> None:
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_SIZE:
        raise InvalidRequestError("a PSI scalar is 32 bytes", code=BAD_SCALAR)
    if hmac.compare_digest(scalar, _ZERO):
        raise InvalidRequestError("a PSI scalar must not be zero", code=ZERO_SCALAR)
    # The clamping bits are fixed for every valid scalar: testing them reveals nothing secret.
    if scalar[0] & 0x07 or scalar[31] & 0xC0 != 0x40:
        raise InvalidRequestError("a PSI scalar must be clamped (new_scalar makes one)", code=BAD_SCALAR)


def blind(points: Sequence[bytes], scalar: bytes, *, offset: int = 0) -> list[bytes]:
    """X25519 of each point with ``scalar`` (``crypto_scalarmult``), in order.

    Every point is checked as :func:`check_points` checks it, and an all-zero result (which only
    a point of small order gives) is refused too; such a point raises MalformedError
    ``psi_invalid_point`` naming its index (``offset`` + position). A bad scalar raises
    InvalidRequestError (``psi_bad_scalar``, ``psi_zero_scalar``).
    """
    _check_scalar(scalar)
    check_points(points, offset=offset)
    multiply = sodium.crypto_scalarmult
    blinded = []
    for i, point in enumerate(points):
        try:
            blinded.append(multiply(scalar, point))
        except nacl.exceptions.RuntimeError as e:  # libsodium refuses an all-zero result
            raise invalid_point(offset + i) from e
    return blinded


def hash_blind(
    selectors: Sequence[bytes], scalar: bytes, *, session_id: bytes, offset: int = 0
) -> list[bytes]:
    """:func:`hash_to_group` then :func:`blind` for this node's own selectors, in one pass.

    The hashed points are on the curve by construction, so the checks :func:`blind` makes of a
    received point are skipped; libsodium still refuses the all-zero result a selector hashing to
    the identity would give (``psi_invalid_point``, index ``offset`` + position). Raises as the two
    functions do.
    """
    _check_scalar(scalar)
    multiply = sodium.crypto_scalarmult
    blinded = []
    for i, point in enumerate(hash_to_group(selectors, session_id=session_id)):
        try:
            blinded.append(multiply(scalar, point))
        except nacl.exceptions.RuntimeError as e:
            raise invalid_point(offset + i) from e
    return blinded


def check_points(points: Sequence[bytes], *, offset: int = 0) -> list[bytes]:
    """Return ``points`` if every one is a valid point (protocol/SPEC.md section 10.2).

    Valid: 32 bytes, a canonical u below p = 2^255 - 19, not one of the points of small order,
    and on Curve25519 rather than on its quadratic twist. Raises MalformedError
    ``psi_invalid_point`` naming the first bad index (``offset`` + position).
    """
    us = []
    for i, point in enumerate(points):
        if not isinstance(point, bytes) or len(point) != POINT_SIZE or point in SMALL_ORDER_POINTS:
            raise invalid_point(offset + i)
        u = int.from_bytes(point, "little")
        if u >= FIELD_PRIME:
            raise invalid_point(offset + i)
        us.append(u)
    twisted = _first_off_curve(us)
    if twisted is not None:
        raise invalid_point(offset + twisted)
    return list(points)


def _first_off_curve(us: Sequence[int]) -> int | None:
    """Index of the first u on the twist (u^3 + 486662 u^2 + u not a square), None if there is none.

    u is on Curve25519 exactly when the edwards25519 point with y = (u - 1) / (u + 1) exists
    (the birational map of RFC 7748 section 4.1), which libsodium's point decoding tests: a y with
    no x is refused by ``crypto_core_ed25519_add``. Two points are decoded per call, and a pair
    that fails is tried one by one. The us here are not small-order, so u + 1 != 0.
    """
    add = sodium.crypto_core_ed25519_add
    ys = [y.to_bytes(POINT_SIZE, "little") for y in _ratios([u - 1 for u in us], [u + 1 for u in us])]
    for start in range(0, len(ys), 2):
        pair = ys[start : start + 2]
        try:
            add(pair[0], pair[-1])  # the last of an odd list is paired with itself
        except nacl.exceptions.RuntimeError:
            for i, y in enumerate(pair):
                try:
                    add(y, y)
                except nacl.exceptions.RuntimeError:
                    return start + i
    return None


def split_points(blob: bytes, *, count: int) -> list[bytes]:
    """Cut concatenated 32-byte points; raise MalformedError ``psi_count_mismatch`` on a bad length."""
    if len(blob) != POINT_SIZE * count:
        raise MalformedError(
            f"expected {count} points ({POINT_SIZE * count} bytes), got {len(blob)} bytes",
            code=COUNT_MISMATCH,
        )
    return [blob[i : i + POINT_SIZE] for i in range(0, len(blob), POINT_SIZE)]


def validate_points(blob: bytes, *, count: int) -> list[bytes]:
    """Split ``blob`` into ``count`` points and check each (``psi_count_mismatch``, ``psi_invalid_point``)."""
    return check_points(split_points(blob, count=count))


def invalid_point(index: int) -> MalformedError:
    """The error for a point that is not valid, naming its index only."""
    return MalformedError(f"point {index} is not a valid point of the PSI group", code=INVALID_POINT)
