"""The group work of one PSI session, for the round code: one call per side and step.

protocol/SPEC.md section 10.6 in three calls, each of which keeps every core busy:

    A  initiator_points(selectors, ...)      → InitiatorPoints: the request's points and their order
    B  responder_answer(request, own, ...)   → ResponderAnswer: what build_response needs
    A  initiator_matches(response, sent, ...) → which selectors matched, and the result's positions

Scalars and shuffle seeds are arguments (the caller draws them from its random source and drops
the scalar once the call returns). Pools come from :func:`node.services.psi_parallel.point_pool`;
without one, a temporary pool is started for large inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from node.services.psi_parallel import PointTask, parallel_map_points, parallel_map_tasks
from protocol import psi


@dataclass(frozen=True)
class InitiatorPoints:
    """A's blinded selectors in the order sent: ``points[i]`` is ``selectors[order[i]]`` blinded."""

    points: list[bytes] = field(repr=False)
    order: list[int] = field(repr=False)

    def selector_indices(self, positions: Sequence[int]) -> list[int]:
        """The selectors' indices of positions in the request (``Intersection.own``), ascending."""
        return sorted(self.order[i] for i in positions)


@dataclass(frozen=True)
class ResponderAnswer:
    """B's part of a response: A's points times b, and B's own blinded set in B's own order."""

    reblinded: list[bytes] = field(repr=False)
    blinded: list[bytes] = field(repr=False)
    permutation: list[int] = field(repr=False)

    def response(self, request: psi.PSIRequest, *, record_count: int) -> psi.PSIResponse:
        """The ``psi.response`` to send (``blinded`` shuffled by ``permutation``)."""
        return psi.build_response(
            request,
            reblinded=self.reblinded,
            blinded=self.blinded,
            permutation=self.permutation,
            record_count=record_count,
        )


def initiator_points(
    selectors: Sequence[bytes],
    *,
    session_id: bytes,
    scalar: bytes,
    shuffle_seed: bytes,
    pool: ProcessPoolExecutor | None = None,
    workers: int | None = None,
) -> InitiatorPoints:
    """A, starting a session: shuffle the selectors, hash them to the group and blind them by a.

    Raises InvalidRequestError (``psi_bad_argument``, ``psi_bad_scalar``, ``psi_zero_scalar``)
    for bad arguments.
    """
    order = psi.shuffle_order(len(selectors), seed=shuffle_seed)
    shuffled = [selectors[k] for k in order]
    points = parallel_map_points(
        "hash_blind", shuffled, scalar, session_id=session_id, pool=pool, workers=workers
    )
    return InitiatorPoints(points, order)


def responder_answer(
    request: psi.PSIRequest,
    own_selectors: Sequence[bytes],
    *,
    scalar: bytes,
    shuffle_seed: bytes,
    pool: ProcessPoolExecutor | None = None,
    workers: int | None = None,
) -> ResponderAnswer:
    """B, on a request that passed its limits: re-blind A's points and hash and blind its own set.

    Both run in one pass over the pool. The permutation is ``shuffle_order(len(own_selectors),
    seed=shuffle_seed)``, so B can keep the seed until the result arrives. Raises MalformedError
    ``psi_invalid_point`` if any of A's points is not valid, ``psi_duplicate_point`` if two of them
    give the same product (they differ by a point of small order), and InvalidRequestError for a
    bad scalar, seed or selector.
    """
    permutation = psi.shuffle_order(len(own_selectors), seed=shuffle_seed)
    reblinded, blinded = parallel_map_tasks(
        [
            PointTask("blind", request.points, scalar),
            PointTask("hash_blind", own_selectors, scalar, request.session_id),
        ],
        pool=pool,
        workers=workers,
    )
    psi.check_distinct(reblinded, what="psi.request.points")  # two encodings of one element
    return ResponderAnswer(reblinded, blinded, permutation)


def initiator_matches(
    response: psi.PSIResponse,
    sent: InitiatorPoints,
    *,
    scalar: bytes,
    pool: ProcessPoolExecutor | None = None,
    workers: int | None = None,
) -> psi.Intersection:
    """A, on a response that passed its checks and limits: which selectors matched, and where.

    Checks every re-blinded point and multiplies B's points by a, in one pass; returns an
    Intersection whose ``own`` are indices into A's selectors (as given to
    :func:`initiator_points`) and whose ``theirs`` are the matched positions in B's list, to send
    with ``psi.build_result``. Raises MalformedError ``psi_invalid_point`` for any invalid point and
    ``psi_duplicate_point`` if two of B's points give the same product.
    """
    _, theirs = parallel_map_tasks(
        [PointTask("validate", response.reblinded), PointTask("blind", response.blinded, scalar)],
        pool=pool,
        workers=workers,
    )
    psi.check_distinct(theirs, what="psi.response.blinded")  # two encodings of one element
    matched = psi.intersect(response.reblinded, theirs)
    pairs = sorted((sent.order[i], j) for i, j in zip(matched.own, matched.theirs, strict=True))
    return psi.Intersection(own=tuple(i for i, _ in pairs), theirs=tuple(j for _, j in pairs))
