"""Field-level keyed Bloom filters with random hashing and randomized-response noise (SPEC-encoding 3).

Each person becomes one row of bits: one filter per field (given names, family names, birth date,
citizenship, ...), laid out one after the other, each a whole number of 64-bit words. An item (a
bigram of a name, a date token) sets ``hashes`` positions taken from one BLAKE2b output keyed with
the field's key: independent positions, not double hashing, whose arithmetic structure the
pattern-mining attacks of Christen et al. (2017, 2018) exploit. Then every bit of a present field is
flipped with probability ``flip / 256`` (BLIP, Schnell and Borgs 2016), with the coins drawn from
XChaCha20 keyed by a node-local noise key and the record id, so re-encoding a record gives the same
bits and a peer never sees two noisy copies of one record to average.

The layout (fields, lengths, hashes, noise) is data: both nodes must use the same one, and it
travels in every payload (:mod:`protocol.encoding`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import numpy as np
from numpy.typing import NDArray

from protocol.canonical import expect_type, require_fields
from protocol.encoding import keys
from protocol.errors import InvalidRequestError, MalformedError

KINDS = ("qgram", "token", "date")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
DATE_RE = re.compile(r"^([0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01]))?)?\Z")
MAX_FIELDS = 16
MAX_HASHES = 32
MIN_BITS, MAX_BITS = 64, 16384  # counts of set bits fit in 16 bits
MAX_FLIP = 127  # flip probability flip/256 < 0.5
POSITION_PERSON = b"palermo.position"
RECORD_PERSON = b"palermo.recordid"
HANDLE_SIZE = 16
PAD_START, PAD_END = "^", "$"
WORD = np.dtype("<u8")
_CHUNK = 4096


def _blake2b(data: bytes, *, key: bytes, size: int, person: bytes) -> bytes:
    """Keyed BLAKE2b (RFC 7693). hashlib's is the same function as libsodium's crypto_generichash
    (the tests check it) at a tenth of PyNaCl's per-call cost, which matters once per record."""
    return hashlib.blake2b(data, key=key, digest_size=size, person=person).digest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _layout_error(message: str) -> InvalidRequestError:
    return InvalidRequestError(f"invalid layout: {message}", code="encoding_invalid_layout")


@dataclass(frozen=True)
class FieldSpec:
    """One field's filter: its name, length in bits, positions per item, item kind and key group.

    Fields of one key group share a key, a length and a kind, so their filters can be compared
    crosswise (given names against family names when a clerk swapped them).
    """

    name: str
    bits: int
    hashes: int
    kind: str = "qgram"
    group: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise _layout_error("field name must match [a-z][a-z0-9_]{0,31}")
        if not isinstance(self.group, str) or (self.group and not NAME_RE.match(self.group)):
            raise _layout_error(f"field {self.name}: key group must match [a-z][a-z0-9_]{{0,31}}")
        if not self.group:
            object.__setattr__(self, "group", self.name)
        bits = self.bits
        if not _is_int(bits) or not MIN_BITS <= bits <= MAX_BITS or bits & (bits - 1):
            raise _layout_error(f"field {self.name}: bits must be a power of two from 64 to {MAX_BITS}")
        if not _is_int(self.hashes) or not 1 <= self.hashes <= MAX_HASHES:
            raise _layout_error(f"field {self.name}: hashes must be from 1 to {MAX_HASHES}")
        if self.kind not in KINDS:
            raise _layout_error(f"field {self.name}: kind must be one of {', '.join(KINDS)}")

    @property
    def words(self) -> int:
        return self.bits // 64

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "group": self.group,
            "hashes": self.hashes,
            "kind": self.kind,
            "name": self.name,
        }


@dataclass(frozen=True)
class Layout:
    """The fields of an encoding in row order, and the bit-flip probability ``flip / 256``."""

    fields: tuple[FieldSpec, ...]
    flip: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.fields, tuple) or not 1 <= len(self.fields) <= MAX_FIELDS:
            raise _layout_error(f"a layout has 1 to {MAX_FIELDS} fields")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise _layout_error("field names must be unique")
        for f in self.fields:
            first = next(g for g in self.fields if g.group == f.group)
            if (f.bits, f.hashes, f.kind) != (first.bits, first.hashes, first.kind):
                raise _layout_error(f"fields of key group {f.group} must share bits, hashes and kind")
        if not _is_int(self.flip) or not 0 <= self.flip <= MAX_FLIP:
            raise _layout_error(f"flip must be an integer from 0 to {MAX_FLIP} (a probability in 256ths)")

    @property
    def total_bits(self) -> int:
        return sum(f.bits for f in self.fields)

    @property
    def row_bytes(self) -> int:
        return self.total_bits // 8

    def index(self, name: str) -> int:
        """Position of field ``name`` in the layout; raises InvalidRequestError if absent."""
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise InvalidRequestError(f"the layout has no field {name!r}", code="encoding_unknown_field")

    def word_slice(self, name: str) -> slice:
        """The 64-bit words of field ``name`` within a row."""
        i = self.index(name)
        start = sum(f.words for f in self.fields[:i])
        return slice(start, start + self.fields[i].words)

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [f.to_dict() for f in self.fields], "flip": self.flip}

    @classmethod
    def from_dict(cls, value: Any) -> Layout:
        """Parse a layout object; raises MalformedError (``encoding_wrong_layout``)."""
        try:
            obj = require_fields(value, what="layout", required={"fields", "flip"})
            items = expect_type(obj["fields"], list, what="layout.fields")
            specs = []
            for item in items:
                f = require_fields(
                    item, what="layout field", required={"bits", "group", "hashes", "kind", "name"}
                )
                specs.append(FieldSpec(f["name"], f["bits"], f["hashes"], f["kind"], f["group"]))
            return cls(tuple(specs), obj["flip"])
        except (MalformedError, InvalidRequestError) as e:
            raise MalformedError(f"layout: {e.message}", code="encoding_wrong_layout") from e


DEFAULT_LAYOUT = Layout(
    (
        FieldSpec("given", 512, 16, "qgram", "name"),
        FieldSpec("family", 512, 16, "qgram", "name"),
        FieldSpec("birth", 256, 12, "date"),
        FieldSpec("citizenship", 128, 8, "token"),
        FieldSpec("place", 256, 12, "qgram"),
        FieldSpec("gender", 64, 4, "token"),
        FieldSpec("has_document", 64, 1, "token"),
        FieldSpec("has_phone", 64, 1, "token"),
        FieldSpec("has_email", 64, 1, "token"),
    ),
    flip=2,
)
"""Chosen by measurement (SPEC-encoding 3.6, scripts/bench/encoding_speed.py)."""


@dataclass(frozen=True)
class EncodedBatch:
    """Encoded persons: one row per person.

    ``filters`` holds the rows as little-endian 64-bit words (fields in layout order);
    ``presence`` bit i says field i had a value; ``years`` holds shifted birth years for blocking
    (0 = unknown); ``handles`` are opaque 16-byte row names the owner can map back to its persons.
    """

    layout: Layout
    epoch: int
    filters: NDArray[np.uint64]
    presence: NDArray[np.uint16]
    years: NDArray[np.uint16]
    handles: NDArray[np.uint8]

    def __post_init__(self) -> None:
        n = self.filters.shape[0]
        if self.filters.shape != (n, self.layout.total_bits // 64) or self.filters.dtype != WORD:
            raise InvalidRequestError("filters do not match the layout", code="encoding_wrong_length")
        if self.presence.shape != (n,) or self.years.shape != (n,) or self.handles.shape != (n, HANDLE_SIZE):
            raise InvalidRequestError(
                "presence, years and handles need one entry per row", code="encoding_wrong_length"
            )

    def __len__(self) -> int:
        return int(self.filters.shape[0])

    def field(self, name: str) -> NDArray[np.uint64]:
        """The words of one field, shape (rows, bits / 64) (a view)."""
        return self.filters[:, self.layout.word_slice(name)]

    def present(self, name: str) -> NDArray[np.bool_]:
        """Which rows have a value in field ``name``."""
        bit = (self.presence >> np.uint16(self.layout.index(name))) & np.uint16(1)
        return np.asarray(bit == 1, np.bool_)


def items_of(kind: str, values: Sequence[str]) -> list[str]:
    """The items a field's values put in its filter (SPEC-encoding 3.2).

    ``qgram``: the bigrams of each word (runs of characters other than space) padded with ``^`` and
    ``$``; ``token``: each value; ``date``: ``y``YYYY, and when known ``m``YYYY-MM, ``d``YYYY-MM-DD
    and ``s``YYYY-lo-hi (month and day in either order, so a day/month swap still shares it).
    Raises InvalidRequestError (``encoding_bad_value``) for a value of the wrong form.
    """
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidRequestError("field values must be strings", code="encoding_bad_value")
        if kind == "qgram":
            for word in value.split(" "):
                if word:
                    padded = PAD_START + word + PAD_END
                    out.extend(padded[i : i + 2] for i in range(len(padded) - 1))
        elif kind == "token":
            if value:
                out.append(value)
        else:
            out.extend(_date_items(value))
    return out


def _date_items(value: str) -> list[str]:
    match = DATE_RE.match(value)
    if not match:
        raise InvalidRequestError("a date must be YYYY, YYYY-MM or YYYY-MM-DD", code="encoding_bad_value")
    year, month, day = match.groups()
    items = [f"y{year}"]
    if month:
        items.append(f"m{year}-{month}")
    if month and day:
        low, high = sorted((month, day))
        items += [f"d{year}-{month}-{day}", f"s{year}-{low}-{high}"]
    return items


class Encoder:
    """Encodes persons for one pair key, layout and noise key; caches item positions.

    ``encode`` takes, per person, a mapping from field name to already-normalised values (a field
    that is missing or has no items is absent), the record ids that seed the noise (stable ids:
    the same id always gets the same flips) and optionally birth years for blocking.
    """

    def __init__(self, layout: Layout, *, pair_key: bytes, noise_key: bytes, epoch: int) -> None:
        if not isinstance(noise_key, bytes) or len(noise_key) != keys.KEY_SIZE:
            raise InvalidRequestError("noise key: expected 32 bytes", code="encoding_bad_key")
        self.layout, self.epoch = layout, epoch
        self._record_key = keys.subkey(noise_key, "noise")
        self._group_keys = {f.group: keys.field_key(pair_key, f.group) for f in layout.fields}
        self._year_offset = keys.year_offset(pair_key)
        self._offsets = np.cumsum([0] + [f.bits for f in layout.fields])[:-1].tolist()
        self._items: dict[str, dict[str, NDArray[np.int64]]] = {f.group: {} for f in layout.fields}
        self._values: list[dict[str, NDArray[np.int64]]] = [{} for _ in layout.fields]

    def positions(self, field: FieldSpec, item: str) -> NDArray[np.int64]:
        """The ``hashes`` bit positions of ``item`` in ``field`` (SPEC-encoding 3.3)."""
        cache = self._items[field.group]
        found = cache.get(item)
        if found is None:
            key = self._group_keys[field.group]
            digest = _blake2b(item.encode("utf-8"), key=key, size=2 * field.hashes, person=POSITION_PERSON)
            found = np.frombuffer(digest, dtype="<u2").astype(np.int64) & (field.bits - 1)
            cache[item] = found
        return found

    def _value_positions(self, index: int, value: str) -> NDArray[np.int64]:
        cache = self._values[index]
        found = cache.get(value)
        if found is None:
            field = self.layout.fields[index]
            parts = [self.positions(field, item) for item in items_of(field.kind, [value])]
            found = (
                np.unique(np.concatenate(parts)) + self._offsets[index] if parts else np.empty(0, np.int64)
            )
            if len(cache) < 1_000_000:
                cache[value] = found
        return found

    def encode(
        self,
        records: Sequence[Mapping[str, Sequence[str]]],
        *,
        record_ids: Sequence[str],
        birth_years: Sequence[int | None] | None = None,
    ) -> EncodedBatch:
        """Encode ``records`` (SPEC-encoding 3); raises InvalidRequestError for bad input."""
        n = len(records)
        if len(record_ids) != n or (birth_years is not None and len(birth_years) != n):
            raise InvalidRequestError(
                "record_ids and birth_years need one entry per record", code="encoding_bad_value"
            )
        packed = np.zeros((n, self.layout.row_bytes), np.uint8)
        presence = np.zeros(n, np.uint16)
        digests = self._record_digests(record_ids)
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            packed[start:stop], presence[start:stop] = self._encode_chunk(records[start:stop])
            if self.layout.flip:
                packed[start:stop] ^= self._flips(digests[start:stop], presence[start:stop])
        handles = np.frombuffer(b"".join(d[24:] for d in digests), np.uint8).reshape(n, HANDLE_SIZE)
        return EncodedBatch(
            layout=self.layout,
            epoch=self.epoch,
            filters=packed.view(WORD),
            presence=presence,
            years=self._year_codes(birth_years, n),
            handles=handles.copy(),
        )

    def _record_digests(self, record_ids: Sequence[str]) -> list[bytes]:
        """Per record: 24 bytes of noise nonce, then its 16-byte handle (SPEC-encoding 3.4)."""
        out = []
        for record_id in record_ids:
            if not isinstance(record_id, str) or not record_id:
                raise InvalidRequestError("record ids must be non-empty strings", code="encoding_bad_value")
            out.append(
                _blake2b(record_id.encode("utf-8"), key=self._record_key, size=40, person=RECORD_PERSON)
            )
        return out

    def _encode_chunk(
        self, records: Sequence[Mapping[str, Sequence[str]]]
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint16]]:
        rows: list[int] = []
        parts: list[NDArray[np.int64]] = []
        presence = np.zeros(len(records), np.uint16)
        names = [f.name for f in self.layout.fields]
        for r, record in enumerate(records):
            mask = 0
            for i, name in enumerate(names):
                values = record.get(name)
                if not values:
                    continue
                if isinstance(values, str):
                    raise InvalidRequestError(
                        f"field {name}: expected a list of strings", code="encoding_bad_value"
                    )
                found = [self._value_positions(i, v) for v in values]
                pos = found[0] if len(found) == 1 else np.concatenate(found)  # repeats set a bit twice
                if pos.size:
                    mask |= 1 << i
                    parts.append(pos)
                    rows.append(r)
            presence[r] = mask
        bits = np.zeros((len(records), self.layout.total_bits), np.bool_)
        if parts:
            lengths = np.fromiter((p.size for p in parts), np.int64, len(parts))
            bits[np.repeat(np.asarray(rows, np.int64), lengths), np.concatenate(parts)] = True
        return np.packbits(bits, axis=1, bitorder="little"), presence

    def _flips(self, digests: Sequence[bytes], presence: NDArray[np.uint16]) -> NDArray[np.uint8]:
        """The flip mask of each row (SPEC-encoding 3.4): bit j flips if keystream byte j < flip."""
        total = self.layout.total_bits
        zeros = bytes(total)
        stream = b"".join(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(zeros, None, d[:24], self._record_key)[
                :total
            ]
            for d in digests
        )
        coins = np.frombuffer(stream, np.uint8).reshape(len(digests), total) < self.layout.flip
        for i, f in enumerate(self.layout.fields):  # absent fields stay all zero
            start = self._offsets[i]
            coins[:, start : start + f.bits] &= ((presence >> i) & 1).astype(np.bool_)[:, None]
        return np.packbits(coins, axis=1, bitorder="little")

    def _year_codes(self, birth_years: Sequence[int | None] | None, n: int) -> NDArray[np.uint16]:
        codes = np.zeros(n, np.uint16)
        if birth_years is None:
            return codes
        for r, year in enumerate(birth_years):
            if year is not None:
                if not _is_int(year) or not 1800 <= year <= 2199:
                    raise InvalidRequestError(
                        "birth years must be from 1800 to 2199", code="encoding_bad_value"
                    )
                codes[r] = year - 1799 + self._year_offset
        return codes
