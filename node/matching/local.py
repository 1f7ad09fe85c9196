"""This node's side of a round: its persons' features, exact selectors and encodings.

Features (normalised names, dates, selectors) cost a few hundred microseconds a person, so they are
kept in ``person_features`` while the person's content is unchanged, and computed over every core
when many are missing. They never leave the node; the cache is as sensitive as the persons table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.orm import Session

from node.matching.engine import encode
from node.matching.features import Features, features
from node.matching.gcpause import gc_paused_call
from node.matching.pairing import Pairing
from node.matching.people import Eligible, content_hashes, eligible, person_rows
from node.storage.models.matching import PersonFeatures
from protocol.canonical import b64decode, b64encode
from protocol.encoding import EncodedBatch
from protocol.identifiers import Selector
from protocol.matching import MAX_SELECTOR_HOLDERS

if TYPE_CHECKING:
    from node.context import NodeContext

CHUNK = 500
SCAN_FROM = 50_000  # from this many persons (a whole register, not a page) the cache is read in one pass
PARALLEL_FROM = 4000  # fewer missing persons than this are computed in this process
_WORK_CHUNK = 2000


def to_json(feat: Features) -> str:
    data = {
        "f": feat.fields,
        "y": feat.birth_year,
        "s": [[s.kind, b64encode(s.value), s.form] for s in feat.selectors],
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str) -> Features:
    data = json.loads(text)
    selectors = tuple(
        Selector(kind, b64decode(value, what="selector"), form) for kind, value, form in data["s"]
    )
    return Features(fields=data["f"], birth_year=data["y"], selectors=selectors)


def _compute(rows: list[dict[str, Any]], country: str) -> list[str]:
    """Worker: the features of ``rows``, as cache JSON (cheap to send back between processes)."""
    return [to_json(features(row, default_region=country)) for row in rows]


@gc_paused_call
def load_features(
    node: NodeContext, persons: Sequence[str] | Sequence[Eligible]
) -> tuple[list[str], list[Features]]:
    """The persons still held, in order, and their features (cached or computed now).

    ``persons`` are references (their content hashes are read here) or :class:`Eligible` persons
    as :func:`~node.matching.people.eligible` gives them. Runs its own transactions: call it
    outside any other.
    """
    held, cached, fresh = _cache(node, persons)
    return held, [from_json(cached.get(ref) or fresh[ref]) for ref in held]


@gc_paused_call
def prepare(node: NodeContext) -> dict[str, Any]:
    """Compute the features of every eligible person not yet cached (or changed since), so that the
    next round starts from the cache. ``palermo match prepare`` and a scheduled job call it."""
    started = time.monotonic()
    with node.db.read() as session:
        persons = eligible(session)
    held, cached, fresh = _cache(node, persons, with_data=False)
    return {
        "persons": len(held),
        "computed": len(fresh),
        "cached": len(cached),
        "seconds": round(time.monotonic() - started, 3),
    }


def _cache(
    node: NodeContext, persons: Sequence[str] | Sequence[Eligible], *, with_data: bool = True
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(persons still held, cached features JSON by person ("" without ``with_data``: only which
    are cached is read), features JSON computed and cached now by person)."""
    known = {p.person_ref: p.content_hash for p in persons if isinstance(p, Eligible)}
    refs = [p.person_ref if isinstance(p, Eligible) else p for p in persons]
    with node.db.read() as session:
        hashes = known if len(known) == len(refs) else content_hashes(session, refs)
        held = [ref for ref in refs if ref in hashes]
        cached = _cached(session, held, hashes, with_data=with_data)
        missing = [ref for ref in held if ref not in cached]
        rows = person_rows(session, missing)
    computed = _compute_all(
        [rows[ref] for ref in missing], node.settings.country, node.settings.match_workers
    )
    fresh = dict(zip(missing, computed, strict=True))
    if fresh:
        from node.jobs import features_lock

        # A round and the scheduled job may fill the cache at once: one writer at a time.
        with features_lock(node.settings.home), node.db.transaction() as session:
            items = list(fresh.items())
            for start in range(0, len(items), CHUNK):
                part = items[start : start + CHUNK]
                session.execute(
                    delete(PersonFeatures).where(PersonFeatures.person_ref.in_([r for r, _ in part]))
                )
                session.execute(
                    insert(PersonFeatures),
                    [{"person_ref": r, "content_hash": hashes[r], "data": d} for r, d in part],
                )
    return held, cached, fresh


def _cached(
    session: Session, held: Sequence[str], hashes: dict[str, str], *, with_data: bool
) -> dict[str, str]:
    """Cached features JSON of the persons in ``held`` whose content is unchanged: many at once by
    one pass over the cache, a few by key."""
    wanted = set(held)
    data = PersonFeatures.data if with_data else literal("")
    columns = (PersonFeatures.person_ref, PersonFeatures.content_hash, data)
    if len(held) >= SCAN_FROM:
        rows: Iterable[Any] = session.execute(select(*columns).execution_options(yield_per=20_000))
    else:
        rows = (
            row
            for start in range(0, len(held), CHUNK)
            for row in session.execute(
                select(*columns).where(PersonFeatures.person_ref.in_(held[start : start + CHUNK]))
            )
        )
    return {ref: data for ref, digest, data in rows if ref in wanted and digest == hashes[ref]}


def _compute_all(rows: list[dict[str, Any]], country: str, workers: int) -> list[str]:
    count = workers or os.cpu_count() or 1
    if len(rows) < PARALLEL_FROM or count == 1:
        return _compute(rows, country)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    chunks = [rows[i : i + _WORK_CHUNK] for i in range(0, len(rows), _WORK_CHUNK)]
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        parts = pool.map(_compute, chunks, [country] * len(chunks))
        return [item for part in parts for item in part]


@dataclass(frozen=True)
class SelectorTable:
    """Distinct selectors in a fixed order, and who holds each: [(person_ref, kind), ...]."""

    values: list[bytes]
    owners: list[list[tuple[str, str]]]


def selector_table(refs: Sequence[str], feats: Sequence[Features]) -> SelectorTable:
    """Every distinct exact selector of these persons; two persons may share one (a phone). A
    selector more than :data:`~protocol.matching.MAX_SELECTOR_HOLDERS` persons hold is left out:
    it says nothing about who someone is, and would pair each of them with each holder abroad."""
    owners: dict[bytes, list[tuple[str, str]]] = {}
    for ref, feat in zip(refs, feats, strict=True):
        for selector in feat.selectors:
            holders = owners.setdefault(selector.value, [])
            if (ref, selector.kind) not in holders:
                holders.append((ref, selector.kind))
    values = sorted(v for v, holders in owners.items() if len(holders) <= MAX_SELECTOR_HOLDERS)
    return SelectorTable(values=values, owners=[owners[v] for v in values])


def split(table: SelectorTable, keyed: Pairing, buckets: int) -> list[SelectorTable]:
    """``table`` split into its ``buckets`` PSI buckets (SPEC 12.2), in bucket order."""
    if buckets == 1:
        return [table]
    parts: list[SelectorTable] = [SelectorTable(values=[], owners=[]) for _ in range(buckets)]
    for value, owners in zip(table.values, table.owners, strict=True):
        part = parts[keyed.bucket(value, buckets)]
        part.values.append(value)
        part.owners.append(owners)
    return parts


def encode_persons(pairing: Pairing, refs: Sequence[str], feats: Sequence[Features]) -> EncodedBatch:
    """The persons' encodings for this pairing; each row's handle is its record's (``pairing.handles``)."""
    return encode(list(feats), list(refs), pairing.encoder)
