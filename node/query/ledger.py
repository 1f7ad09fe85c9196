"""The privacy ledger: every differentially private release this node makes, charged against caps.

Each release of a joint query is charged, in zCDP rho, to the peer that asked (this node's own id
for its own analysts) in a calendar period (month, quarter or year, UTC). Three caps hold per
period: one per peer (``budget_peer_rho``, or an override in ``budget_peer_caps``), one over all
peers together (``budget_global_rho``) and one per query (``budget_query_rho``). zCDP composes by
addition (Bun & Steinke 2016), so a period's loss is the plain sum of its charges.

Design:

* **Nano-rho.** Amounts are integers of 1e-9 rho (protocol/query/privacy.py), so the sums that
  decide a refusal are exact: ten charges of 0.1 make exactly 1, never 0.9999999999999999, and the
  ledger's totals agree with what people read in the settings.
* **The period lock.** A charge reads what was spent, then writes. Two charges that both read
  before either writes could overspend a cap together, so every charge first locks its period's
  ``budget_periods`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
  already holds the database's write lock). Charges in one period are thereby serialised, and the
  check and the charge are one atomic step. The exchange log's head is locked after it (append
  last), so locks are always taken in one order and cannot deadlock.
* **Released only once charged, in the same transaction.** The answer is stored with its charge
  and leaves only after both committed: a crash in between leaves neither, and a failed draw
  charges nothing. The caller may draw the noise before the lock (``preview`` first says whether
  the cache or the caps would answer instead): drawing a 64,000-cell table takes most of a second,
  and SQLite's write lock should not wait for it. A table drawn for a query that the locked check
  then refuses, or finds in the cache, is thrown away unseen; only released noise spends privacy.
* **The release cache.** A charge row keeps the answer it paid for. Asking the same query
  (same canonical hash) again from the same peer in the same period returns that answer at no
  cost. Fresh noise on a repeat would let a peer average the noise away for free, so a repeat
  must return the same answer; charging it again would punish an honest retry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any, cast

from sqlalchemy import Table, case, func, select
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import OperatorError, PeerRefusal
from node.services import exchange_log
from node.storage.db import dialect_insert
from node.storage.models.queries import BudgetPeriod, PrivacyCharge
from protocol.envelope import HASH_RE, MESSAGE_ID_RE, NODE_ID_RE
from protocol.query.privacy import NANO, InvalidLoss, format_rho

PERIOD_KINDS = ("month", "quarter", "year")
MAX_LISTED_RELEASES = 200
_periods = cast(Table, BudgetPeriod.__table__)
_charges = cast(Table, PrivacyCharge.__table__)


class BudgetRefusal(PeerRefusal):
    """A release refused by the privacy budget: ``budget_exhausted`` or ``query_over_limit``."""

    code = "budget_exhausted"
    http_status = 403


# --- policy and periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetPolicy:
    """The caps of one node, in nano-rho, and the delta at which rho is also shown as epsilon."""

    period: str
    peer_nano: int
    global_nano: int
    query_nano: int
    peer_caps_nano: Mapping[str, int] = field(default_factory=dict)
    delta: float = 1e-7

    def cap_for(self, peer: str) -> int:
        """The cap of ``peer`` per period: its override, else the default per-peer cap."""
        return self.peer_caps_nano.get(peer, self.peer_nano)


def _to_nano(value: float) -> int:
    """A rho from the settings as nano-rho, rounded down (exactly: 0.29 gives 290_000_000)."""
    text = str(value) if isinstance(value, int) else repr(float(value))
    return int((Decimal(text) * NANO).to_integral_value(rounding=ROUND_FLOOR))


def budget_policy(settings: Any) -> BudgetPolicy:
    """The budget policy of a node's settings (``budget_*``), amounts in nano-rho."""
    return BudgetPolicy(
        period=settings.budget_period,
        peer_nano=_to_nano(settings.budget_peer_rho),
        global_nano=_to_nano(settings.budget_global_rho),
        query_nano=_to_nano(settings.budget_query_rho),
        peer_caps_nano={peer: _to_nano(rho) for peer, rho in settings.budget_peer_caps.items()},
        delta=float(settings.budget_delta),
    )


def period_of(kind: str, now: int) -> str:
    """The calendar period (UTC) holding the unix time ``now``: "2026-11", "2026-Q4" or "2026".

    Raises OperatorError for a kind other than month, quarter or year.
    """
    if kind not in PERIOD_KINDS:
        raise OperatorError(f"budget period: expected month, quarter or year, got {kind!r}")
    day = datetime.fromtimestamp(now, tz=UTC)
    if kind == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if kind == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


# --- epsilon --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _zcdp_to_approx() -> Any:
    """A Gaussian measurement with rho = d_in**2 / 2, converted by OpenDP to (epsilon, delta)-DP."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=1.0
    )
    return dp.c.make_zCDP_to_approxDP(gaussian)


@functools.lru_cache(maxsize=4096)
def epsilon_at(rho_nano: int, delta: float) -> float:
    """The epsilon of a total zCDP loss ``rho_nano`` at ``delta``, by OpenDP's (tight) conversion.

    0.0 for no loss. Raises OperatorError for a negative rho or a delta outside (0, 1).
    """
    if rho_nano < 0 or not 0 < delta < 1:
        raise OperatorError("epsilon: needs a rho of at least 0 and a delta between 0 and 1")
    if rho_nano == 0:
        return 0.0
    from opendp.mod import OpenDPException

    try:
        curve = _zcdp_to_approx().map(math.sqrt(2 * rho_nano / NANO))
        return float(curve.epsilon(delta))
    except OpenDPException as e:
        raise OperatorError(f"epsilon: OpenDP could not convert rho {format_rho(rho_nano)}") from e


def _loss_text(nano: int, delta: float) -> str:
    return f"rho {format_rho(nano)} (epsilon {epsilon_at(nano, delta):.3g})"


def _loss(nano: int, delta: float) -> dict[str, Any]:
    return {"rho": format_rho(nano), "epsilon": round(epsilon_at(nano, delta), 4)}


# --- release --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """What ``release`` gave: the answer, whether it came from the cache, and what was charged.

    ``rho_nano`` is what this call charged (0 for a cached answer); ``charge_id`` is the ledger
    row that paid for the answer (the earlier one for a cached answer).
    """

    answer: dict[str, Any]
    cached: bool
    period: str
    charge_id: int
    rho_nano: int


def release(
    node: NodeContext,
    *,
    peer: str,
    query_hash: str,
    spec: dict[str, Any],
    measure: str,
    dimensions: Sequence[str],
    rho_nano: int,
    message_id: str,
    draw: Callable[[], dict[str, Any]],
) -> Release:
    """Charge ``rho_nano`` to ``peer`` and release ``draw()``'s answer, or return the cached one.

    In one transaction: lock the period, return the stored answer if this peer already paid for
    this query in this period, else check the caps, call ``draw()``, store the charge with the
    answer and append a log entry. Raises BudgetRefusal (``query_over_limit``,
    ``budget_exhausted``) without charging or logging anything; an exception from ``draw()``
    propagates and nothing is charged. Raises InvalidLoss for a rho that is not positive and
    OperatorError for a malformed peer id, query hash or message id (before drawing anything).
    """
    _check_release_ids(peer, query_hash, message_id)
    if rho_nano <= 0:
        raise InvalidLoss("rho: a privacy loss must be above zero")
    policy = budget_policy(node.settings)
    now = node.clock()
    period = period_of(policy.period, now)
    with node.db.transaction() as session:
        _lock_period(session, period, now)
        earlier = session.execute(
            select(_charges.c.id, _charges.c.answer).where(
                _charges.c.period == period, _charges.c.peer == peer, _charges.c.query_hash == query_hash
            )
        ).one_or_none()
        if earlier is not None:
            _log(session, now, "budget_release", "cached", peer, message_id, period, 0, query_hash)
            return Release(dict(earlier.answer), True, period, earlier.id, 0)
        _check_caps(session, policy, period, peer, rho_nano)
        answer = draw()
        charge = PrivacyCharge(
            period=period,
            peer=peer,
            query_hash=query_hash,
            rho_nano=rho_nano,
            measure=measure,
            dimensions=",".join(dimensions),
            spec=spec,
            answer=answer,
            message_id=message_id,
            created_at=now,
        )
        session.add(charge)
        session.flush()
        _log(session, now, "budget_charge", "charged", peer, message_id, period, rho_nano, query_hash)
        return Release(answer, False, period, charge.id, rho_nano)


def preview(node: NodeContext, *, peer: str, query_hash: str, rho_nano: int) -> bool:
    """Whether ``release`` would answer from the cache (True), refuse (raises), or charge (False).

    A read without the period lock, so that a caller need not count and draw for a query the
    ledger will refuse or answer from its cache; ``release`` checks again under the lock and its
    verdict is the one that counts. Raises BudgetRefusal as ``release`` would.
    """
    _check_release_ids(peer, query_hash, "")
    policy = budget_policy(node.settings)
    period = period_of(policy.period, node.clock())
    with node.db.read() as session:
        cached = session.execute(
            select(_charges.c.id).where(
                _charges.c.period == period, _charges.c.peer == peer, _charges.c.query_hash == query_hash
            )
        ).first()
        if cached is not None:
            return True
        _check_caps(session, policy, period, peer, rho_nano)
    return False


def _check_release_ids(peer: str, query_hash: str, message_id: str) -> None:
    """Fail before any noise is drawn on what the log would refuse after (values never echoed)."""
    if not NODE_ID_RE.match(peer):
        raise OperatorError("peer: expected a node id", code="invalid_peer")
    if not HASH_RE.match(query_hash):
        raise OperatorError(
            "query_hash: expected 64 lowercase hex digits (SHA-256)", code="invalid_query_hash"
        )
    if message_id and not MESSAGE_ID_RE.match(message_id):
        raise OperatorError("message_id: expected 32 lowercase hex digits", code="invalid_message_id")


def _lock_period(session: Session, period: str, now: int) -> None:
    """Lock the period's row for this transaction, creating it on first use."""
    locked = select(_periods.c.period).where(_periods.c.period == period).with_for_update()
    if session.execute(locked).one_or_none() is not None:
        return
    values = {"period": period, "created_at": now}
    insert = dialect_insert(session, _periods).values(values)
    session.execute(insert.on_conflict_do_nothing(index_elements=["period"]))
    session.execute(locked).one()


def _spent(session: Session, period: str, peer: str) -> tuple[int, int]:
    """(this peer's, everyone's) rho spent in ``period``, in nano-rho."""
    peer_sum = func.sum(case((_charges.c.peer == peer, _charges.c.rho_nano), else_=0))
    row = session.execute(
        select(func.coalesce(peer_sum, 0), func.coalesce(func.sum(_charges.c.rho_nano), 0)).where(
            _charges.c.period == period
        )
    ).one()
    return int(row[0]), int(row[1])


def _check_caps(session: Session, policy: BudgetPolicy, period: str, peer: str, rho_nano: int) -> None:
    delta = policy.delta
    if rho_nano > policy.query_nano:
        raise BudgetRefusal(
            f"this query asks for {_loss_text(rho_nano, delta)} and the most one query may spend is "
            f"{_loss_text(policy.query_nano, delta)}; epsilon at delta {delta:g}",
            code="query_over_limit",
        )
    peer_spent, global_spent = _spent(session, period, peer)
    peer_cap = policy.cap_for(peer)
    if peer_spent + rho_nano > peer_cap or global_spent + rho_nano > policy.global_nano:
        peer_left = max(peer_cap - peer_spent, 0)
        global_left = max(policy.global_nano - global_spent, 0)
        raise BudgetRefusal(
            f"this query spends {_loss_text(rho_nano, delta)}; left in {period}: "
            f"{_loss_text(peer_left, delta)} of {format_rho(peer_cap)} for {peer}, "
            f"{_loss_text(global_left, delta)} of {format_rho(policy.global_nano)} over all peers; "
            f"epsilon at delta {delta:g}",
            code="budget_exhausted",
        )


def _log(
    session: Session,
    now: int,
    kind: str,
    outcome: str,
    peer: str,
    message_id: str,
    period: str,
    rho_nano: int,
    query_hash: str,
) -> None:
    detail = {"period": period, "rho_nano": rho_nano, "query_hash": query_hash}
    exchange_log.append(
        session,
        time=now,
        kind=kind,
        peer=peer,
        message_id=message_id,
        message_type="query.request",
        outcome=outcome,
        detail=detail,
    )


# --- summary --------------------------------------------------------------------------------------


def budget_summary(node: NodeContext, *, peer: str | None = None, now: int | None = None) -> dict[str, Any]:
    """What was spent in the current period (or the one holding ``now``), per peer and in all.

    JSON-ready: rho as decimal strings, epsilon (at the policy's delta) as floats. ``peer``
    narrows the peers and releases to one node id. Raises OperatorError for a malformed peer id.
    """
    if peer is not None and not NODE_ID_RE.match(peer):
        raise OperatorError("peer: expected a node id such as 'nl-focal'", code="invalid_peer")
    policy = budget_policy(node.settings)
    period = period_of(policy.period, node.clock() if now is None else now)
    with node.db.read() as session:
        totals = session.execute(
            select(_charges.c.peer, func.sum(_charges.c.rho_nano), func.count())
            .where(_charges.c.period == period)
            .group_by(_charges.c.peer)
        ).all()
        listed = select(_charges).where(_charges.c.period == period)
        if peer is not None:
            listed = listed.where(_charges.c.peer == peer)
        rows = session.execute(
            listed.order_by(_charges.c.created_at.desc(), _charges.c.id.desc()).limit(MAX_LISTED_RELEASES)
        ).all()
    spent = {row[0]: (int(row[1]), int(row[2])) for row in totals}
    delta = policy.delta
    global_spent = sum(nano for nano, _ in spent.values())
    names = sorted(set(spent) | set(policy.peer_caps_nano)) if peer is None else [peer]
    return {
        "period": period,
        "period_kind": policy.period,
        "delta": delta,
        "caps": {
            "per_peer": _loss(policy.peer_nano, delta),
            "global": _loss(policy.global_nano, delta),
            "per_query": _loss(policy.query_nano, delta),
        },
        "global": {
            "spent": _loss(global_spent, delta),
            "left": _loss(max(policy.global_nano - global_spent, 0), delta),
            "releases": sum(count for _, count in spent.values()),
        },
        "peers": [_peer_entry(policy, name, *spent.get(name, (0, 0))) for name in names],
        "releases": [
            {
                "created_at": row.created_at,
                "peer": row.peer,
                "measure": row.measure,
                "dimensions": [d for d in row.dimensions.split(",") if d],
                "rho": format_rho(row.rho_nano),
                "query_hash": row.query_hash,
                "message_id": row.message_id,
                "charge_id": row.id,
            }
            for row in rows
        ],
    }


def _peer_entry(policy: BudgetPolicy, peer: str, spent: int, releases: int) -> dict[str, Any]:
    cap = policy.cap_for(peer)
    return {
        "peer": peer,
        "cap": _loss(cap, policy.delta),
        "spent": _loss(spent, policy.delta),
        "left": _loss(max(cap - spent, 0), policy.delta),
        "releases": releases,
    }
