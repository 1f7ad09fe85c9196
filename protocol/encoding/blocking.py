"""Blocking: which pairs of encoded persons are worth comparing (SPEC-encoding 4).

Hamming locality-sensitive hashing on the encodings (Durham et al. 2012): a band samples a fixed
set of bit positions of a field, and two persons whose filters agree on every sampled bit of at
least one band become a candidate pair. Names are banded per field and matched crosswise, so a
swap of given and family name still collides; the birth date has bands of its own, which catch
pairs whose names both have typos or do not transliterate alike. For name rules, the birth years
(shifted by a keyed offset, 0 = unknown) must also be within ``window`` years, and an unknown year
is compared with every year. A sampled bit agrees with probability 1 - (Hamming distance / bits),
so a band of r bits catches a pair with probability about (1 - d)^r and b bands with
1 - (1 - (1 - d)^r)^b: near-identical fields almost surely, unrelated ones almost never.

Candidate pairs come out as numpy index arrays, one A-chunk at a time, never as all pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import nacl.bindings
import numpy as np
from numpy.typing import NDArray

from protocol.encoding.bloom import EncodedBatch, Layout
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
_ROWS = 8192  # rows at a time when computing band keys


@dataclass(frozen=True)
class BlockingRule:
    """One LSH rule: ``bands`` bands of ``band_bits`` sampled positions in ``fields`` (one length).

    Separately (``together`` false), each field gives its own band key and the keys of all the
    rule's fields are matched crosswise (a given name against a family name too). Together, bit t
    of a band key comes from field t mod len(fields), so a pair must agree on all the fields at
    once; keys are made for both orders of two fields, so a swap of given and family name still
    matches. With ``years`` the birth-year window applies, and a row of unknown year meets every year
    unless ``unknown`` is false (then another, stricter rule must catch such rows: they would meet
    everyone). With a ``joint`` field, every key also
    holds ``joint_bits`` sampled bits of that field (of any length) after the others, so a pair must
    agree on it too: a name and the birth date at once, where either alone would join too many.
    A key with fewer than ``min_ones`` set bits matches nothing: sparse filters (a year-only date, a
    two-letter name) agree on almost every sampled bit with one another, so their keys would join
    far too many pairs.
    """

    fields: tuple[str, ...]
    bands: int
    band_bits: int
    together: bool = False
    years: bool = True
    unknown: bool = True
    joint: str = ""
    joint_bits: int = 0
    min_ones: int = 1

    def __post_init__(self) -> None:
        if not 1 <= len(self.fields) <= 2 or not 1 <= self.bands <= 512 or not 8 <= self.band_bits <= 47:
            raise InvalidRequestError(
                "a blocking rule needs 1 or 2 fields, 1-512 bands and 8-47 bits per band",
                code="encoding_bad_blocking",
            )
        if not 1 <= self.min_ones <= self.band_bits:
            raise InvalidRequestError(
                "a key needs from 1 to band_bits set bits to match", code="encoding_bad_blocking"
            )
        if bool(self.joint) != (self.joint_bits > 0) or self.band_bits + self.joint_bits > 47:
            raise InvalidRequestError(
                "a joint field needs joint bits, and a key holds at most 47 bits in all",
                code="encoding_bad_blocking",
            )

    @property
    def orders(self) -> list[tuple[str, ...]]:
        """The field orders whose keys are made: each field alone, or both orders together."""
        if not self.together:
            return [(f,) for f in self.fields]
        return [self.fields, self.fields[::-1]] if len(self.fields) == 2 else [self.fields]


DEFAULT_RULES = (
    BlockingRule(("given", "family"), bands=12, band_bits=24),
    BlockingRule(("birth",), bands=16, band_bits=40, years=False),
)


@dataclass(frozen=True)
class LshScheme:
    """Hamming LSH: for each rule and band, the sampled bit positions of the rule's fields.

    A band key is the sampled bits of one field packed into a number (bit t of the key is the
    t-th sampled position); a key with no set bit matches nothing, since empty and sparse filters
    would otherwise all collide.
    """

    rules: tuple[BlockingRule, ...]
    positions: tuple[NDArray[np.int64], ...]  # per rule: (bands, band_bits) positions within a field
    joint: tuple[NDArray[np.int64], ...] = ()  # per rule: (bands, joint_bits) positions in its joint field

    @classmethod
    def derive(cls, seed: bytes, layout: Layout, rules: Sequence[BlockingRule] = DEFAULT_RULES) -> LshScheme:
        """The scheme for a 32-byte ``seed`` (both sides derive it from the pair key, SPEC-encoding 4.1).

        For rule i, the positions of band j are the first ``band_bits`` positions of the field
        sorted by the 32-bit little-endian numbers of the XChaCha20 key stream with nonce
        (i, j) (ties by position); those of its joint field likewise with nonce (i, j, 1).
        """
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidRequestError("the blocking seed must be 32 bytes", code="encoding_bad_key")
        positions, joint = [], []
        for i, rule in enumerate(rules):
            bits = {layout.fields[layout.index(name)].bits for name in rule.fields}
            if len(bits) != 1:
                raise InvalidRequestError(
                    "the fields of a blocking rule must have one length", code="encoding_bad_blocking"
                )
            positions.append(_positions(seed, i, 0, rule.bands, rule.band_bits, bits.pop()))
            length = layout.fields[layout.index(rule.joint)].bits if rule.joint else 64
            joint.append(_positions(seed, i, 1, rule.bands, rule.joint_bits, length))
        return cls(tuple(rules), tuple(positions), tuple(joint))

    def keys(self, batch: EncodedBatch, rule: int, order: tuple[str, ...]) -> NDArray[np.int64]:
        """Band keys for one field order, shape (rows, bands): bit t of a key is the bit at the
        band's t-th position of field order[t % len(order)], then come the joint field's bits.
        -1 for a key with fewer than ``min_ones`` set bits or when a field is absent.

        The keys are one matrix product: the rows' bits (0.0 or 1.0) times a matrix that holds
        2^t at (position, band) for the band's t-th position; float64 adds them exactly (< 2^47).
        """
        joint = self.rules[rule].joint
        names = (*order, joint) if joint else order
        weights = self._weights(batch.layout, rule, order)
        out = np.empty((len(batch), weights.shape[1]), np.int64)
        for start in range(0, len(batch), _ROWS):
            stop = min(len(batch), start + _ROWS)
            fields = [np.ascontiguousarray(batch.field(name)[start:stop]).view(np.uint8) for name in names]
            bits = np.unpackbits(np.concatenate(fields, axis=1), axis=1, bitorder="little")
            out[start:stop] = (bits.astype(np.float64) @ weights).astype(np.int64)
        out[np.bitwise_count(out) < self.rules[rule].min_ones] = -1
        for name in names:
            out[~batch.present(name)] = -1
        return out

    def _weights(self, layout: Layout, rule: int, order: tuple[str, ...]) -> NDArray[np.float64]:
        """The (bits of the fields in order, then the joint field) x bands matrix of :meth:`keys`."""
        pos, extra, joint = self.positions[rule], self.joint[rule], self.rules[rule].joint
        lengths = [layout.fields[layout.index(name)].bits for name in order]
        bands, width = pos.shape
        out = np.zeros((sum(lengths) + (extra.shape[1] and layout.fields[layout.index(joint)].bits), bands))
        offsets = np.cumsum([0, *lengths])
        for j in range(bands):
            for t in range(width):
                out[offsets[t % len(order)] + pos[j, t], j] = 2.0**t
            for t in range(extra.shape[1]):
                out[offsets[-1] + extra[j, t], j] = 2.0 ** (width + t)
        return out


def _positions(seed: bytes, rule: int, part: int, bands: int, count: int, length: int) -> NDArray[np.int64]:
    """``count`` positions in a field of ``length`` bits for each band, from the key stream of nonce
    (rule, band, part)."""
    if count > length:
        raise InvalidRequestError(
            "a band cannot sample more bits than a field has", code="encoding_bad_blocking"
        )
    out = np.zeros((bands, count), np.int64)
    for j in range(bands if count else 0):
        nonce = rule.to_bytes(4, "little") + j.to_bytes(4, "little") + part.to_bytes(1, "little") + bytes(15)
        stream = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            bytes(4 * length), None, nonce, seed
        )
        ranks = np.frombuffer(stream[: 4 * length], "<u4")
        out[j] = np.argsort(ranks, kind="stable")[:count]
    return out


class _Sorted:
    """Keys of one side sorted once (negative keys left out), to look many needles up in."""

    def __init__(self, keys: NDArray[np.int64]) -> None:
        rows = np.flatnonzero(keys >= 0)
        order = np.argsort(keys[rows], kind="stable")
        self.keys, self.rows = keys[rows][order], rows[order].astype(np.int32)

    def pairs(self, needles: NDArray[np.int64]) -> tuple[Index, Index]:
        """All (i, j) with ``needles[i]`` equal to key j (negative needles match nothing)."""
        rows_a = np.flatnonzero(needles >= 0)
        rows_a = rows_a[np.argsort(needles[rows_a])]  # sorted needles search faster
        found = needles[rows_a]
        lo = np.searchsorted(self.keys, found, side="left")
        counts = np.searchsorted(self.keys, found, side="right") - lo
        keep = counts > 0
        rows_a, lo, counts = rows_a[keep], lo[keep], counts[keep]
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        ib = self.rows[np.arange(total) - starts + np.repeat(lo, counts)]
        return np.repeat(rows_a, counts).astype(np.intp), ib.astype(np.intp)


def join(keys_a: NDArray[np.int64], keys_b: NDArray[np.int64]) -> tuple[Index, Index]:
    """All (i, j) with ``keys_a[i] == keys_b[j]``, ignoring negative keys."""
    return _Sorted(keys_b).pairs(keys_a)


def _with_years(keys: NDArray[np.int64], years: NDArray[np.uint16], shift: int) -> NDArray[np.int64]:
    out = keys * 65536 + (years.astype(np.int64) + shift)
    out[(keys < 0) | (years == 0)] = -1
    return out


class _BandIndex:
    """One band of one rule, side B sorted for the lookups of :func:`candidate_pairs` (only the
    lookups the rule needs: by key alone for a rule without years or for rows of unknown year on
    side A, by key and year, and B's rows of unknown year)."""

    def __init__(self, kb: NDArray[np.int64], yb: NDArray[np.uint16], rule: BlockingRule) -> None:
        self.years, self.meet_unknown = rule.years, rule.unknown
        if not rule.years or rule.unknown:
            self.by_key = _Sorted(kb)
        if rule.years:
            self.by_year = _Sorted(_with_years(kb, yb, 0))
        if rule.years and rule.unknown:
            self.unknown = _Sorted(np.where(yb == 0, kb, -1))

    def pairs(self, ka: NDArray[np.int64], ya: NDArray[np.uint16], window: int) -> list[tuple[Index, Index]]:
        """Pairs agreeing on the key, with years within ``window`` or (if the rule lets them meet)
        unknown on either side."""
        if not self.years:
            return [self.by_key.pairs(ka)]
        found = [self.by_year.pairs(_with_years(ka, ya, d)) for d in range(-window, window + 1)]
        if not self.meet_unknown:
            return found
        unknown_a = ya == 0
        found.append(self.by_key.pairs(np.where(unknown_a, ka, -1)))
        found.append(self.unknown.pairs(np.where(unknown_a, -1, ka)))
        return found


class CandidateIndex:
    """Side B's band keys, sorted once, to find the candidates of any rows of A (threads may share
    one index: :meth:`pairs` only reads it)."""

    def __init__(self, b: EncodedBatch, scheme: LshScheme, *, window: int = 1, workers: int = 1) -> None:
        """Index ``b``; ``workers`` threads sort the bands (numpy releases the interpreter lock)."""
        if not isinstance(window, int) or not 0 <= window <= 20:
            raise InvalidRequestError(
                "the birth-year window must be 0 to 20 years", code="encoding_bad_blocking"
            )
        self.scheme, self.window, self.nb = scheme, window, max(1, len(b))
        self.bands: list[list[_BandIndex]] = []
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="index") as pool:
            for r, rule in enumerate(scheme.rules):
                kb = np.concatenate([scheme.keys(b, r, o) for o in rule.orders])
                yb = np.tile(b.years, len(rule.orders))
                bands = pool.map(lambda band, kb=kb, yb=yb, rule=rule: _BandIndex(kb[:, band], yb, rule),
                                 range(kb.shape[1]))  # fmt: skip
                self.bands.append(list(bands))

    def pairs(self, a: EncodedBatch) -> tuple[Index, Index]:
        """The candidate pairs of the rows of ``a`` (indexes into ``a`` and B), sorted and unique."""
        parts: list[NDArray[np.intp]] = []
        for r, rule in enumerate(self.scheme.rules):
            keys_a = np.concatenate([self.scheme.keys(a, r, o) for o in rule.orders])
            ya = np.tile(a.years, len(rule.orders))
            for band, band_index in enumerate(self.bands[r]):
                for ia, ib in band_index.pairs(keys_a[:, band], ya, self.window):
                    parts.append((ia % max(1, len(a))) * self.nb + ib % self.nb)
        codes = _sorted_unique(np.concatenate(parts or [np.zeros(0, np.intp)]))
        return (codes // self.nb).astype(np.intp), (codes % self.nb).astype(np.intp)


def candidate_pairs(
    a: EncodedBatch,
    b: EncodedBatch,
    scheme: LshScheme,
    *,
    window: int = 1,
    chunk: int = 100_000,
) -> Iterator[tuple[Index, Index]]:
    """Candidate pairs (indexes into ``a`` and ``b``), sorted and unique, one chunk of A at a time.

    A pair is a candidate when, for some rule, a field of one and a field of the other share a
    band key and, for rules with years, their birth years are within ``window`` years or either
    is unknown (SPEC-encoding 4.2).
    """
    index = CandidateIndex(b, scheme, window=window)
    for start in range(0, len(a), chunk):
        ia, ib = index.pairs(rows(a, start, min(len(a), start + chunk)))
        yield ia + start, ib


def rows(batch: EncodedBatch, start: int, stop: int) -> EncodedBatch:
    """Rows start to stop of a batch (views, not copies)."""
    return EncodedBatch(
        batch.layout,
        batch.epoch,
        batch.filters[start:stop],
        batch.presence[start:stop],
        batch.years[start:stop],
        batch.handles[start:stop],
    )


def _sorted_unique(codes: NDArray[np.intp]) -> NDArray[np.intp]:
    """Sorted distinct values (a sort and a comparison: faster here than np.unique's hash table)."""
    codes.sort()
    keep = np.ones(codes.shape[0], np.bool_)
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def all_candidate_pairs(
    a: EncodedBatch, b: EncodedBatch, scheme: LshScheme, *, window: int = 1
) -> tuple[Index, Index]:
    """:func:`candidate_pairs` gathered into one pair of arrays (for blocks that fit in memory)."""
    parts = list(candidate_pairs(a, b, scheme, window=window))
    if not parts:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
