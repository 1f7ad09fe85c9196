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
from dataclasses import dataclass

import nacl.bindings
import numpy as np
from numpy.typing import NDArray

from protocol.encoding.bloom import EncodedBatch, Layout
from protocol.errors import InvalidRequestError

Index = NDArray[np.intp]
_ROWS = 32768  # rows unpacked at a time when computing band keys


@dataclass(frozen=True)
class BlockingRule:
    """One LSH rule: ``bands`` bands of ``band_bits`` sampled positions in ``fields`` (one length).

    Separately (``together`` false), each field gives its own band key and the keys of all the
    rule's fields are matched crosswise (a given name against a family name too). Together, bit t
    of a band key comes from field t mod len(fields), so a pair must agree on all the fields at
    once; keys are made for both orders of two fields, so a swap of given and family name still
    matches. With ``years`` the birth-year window applies.
    """

    fields: tuple[str, ...]
    bands: int
    band_bits: int
    together: bool = False
    years: bool = True

    def __post_init__(self) -> None:
        if not 1 <= len(self.fields) <= 2 or not 1 <= self.bands <= 512 or not 8 <= self.band_bits <= 47:
            raise InvalidRequestError(
                "a blocking rule needs 1 or 2 fields, 1-512 bands and 8-47 bits per band",
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

    @classmethod
    def derive(cls, seed: bytes, layout: Layout, rules: Sequence[BlockingRule] = DEFAULT_RULES) -> LshScheme:
        """The scheme for a 32-byte ``seed`` (both sides derive it from the pair key, SPEC-encoding 4.1).

        For rule i, the positions of band j are the first ``band_bits`` positions of the field
        sorted by the 32-bit little-endian numbers of the XChaCha20 key stream with nonce
        (i, j) (ties by position).
        """
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidRequestError("the blocking seed must be 32 bytes", code="encoding_bad_key")
        positions = []
        for i, rule in enumerate(rules):
            bits = {layout.fields[layout.index(name)].bits for name in rule.fields}
            if len(bits) != 1:
                raise InvalidRequestError(
                    "the fields of a blocking rule must have one length", code="encoding_bad_blocking"
                )
            length = bits.pop()
            if rule.band_bits > length:
                raise InvalidRequestError(
                    "a band cannot sample more bits than a field has", code="encoding_bad_blocking"
                )
            bands = []
            for j in range(rule.bands):
                nonce = i.to_bytes(4, "little") + j.to_bytes(4, "little") + bytes(16)
                stream = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
                    bytes(4 * length), None, nonce, seed
                )
                ranks = np.frombuffer(stream[: 4 * length], "<u4")
                bands.append(np.argsort(ranks, kind="stable")[: rule.band_bits])
            positions.append(np.asarray(bands, np.int64))
        return cls(tuple(rules), tuple(positions))

    def keys(self, batch: EncodedBatch, rule: int, order: tuple[str, ...]) -> NDArray[np.int64]:
        """Band keys for one field order, shape (rows, bands): bit t of a key is the bit at the
        band's t-th position of field order[t % len(order)]. -1 for a key with no set bit or when a
        field is absent."""
        pos = self.positions[rule]
        n, bands, width = len(batch), pos.shape[0], pos.shape[1]
        out = np.empty((n, bands), np.int64)
        sampled = np.zeros((min(n, _ROWS), bands, 64), np.uint8)  # padded to 64 bits per key
        for start in range(0, n, _ROWS):
            stop = min(n, start + _ROWS)
            for k, name in enumerate(order):
                bits = np.unpackbits(batch.field(name)[start:stop].view(np.uint8), axis=1, bitorder="little")
                sampled[: stop - start, :, k : width : len(order)] = bits[:, pos[:, k :: len(order)]]
            packed = np.packbits(sampled[: stop - start], axis=2, bitorder="little")
            out[start:stop] = packed.view("<u8")[:, :, 0].astype(np.int64)
        out[out == 0] = -1
        for name in order:
            out[~batch.present(name)] = -1
        return out


class _Sorted:
    """Keys of one side sorted once (negative keys left out), to look many needles up in."""

    def __init__(self, keys: NDArray[np.int64]) -> None:
        rows = np.flatnonzero(keys >= 0)
        order = np.argsort(keys[rows], kind="stable")
        self.keys, self.rows = keys[rows][order], rows[order]

    def pairs(self, needles: NDArray[np.int64]) -> tuple[Index, Index]:
        """All (i, j) with ``needles[i]`` equal to key j (negative needles match nothing)."""
        rows_a = np.flatnonzero(needles >= 0)
        rows_a = rows_a[np.argsort(needles[rows_a], kind="stable")]  # sorted needles search faster
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
    """One band of one rule, side B sorted for the lookups of :func:`candidate_pairs`."""

    def __init__(self, kb: NDArray[np.int64], yb: NDArray[np.uint16], years: bool) -> None:
        self.years = years
        self.by_key = _Sorted(kb)  # a rule without years, or an unknown year on side A
        if years:
            self.by_year = _Sorted(_with_years(kb, yb, 0))
            self.unknown = _Sorted(np.where(yb == 0, kb, -1))

    def pairs(self, ka: NDArray[np.int64], ya: NDArray[np.uint16], window: int) -> list[tuple[Index, Index]]:
        """Pairs agreeing on the key, with years within ``window`` or unknown on either side."""
        if not self.years:
            return [self.by_key.pairs(ka)]
        found = [self.by_year.pairs(_with_years(ka, ya, d)) for d in range(-window, window + 1)]
        unknown_a = ya == 0
        found.append(self.by_key.pairs(np.where(unknown_a, ka, -1)))
        found.append(self.unknown.pairs(np.where(unknown_a, -1, ka)))
        return found


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
    if not isinstance(window, int) or not 0 <= window <= 20:
        raise InvalidRequestError("the birth-year window must be 0 to 20 years", code="encoding_bad_blocking")
    nb = max(1, len(b))
    keys_a, index = [], []
    for r, rule in enumerate(scheme.rules):
        keys_a.append(np.concatenate([scheme.keys(a, r, o) for o in rule.orders]))
        kb = np.concatenate([scheme.keys(b, r, o) for o in rule.orders])
        yb = np.tile(b.years, len(rule.orders))
        index.append([_BandIndex(kb[:, band], yb, rule.years) for band in range(kb.shape[1])])
    for start in range(0, len(a), chunk):
        stop = min(len(a), start + chunk)
        parts: list[NDArray[np.intp]] = []
        for r, rule in enumerate(scheme.rules):
            rows = np.concatenate([np.arange(start, stop) + k * len(a) for k in range(len(rule.orders))])
            ya = a.years[rows % max(1, len(a))]
            for band, band_index in enumerate(index[r]):
                for ia, ib in band_index.pairs(keys_a[r][rows, band], ya, window):
                    parts.append((ia % (stop - start)) * nb + ib % nb)
        codes = _sorted_unique(np.concatenate(parts or [np.zeros(0, np.intp)]))
        yield (codes // nb + start).astype(np.intp), (codes % nb).astype(np.intp)


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
