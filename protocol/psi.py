"""Diffie-Hellman private set intersection with X25519 over Curve25519.

Exact selectors (document numbers, phones, e-mails, name + birth-date keys: ``kind``-prefixed
canonical bytes made elsewhere) are hashed to the group, blinded with a per-session secret scalar
and exchanged in three messages (protocol/SPEC.md section 10):

    A → B  psi.request   H(x)^a for A's selectors x, session id, round, counts
    B → A  psi.response  H(x)^ab in A's order; H(y)^b for B's selectors y in a random order
    A → B  psi.result    the positions in B's list whose (H(y)^b)^a equals some H(x)^ab

A learns which of its selectors B holds and |Y|; B learns |X| and, from the result, which of its
own selectors A holds. Scalars, the shuffle seed and selectors are arguments: this module draws
no randomness. The group operations (:mod:`protocol.psi_group`, re-exported here) are libsodium's
through PyNaCl; ``node.services.psi_parallel`` runs them over every core for large sets.

Parsing (``parse_*``) checks shape only. Every received point is checked by :func:`blind` before
it is multiplied or, for points that are only compared, by :func:`check_points`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.canonical import b64decode, b64encode, expect_type, require_fields
from protocol.errors import InvalidRequestError, MalformedError, ProtocolError
from protocol.messages import MessageType, register
from protocol.psi_group import (
    BAD_ARGUMENT,
    BAD_SCALAR,
    COUNT_MISMATCH,
    DOMAIN,
    FIELD_PRIME,
    INVALID_POINT,
    POINT_SIZE,
    SCALAR_SEED_SIZE,
    SCALAR_SIZE,
    SESSION_ID_SIZE,
    SMALL_ORDER_POINTS,
    ZERO_SCALAR,
    blind,
    check_points,
    edwards_to_montgomery,
    hash_blind,
    hash_to_group,
    new_scalar,
    split_points,
    validate_points,
)

__all__ = [
    "BAD_ARGUMENT",
    "BAD_POSITIONS",
    "BAD_SCALAR",
    "COUNT_MISMATCH",
    "DEFAULT_MAX_POINTS",
    "DOMAIN",
    "DUPLICATE_POINT",
    "FIELD_PRIME",
    "INVALID_POINT",
    "MALFORMED",
    "POINT_SIZE",
    "SCALAR_SEED_SIZE",
    "SCALAR_SIZE",
    "SESSION_ID_SIZE",
    "SESSION_LIMIT",
    "SESSION_MISMATCH",
    "SHUFFLE_SEED_SIZE",
    "SMALL_ORDER_POINTS",
    "TOO_MANY_POINTS",
    "TOO_MANY_SELECTORS",
    "ZERO_SCALAR",
    "Intersection",
    "LimitError",
    "PSIRequest",
    "PSIResponse",
    "PSIResult",
    "blind",
    "build_request",
    "build_response",
    "build_result",
    "check_distinct",
    "check_points",
    "check_request_limits",
    "check_response_limits",
    "edwards_to_montgomery",
    "hash_blind",
    "hash_to_group",
    "intersect",
    "matched_own_indices",
    "new_scalar",
    "parse_request",
    "parse_response",
    "parse_result",
    "shuffle_order",
    "split_points",
    "validate_points",
]

SHUFFLE_SEED_SIZE = 32
DEFAULT_MAX_POINTS = 2_000_000
MAX_INT = 2**53 - 1
HEX32_RE = re.compile(r"[0-9a-f]{32}")  # used with fullmatch: no trailing newline

# Stable error codes (ProtocolError.code), listed in protocol/SPEC.md section 10.10 (the group's
# own codes are in protocol.psi_group).
MALFORMED = "psi_malformed"
TOO_MANY_POINTS = "psi_too_many_points"
DUPLICATE_POINT = "psi_duplicate_point"
SESSION_MISMATCH = "psi_session_mismatch"
BAD_POSITIONS = "psi_bad_positions"
TOO_MANY_SELECTORS = "psi_too_many_selectors"
SESSION_LIMIT = "psi_session_limit"

_REQUEST_FIELDS = {"session_id", "round", "record_count", "count", "points"}
_RESPONSE_FIELDS = {
    "session_id",
    "round",
    "record_count",
    "reblinded_count",
    "reblinded",
    "blinded_count",
    "blinded",
}
_RESULT_FIELDS = {"session_id", "round", "blinded_count", "positions"}


class LimitError(ProtocolError):
    """A peer asked for more than this node's PSI policy allows (the dictionary-probing defence)."""

    code = "psi_limit"


# --- ordering and intersection ----------------------------------------------------------------


def shuffle_order(count: int, *, seed: bytes) -> list[int]:
    """A uniformly random permutation of ``range(count)`` derived from a 32-byte random ``seed``.

    Indices are sorted by keyed BLAKE2b of their 8-byte big-endian value, so the caller can keep
    the seed instead of the permutation. Raises InvalidRequestError ``psi_bad_argument``.
    """
    if not isinstance(seed, bytes) or len(seed) != SHUFFLE_SEED_SIZE:
        raise InvalidRequestError("a shuffle seed is 32 random bytes", code=BAD_ARGUMENT)
    if not isinstance(count, int) or not 0 <= count <= MAX_INT:
        raise InvalidRequestError("a shuffle count is a non-negative integer", code=BAD_ARGUMENT)
    keyed = hashlib.blake2b(key=seed, digest_size=16, person=b"palermo/psi/shuf")
    return sorted(range(count), key=lambda i: _prf(keyed, i))


def _prf(keyed: hashlib.blake2b, index: int) -> bytes:
    digest = keyed.copy()
    digest.update(index.to_bytes(8, "big"))
    return bytes(digest.digest())


@dataclass(frozen=True)
class Intersection:
    """Matched pairs: ``own[k]`` (an index into the own list) matched ``theirs[k]``; by own index."""

    own: tuple[int, ...]
    theirs: tuple[int, ...]


def check_distinct(points: Sequence[bytes], *, what: str) -> None:
    """Refuse a list in which the same point occurs twice (MalformedError ``psi_duplicate_point``).

    Parsing refuses repeated encodings. This is for products: two received points that differ by
    a point of small order (u and 1/u, for example) are different encodings of which X25519 gives
    the same product, and only a peer that deviates sends both (SPEC 10.8).
    """
    if len(set(points)) != len(points):
        raise MalformedError(f"{what}: the same point appears twice", code=DUPLICATE_POINT)


def intersect(own_double_blinded: Sequence[bytes], their_double_blinded: Sequence[bytes]) -> Intersection:
    """Pair the indices of equal points in two lists of doubly blinded points."""
    positions = {point: j for j, point in enumerate(their_double_blinded)}
    pairs = [(i, positions[p]) for i, p in enumerate(own_double_blinded) if p in positions]
    return Intersection(own=tuple(i for i, _ in pairs), theirs=tuple(j for _, j in pairs))


# --- limits (the node supplies its policy and its counts; protocol/SPEC.md section 10 "Limits") ---------------


def check_request_limits(
    request: PSIRequest,
    *,
    selectors_per_record: int,
    sessions_used: int,
    max_sessions: int,
    record_cap: int | None = None,
) -> None:
    """Refuse a request larger than the policy allows or beyond the sessions allowed per period.

    The allowance is ``selectors_per_record`` × the requester's record count: the count it declared,
    lowered to ``record_cap`` when the node holds a figure for that peer. ``sessions_used`` counts
    the peer's sessions already accepted in the current period. Raises LimitError
    ``psi_session_limit`` or ``psi_too_many_selectors``.
    """
    if sessions_used >= max_sessions:
        raise LimitError(
            f"the peer already used {sessions_used} of {max_sessions} PSI sessions this period",
            code=SESSION_LIMIT,
        )
    _check_allowance(len(request.points), request.record_count, selectors_per_record, record_cap)


def check_response_limits(
    response: PSIResponse, *, selectors_per_record: int, record_cap: int | None = None
) -> None:
    """The requester's check before it sends the result: the responder's set is bounded the same way."""
    _check_allowance(len(response.blinded), response.record_count, selectors_per_record, record_cap)


def _check_allowance(count: int, declared: int, per_record: int, cap: int | None) -> None:
    records = declared if cap is None else min(declared, cap)
    if count > per_record * records:
        raise LimitError(
            f"{count} selectors exceed the allowance of {per_record} per record for {records} records",
            code=TOO_MANY_SELECTORS,
        )


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PSIRequest:
    """``psi.request``: A's blinded points H(x)^a, in A's order."""

    session_id: bytes
    round: int
    record_count: int
    points: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_header(self.session_id, self.round)
        _check_int(self.record_count, what="record_count", low=0)
        if not self.points:
            raise MalformedError("a PSI request carries at least one point", code=MALFORMED)
        _check_point_list(self.points, what="points")

    def to_payload(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id.hex(),
            "round": self.round,
            "record_count": self.record_count,
            "count": len(self.points),
            "points": b64encode(b"".join(self.points)),
        }


@dataclass(frozen=True)
class PSIResponse:
    """``psi.response``: A's points times b in A's order; B's H(y)^b in shuffled order."""

    session_id: bytes
    round: int
    record_count: int
    reblinded: tuple[bytes, ...]
    blinded: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_header(self.session_id, self.round)
        _check_int(self.record_count, what="record_count", low=0)
        _check_point_list(self.reblinded, what="reblinded")
        _check_point_list(self.blinded, what="blinded")

    def to_payload(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id.hex(),
            "round": self.round,
            "record_count": self.record_count,
            "reblinded_count": len(self.reblinded),
            "reblinded": b64encode(b"".join(self.reblinded)),
            "blinded_count": len(self.blinded),
            "blinded": b64encode(b"".join(self.blinded)),
        }


@dataclass(frozen=True)
class PSIResult:
    """``psi.result``: the positions in B's shuffled list that matched, ascending."""

    session_id: bytes
    round: int
    blinded_count: int
    positions: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_header(self.session_id, self.round)
        _check_int(self.blinded_count, what="blinded_count", low=0)
        previous = -1
        for position in self.positions:
            if isinstance(position, bool) or not isinstance(position, int):
                raise MalformedError("positions: expected integers", code=MALFORMED)
            if not previous < position < self.blinded_count:
                raise MalformedError(
                    f"positions: expected strictly increasing integers below {self.blinded_count}",
                    code=BAD_POSITIONS,
                )
            previous = position

    def to_payload(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id.hex(),
            "round": self.round,
            "blinded_count": self.blinded_count,
            "positions": list(self.positions),
        }


def build_request(*, session_id: bytes, round: int, record_count: int, points: Sequence[bytes]) -> PSIRequest:
    """A's request from its blinded points (ideally in an order unrelated to the selectors)."""
    return PSIRequest(session_id, round, record_count, tuple(points))


def build_response(
    request: PSIRequest,
    *,
    reblinded: Sequence[bytes],
    blinded: Sequence[bytes],
    permutation: Sequence[int],
    record_count: int,
) -> PSIResponse:
    """B's response: ``blinded`` (in B's own order) is sent as ``blinded[permutation[j]]`` at j.

    Raises InvalidRequestError ``psi_bad_argument`` if ``reblinded`` does not answer every point of
    the request or ``permutation`` is not a permutation of ``range(len(blinded))``.
    """
    if len(reblinded) != len(request.points):
        raise InvalidRequestError("the response must re-blind every requested point", code=BAD_ARGUMENT)
    if sorted(permutation) != list(range(len(blinded))):
        raise InvalidRequestError("permutation is not a permutation of the blinded points", code=BAD_ARGUMENT)
    shuffled = tuple(blinded[k] for k in permutation)
    return PSIResponse(request.session_id, request.round, record_count, tuple(reblinded), shuffled)


def build_result(response: PSIResponse, *, positions: Sequence[int]) -> PSIResult:
    """A's result: the matched positions of B's shuffled list (sorted here)."""
    return PSIResult(response.session_id, response.round, len(response.blinded), tuple(sorted(positions)))


def matched_own_indices(result: PSIResult, permutation: Sequence[int]) -> list[int]:
    """B's indices (in its own order) of the selectors A reported as matched, ascending."""
    if len(permutation) != result.blinded_count:
        raise InvalidRequestError("the permutation does not belong to this session", code=BAD_ARGUMENT)
    return sorted(permutation[j] for j in result.positions)


def parse_request(
    payload: Any, *, max_points: int = DEFAULT_MAX_POINTS, what: str = "psi.request"
) -> PSIRequest:
    """Check a ``psi.request`` payload's shape (not the points' group membership).

    Raises MalformedError: ``psi_malformed``, ``psi_too_many_points``, ``psi_count_mismatch``,
    ``psi_duplicate_point``.
    """
    fields = _fields(payload, what, _REQUEST_FIELDS)
    session_id, round_ = _parse_header(fields, what)
    record_count = _check_int(fields["record_count"], what=f"{what}.record_count", low=0)
    points = _parse_points(fields, "count", "points", what=what, max_points=max_points)
    return PSIRequest(session_id, round_, record_count, points)


def parse_response(
    payload: Any, *, request: PSIRequest, max_points: int = DEFAULT_MAX_POINTS, what: str = "psi.response"
) -> PSIResponse:
    """Check a ``psi.response`` payload's shape and that it answers ``request``.

    Raises MalformedError as :func:`parse_request`, and ``psi_session_mismatch`` for another
    session or round, ``psi_count_mismatch`` if it does not re-blind every requested point.
    """
    response = _parse_response(payload, what=what, max_points=max_points)
    _expect_session(response.session_id, response.round, request.session_id, request.round, what)
    if len(response.reblinded) != len(request.points):
        raise MalformedError(
            f"{what}: expected {len(request.points)} re-blinded points, got {len(response.reblinded)}",
            code=COUNT_MISMATCH,
        )
    return response


def _parse_response(payload: Any, *, what: str, max_points: int) -> PSIResponse:
    fields = _fields(payload, what, _RESPONSE_FIELDS)
    session_id, round_ = _parse_header(fields, what)
    record_count = _check_int(fields["record_count"], what=f"{what}.record_count", low=0)
    reblinded = _parse_points(fields, "reblinded_count", "reblinded", what=what, max_points=max_points)
    blinded = _parse_points(fields, "blinded_count", "blinded", what=what, max_points=max_points)
    return PSIResponse(session_id, round_, record_count, reblinded, blinded)


def parse_result(
    payload: Any,
    *,
    session_id: bytes | None = None,
    round: int | None = None,
    blinded_count: int | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    what: str = "psi.result",
) -> PSIResult:
    """Check a ``psi.result`` payload; with the session's values given, that it belongs to it.

    Raises MalformedError ``psi_malformed``, ``psi_too_many_points``, ``psi_bad_positions``,
    ``psi_session_mismatch``, ``psi_count_mismatch``.
    """
    fields = _fields(payload, what, _RESULT_FIELDS)
    got_session, got_round = _parse_header(fields, what)
    if session_id is not None and round is not None:
        _expect_session(got_session, got_round, session_id, round, what)
    count = _check_int(fields["blinded_count"], what=f"{what}.blinded_count", low=0)
    if blinded_count is not None and count != blinded_count:
        raise MalformedError(
            f"{what}: expected blinded_count {blinded_count}, got {count}", code=COUNT_MISMATCH
        )
    positions = _with_code(expect_type, fields["positions"], list, what=f"{what}.positions")
    if len(positions) > max_points:
        raise MalformedError(f"{what}.positions: more than {max_points} positions", code=TOO_MANY_POINTS)
    return PSIResult(got_session, got_round, count, tuple(positions))


# --- field checks -----------------------------------------------------------------------------


def _with_code(check: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a shared canonical.py check, giving its ``malformed`` errors the code ``psi_malformed``."""
    try:
        return check(*args, **kwargs)
    except MalformedError as e:
        raise MalformedError(e.message, code=MALFORMED) from e


def _fields(payload: Any, what: str, required: set[str]) -> dict[str, Any]:
    result: dict[str, Any] = _with_code(require_fields, payload, what=what, required=required)
    return result


def _check_header(session_id: bytes, round_: int) -> None:
    if not isinstance(session_id, bytes) or len(session_id) != SESSION_ID_SIZE:
        raise MalformedError(f"session_id: expected {SESSION_ID_SIZE} bytes", code=MALFORMED)
    _check_int(round_, what="round", low=1)


def _check_int(value: Any, *, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(f"{what}: expected an integer, got {type(value).__name__}", code=MALFORMED)
    if not low <= value <= MAX_INT:
        raise MalformedError(
            f"{what}: expected an integer from {low} to 2**53-1, got {value}", code=MALFORMED
        )
    return value


def _check_point_list(points: tuple[bytes, ...], *, what: str) -> None:
    # Size limits are the parser's (max_points); a local list may be as long as memory allows.
    for point in points:
        if not isinstance(point, bytes) or len(point) != POINT_SIZE:
            raise MalformedError(f"{what}: every point is {POINT_SIZE} bytes", code=MALFORMED)
    check_distinct(points, what=what)


def _parse_header(fields: dict[str, Any], what: str) -> tuple[bytes, int]:
    session_hex = _with_code(expect_type, fields["session_id"], str, what=f"{what}.session_id")
    if not HEX32_RE.fullmatch(session_hex):
        raise MalformedError(f"{what}.session_id: expected 32 lowercase hex digits", code=MALFORMED)
    return bytes.fromhex(session_hex), _check_int(fields["round"], what=f"{what}.round", low=1)


def _expect_session(session_id: bytes, round_: int, want_session: bytes, want_round: int, what: str) -> None:
    if session_id != want_session or round_ != want_round:
        raise MalformedError(f"{what}: belongs to another PSI session or round", code=SESSION_MISMATCH)


def _parse_points(
    fields: dict[str, Any], count_field: str, points_field: str, *, what: str, max_points: int
) -> tuple[bytes, ...]:
    count = _check_int(fields[count_field], what=f"{what}.{count_field}", low=0)
    if count > max_points:
        raise MalformedError(
            f"{what}.{count_field}: {count} points exceed the limit of {max_points}", code=TOO_MANY_POINTS
        )
    text = _with_code(expect_type, fields[points_field], str, what=f"{what}.{points_field}")
    expected_chars = 4 * ((POINT_SIZE * count + 2) // 3)
    if len(text) != expected_chars:  # refuse before decoding anything large
        raise MalformedError(
            f"{what}.{points_field}: expected {count} points ({expected_chars} base64 characters), "
            f"got {len(text)} characters",
            code=COUNT_MISMATCH,
        )
    blob = _with_code(b64decode, text, what=f"{what}.{points_field}")
    return tuple(split_points(blob, count=count))  # duplicates: the dataclass refuses them


# --- registration (protocol/SPEC.md 5.6) ------------------------------------------------------


def _check_request_payload(payload: Any, what: str) -> dict[str, Any]:
    parse_request(payload, what=what)
    return dict(payload)


def _check_response_payload(payload: Any, what: str) -> dict[str, Any]:
    _parse_response(payload, what=what, max_points=DEFAULT_MAX_POINTS)
    return dict(payload)


def _check_result_payload(payload: Any, what: str) -> dict[str, Any]:
    parse_result(payload, what=what)
    return dict(payload)


register(MessageType("psi.request", "request", _check_request_payload, reply_types=("psi.response",)))
register(MessageType("psi.response", "reply", _check_response_payload))
register(MessageType("psi.result", "request", _check_result_payload, reply_types=("psi.handles",)))
