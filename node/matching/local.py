"""This node's side of a round: its persons' features, exact selectors and encodings.

Features (normalised names, dates, selectors) cost a few hundred microseconds a person, so they are
kept in ``person_features`` while the person's content is unchanged, and computed over every core
when many are missing. They never leave the node; the cache is as sensitive as the persons table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from node.matching.engine import encode
from node.matching.features import Features, features
from node.matching.pairing import Pairing
from node.matching.people import content_hashes, person_rows
from node.storage.models.matching import PersonFeatures
from protocol.canonical import b64decode, b64encode
from protocol.encoding import EncodedBatch
from protocol.identifiers import Selector

if TYPE_CHECKING:
    from node.context import NodeContext

CHUNK = 500
PARALLEL_FROM = 4000  # fewer missing persons than this are computed in this process
_WORK_CHUNK = 2000


def to_json(feat: Features) -> str:
    data = {
        "f": feat.fields,
        "y": feat.birth_year,
        "s": [[s.kind, b64encode(s.value), s.form, s.swapped] for s in feat.selectors],
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str) -> Features:
    data = json.loads(text)
    selectors = tuple(
        Selector(kind, b64decode(value, what="selector"), form, swapped)
        for kind, value, form, swapped in data["s"]
    )
    return Features(fields=data["f"], birth_year=data["y"], selectors=selectors)


def _compute(rows: list[dict[str, Any]], country: str) -> list[str]:
    """Worker: the features of ``rows``, as cache JSON (cheap to send back between processes)."""
    return [to_json(features(row, default_region=country)) for row in rows]


def load_features(node: NodeContext, refs: Sequence[str]) -> tuple[list[str], list[Features]]:
    """The persons of ``refs`` still held, in order, and their features (cached or computed now).

    Runs its own transactions: call it outside any other.
    """
    with node.db.read() as session:
        hashes = content_hashes(session, list(refs))
        held = [ref for ref in refs if ref in hashes]
        cached: dict[str, str] = {}
        for start in range(0, len(held), CHUNK):
            query = select(PersonFeatures.person_ref, PersonFeatures.content_hash, PersonFeatures.data).where(
                PersonFeatures.person_ref.in_(held[start : start + CHUNK])
            )
            cached.update(
                {ref: data for ref, digest, data in session.execute(query) if digest == hashes[ref]}
            )
        missing = [ref for ref in held if ref not in cached]
        rows = person_rows(session, missing)
    computed = _compute_all(
        [rows[ref] for ref in missing], node.settings.country, node.settings.match_workers
    )
    fresh = dict(zip(missing, computed, strict=True))
    if fresh:
        with node.db.transaction() as session:
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
    return held, [from_json(cached.get(ref) or fresh[ref]) for ref in held]


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
    """Every distinct exact selector of these persons; two persons may share one (a phone)."""
    owners: dict[bytes, list[tuple[str, str]]] = {}
    for ref, feat in zip(refs, feats, strict=True):
        for selector in feat.selectors:
            holders = owners.setdefault(selector.value, [])
            if (ref, selector.kind) not in holders:
                holders.append((ref, selector.kind))
    values = sorted(owners)
    return SelectorTable(values=values, owners=[owners[v] for v in values])


def bucket(table: SelectorTable, keyed: Pairing, index: int, buckets: int) -> SelectorTable:
    """The part of ``table`` in PSI bucket ``index`` of ``buckets``."""
    if buckets == 1:
        return table
    chosen = [i for i, v in enumerate(table.values) if keyed.bucket(v, buckets) == index]
    return SelectorTable(values=[table.values[i] for i in chosen], owners=[table.owners[i] for i in chosen])


def encode_persons(pairing: Pairing, refs: Sequence[str], feats: Sequence[Features]) -> EncodedBatch:
    """The persons' encodings for this pairing; each row's handle is its record's (``pairing.handles``)."""
    return encode(list(feats), list(refs), pairing.encoder)
