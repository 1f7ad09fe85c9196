"""Pair keys, field-level Bloom filters, bit-flip noise and the encodings payload (protocol/SPEC.md section 11)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import nacl.public
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import b64encode
from protocol.encoding import (
    DEFAULT_LAYOUT,
    MAX_ROWS,
    EncodedBatch,
    Encoder,
    FieldSpec,
    Layout,
    batch_from_payload,
    batch_to_payload,
    bloom,
    keys,
)
from protocol.encoding.bloom import items_of
from protocol.errors import InvalidRequestError, MalformedError, ProtocolError, VerificationError

NLD = nacl.public.PrivateKey(bytes([2] * 32))
ROU = nacl.public.PrivateKey(bytes([4] * 32))
UKR = nacl.public.PrivateKey(bytes([6] * 32))
IDS = ("nld-police", "rou-anitp")
PERSON = {
    "given": ["olena"],
    "family": ["kovalenko"],
    "birth": ["1998-03-07"],
    "citizenship": ["UKR"],
    "place": ["kyiv"],
}


def pair_key(epoch: int = 1) -> bytes:
    return keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=IDS, epoch=epoch)


def encoder(layout: Layout = DEFAULT_LAYOUT, *, epoch: int = 1, secret: bytes = b"n" * 32) -> Encoder:
    pk = pair_key(epoch)
    return Encoder(layout, pair_key=pk, noise_key=keys.noise_key(secret, pk), epoch=epoch)


def encode(records: list[dict[str, list[str]]], enc: Encoder | None = None, **kw: Any) -> EncodedBatch:
    ids = kw.pop("record_ids", [f"P{i}" for i in range(len(records))])
    return (enc or encoder()).encode(records, record_ids=ids, **kw)


# ---------------------------------------------------------------- keys


def test_pair_key_is_symmetric() -> None:
    mine = keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=("nld-police", "rou-anitp"), epoch=7)
    theirs = keys.pair_key(bytes(ROU), bytes(NLD.public_key), node_ids=("rou-anitp", "nld-police"), epoch=7)
    assert mine == theirs
    assert len(mine) == 32


def test_pair_key_differs_per_epoch_pair_and_ids() -> None:
    base = pair_key(1)
    assert pair_key(2) != base
    other_pair = keys.pair_key(bytes(NLD), bytes(UKR.public_key), node_ids=("nld-police", "ukr-npu"), epoch=1)
    assert other_pair != base
    renamed = keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=("nld-police", "rou-other"), epoch=1)
    assert renamed != base
    assert keys.field_key(base, "name") != keys.field_key(base, "birth")
    assert keys.field_key(base, "name") != keys.field_key(pair_key(2), "name")


def test_noise_key_needs_the_local_secret() -> None:
    pk = pair_key()
    assert keys.noise_key(b"a" * 32, pk) != keys.noise_key(b"b" * 32, pk)
    assert keys.noise_key(b"a" * 32, pk) != keys.noise_key(b"a" * 32, pair_key(2))


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (lambda: keys.pair_key(bytes(NLD), bytes(32), node_ids=IDS, epoch=1), VerificationError, "encoding_bad_peer_key"),
        (lambda: keys.pair_key(bytes(NLD), b"x", node_ids=IDS, epoch=1), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=("nld", "nld"), epoch=1), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=("NLD", "rou"), epoch=1), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=IDS, epoch=-1), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.pair_key(bytes(NLD), bytes(ROU.public_key), node_ids=IDS, epoch=True), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.noise_key(b"short", pair_key()), InvalidRequestError, "encoding_bad_key"),
        (lambda: keys.subkey(b"short", "x"), InvalidRequestError, "encoding_bad_key"),
    ],
    ids=["small_order_peer", "short_peer_key", "same_ids", "bad_id", "negative_epoch", "bool_epoch", "short_secret", "short_pair_key"],
)  # fmt: skip
def test_bad_key_inputs(call: Callable[[], object], error: type[ProtocolError], code: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert info.value.code == code


# ---------------------------------------------------------------- items and layout


def test_items_of_each_kind() -> None:
    assert items_of("qgram", ["ana maria"]) == ["^a", "an", "na", "a$", "^m", "ma", "ar", "ri", "ia", "a$"]
    assert items_of("token", ["UKR", ""]) == ["UKR"]
    assert items_of("date", ["1998-03-07"]) == ["y1998", "m1998-03", "d1998-03-07", "s1998-03-07"]
    assert items_of("date", ["1998-07-03"])[-1] == "s1998-03-07"  # a day/month swap shares it
    assert items_of("date", ["1998-03", "1998"]) == ["y1998", "m1998-03", "y1998"]


@pytest.mark.parametrize("value", ["98-03-07", "1998-13-01", "1998-02-32", "1998-3-7", "1998-03-07\n", "x"])
def test_bad_dates_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        items_of("date", [value])
    assert info.value.code == "encoding_bad_value"


@pytest.mark.parametrize(
    "build",
    [
        lambda: FieldSpec("Given", 512, 16),
        lambda: FieldSpec("given", 500, 16),
        lambda: FieldSpec("given", 32, 16),
        lambda: FieldSpec("given", 512, 0),
        lambda: FieldSpec("given", 512, 33),
        lambda: FieldSpec("given", 512, 16, "soundex"),
        lambda: Layout(()),
        lambda: Layout((FieldSpec("a", 64, 1), FieldSpec("a", 64, 1))),
        lambda: Layout((FieldSpec("a", 64, 1, group="g"), FieldSpec("b", 128, 1, group="g"))),
        lambda: Layout((FieldSpec("a", 64, 1),), flip=128),
        lambda: Layout((FieldSpec("a", 64, 1),), flip=True),  # type: ignore[arg-type]  # a bool is refused
    ],
)
def test_bad_layouts(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build()
    assert info.value.code == "encoding_invalid_layout"


def test_layout_round_trip_and_geometry() -> None:
    assert Layout.from_dict(DEFAULT_LAYOUT.to_dict()) == DEFAULT_LAYOUT
    assert DEFAULT_LAYOUT.total_bits == sum(f.bits for f in DEFAULT_LAYOUT.fields)
    assert DEFAULT_LAYOUT.word_slice("family") == slice(8, 16)


# ---------------------------------------------------------------- encoding


def test_encoding_is_deterministic_for_a_key() -> None:
    first = encode([PERSON, {"given": ["ion"]}])
    again = encode([PERSON, {"given": ["ion"]}], encoder())
    assert np.array_equal(first.filters, again.filters)
    assert np.array_equal(first.handles, again.handles)
    assert first.presence.tolist() == [0b11111, 0b00001]


def test_encoding_differs_across_keys() -> None:
    base = encode([PERSON]).filters
    assert not np.array_equal(base, encode([PERSON], encoder(epoch=2)).filters)
    noiseless = Layout(DEFAULT_LAYOUT.fields, 0)
    assert not np.array_equal(
        encode([PERSON], encoder(noiseless)).filters, encode([PERSON], encoder(noiseless, epoch=2)).filters
    )


def test_hashlib_blake2b_is_libsodium_generichash() -> None:
    """The hot paths hash with hashlib; the spec names libsodium's crypto_generichash: the same."""
    import nacl.bindings

    key, person = bytes(range(32)), b"palermo.position"
    ours = bloom._blake2b(b"^o", key=key, size=32, person=person)
    theirs = nacl.bindings.crypto_generichash_blake2b_salt_personal(
        b"^o", digest_size=32, key=key, person=person
    )
    assert ours == theirs


def test_positions_are_independent_per_item() -> None:
    enc = encoder()
    given = DEFAULT_LAYOUT.fields[0]
    pos = enc.positions(given, "ol")
    assert pos.shape == (given.hashes,)
    assert pos.max() < given.bits
    assert not np.array_equal(pos, enc.positions(given, "le"))


def test_absent_fields_stay_empty_and_unflipped() -> None:
    layout = Layout(DEFAULT_LAYOUT.fields, 100)
    batch = encode([{"family": ["popa"]}], encoder(layout))
    assert batch.presence.tolist() == [0b10]
    for f in layout.fields:
        assert bool(batch.field(f.name).any()) == (f.name == "family")


def test_bit_flip_rate_matches_flip() -> None:
    """With the same keys, the noisy and the clean encoding differ in about flip/256 of the bits of
    present fields, the flips are the same on re-encoding, and differ between record ids."""
    records = [PERSON] * 400
    ids = [f"P{i}" for i in range(400)]
    clean = encode(records, encoder(Layout(DEFAULT_LAYOUT.fields, 0)), record_ids=ids).filters
    noisy_layout = Layout(DEFAULT_LAYOUT.fields, 13)
    noisy = encode(records, encoder(noisy_layout), record_ids=ids).filters
    present_bits = sum(f.bits for f in noisy_layout.fields if f.name in PERSON)  # absent fields stay zero
    flipped = np.bitwise_count(clean ^ noisy).sum() / (400 * present_bits)
    assert abs(flipped - 13 / 256) < 0.004  # 3.5 standard deviations of ~1e6 coins
    assert np.array_equal(noisy, encode(records, encoder(noisy_layout), record_ids=ids).filters)
    assert not np.array_equal(noisy[0], noisy[1])


def test_birth_years_are_shifted_and_unknown_is_zero() -> None:
    batch = encode([PERSON, PERSON], birth_years=[1998, None])
    assert batch.years[1] == 0
    assert batch.years[0] == 1998 - 1799 + keys.year_offset(pair_key())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"records": [{"given": "olena"}]},
        {"records": [{"given": [1]}]},
        {"records": [PERSON], "record_ids": []},
        {"records": [PERSON], "record_ids": [""]},
        {"records": [PERSON], "birth_years": [1700]},
        {"records": [PERSON], "birth_years": []},
    ],
)
def test_bad_encoding_inputs(kwargs: dict[str, Any]) -> None:
    records = kwargs.pop("records")
    with pytest.raises(InvalidRequestError) as info:
        encode(records, **kwargs)
    assert info.value.code == "encoding_bad_value"


def test_golden_vector() -> None:
    """The bits of SPEC-encoding section 7: another implementation must produce exactly these."""
    layout = Layout(
        (FieldSpec("given", 64, 4, "qgram", "name"), FieldSpec("family", 64, 4, "qgram", "name"), FieldSpec("birth", 64, 3, "date")),
        flip=0,
    )  # fmt: skip
    pk = pair_key(1)
    assert pk.hex() == GOLDEN["pair_key"]
    enc = Encoder(layout, pair_key=pk, noise_key=keys.noise_key(b"n" * 32, pk), epoch=1)
    clean = enc.encode(
        [{"given": ["olena"], "family": ["kovalenko"], "birth": ["1998-03-07"]}], record_ids=["P1"]
    )
    assert clean.filters.tobytes().hex() == GOLDEN["row"]
    noisy = Encoder(Layout(layout.fields, 64), pair_key=pk, noise_key=keys.noise_key(b"n" * 32, pk), epoch=1)
    assert (
        noisy.encode([{"given": ["olena"]}], record_ids=["P1"]).filters.tobytes().hex() == GOLDEN["noisy_row"]
    )
    assert enc.positions(layout.fields[0], "^o").tolist() == GOLDEN["positions"]


GOLDEN: dict[str, Any] = {  # also in protocol/SPEC.md section 11, section 7; checked there with hashlib
    "pair_key": "1c67f622fca29d9d3fe5d957068c12cacfdfec2723031ade21721eb2d0af07d3",
    "row": "1c8ca5018030f150968c843489d8fcb18010080e20024114",
    "noisy_row": "00ac85a38231f1d000000000000000000000000000000000",
    "handle": "8a6bae1ed7ebb34d1e9b78482e8703cd",
    "positions": [53, 18, 10, 48],
}


# ---------------------------------------------------------------- payload


def payload(rows: int = 3) -> dict[str, Any]:
    return batch_to_payload(
        encode([PERSON, {"given": ["ion"], "family": ["popa"]}, {"place": ["iasi"]}][:rows])
    )


def test_payload_round_trip() -> None:
    sent = encode([PERSON, {"given": ["ion"]}], birth_years=[1998, None])
    got = batch_from_payload(batch_to_payload(sent), epoch=1, layout=DEFAULT_LAYOUT)
    for name in ("filters", "presence", "years", "handles"):
        assert np.array_equal(getattr(got, name), getattr(sent, name))
    assert got.layout == sent.layout and got.epoch == 1


def _with(**changes: Any) -> dict[str, Any]:
    p = payload()
    p.update(changes)
    return p


def _without(name: str) -> dict[str, Any]:
    p = payload()
    del p[name]
    return p


def _layout_changed() -> dict[str, Any]:
    p = payload()
    p["layout"] = copy.deepcopy(p["layout"])
    p["layout"]["fields"][0]["bits"] = 1024
    return p


def _presence(values: list[int]) -> str:
    return b64encode(np.asarray(values, "<u2").tobytes())


BAD_PAYLOADS = [
    ("not_object", [], "encoding_malformed"),
    ("missing_field", _without("years"), "encoding_malformed"),
    ("unknown_field", _with(extra=1), "encoding_malformed"),
    ("epoch_string", _with(epoch="1"), "encoding_malformed"),
    ("rows_bool", _with(rows=True), "encoding_malformed"),
    ("filters_not_string", _with(filters=[1, 2]), "encoding_malformed"),
    ("other_format", _with(format="palermo.encodings.v2"), "encoding_unsupported_format"),
    ("wrong_epoch", _with(epoch=2), "encoding_wrong_epoch"),
    ("wrong_field_layout", _layout_changed(), "encoding_wrong_layout"),
    ("other_flip", _with(layout={**DEFAULT_LAYOUT.to_dict(), "flip": 3}), "encoding_wrong_layout"),
    ("malformed_layout", _with(layout={"fields": []}), "encoding_wrong_layout"),
    ("too_many_rows", _with(rows=MAX_ROWS + 1), "encoding_too_many_rows"),
    ("negative_rows", _with(rows=-1), "encoding_too_many_rows"),
    ("bad_base64", _with(filters="not base64!"), "encoding_bad_base64"),
    ("unpadded_base64", _with(handles=payload()["handles"].rstrip("=") + "A"), "encoding_bad_base64"),
    ("urlsafe_base64", _with(filters=payload()["filters"].replace("+", "-").replace("/", "_") + "-_=="), "encoding_bad_base64"),
    ("filters_short", _with(filters=b64encode(bytes(3 * DEFAULT_LAYOUT.row_bytes - 8))), "encoding_wrong_length"),
    ("filters_long", _with(filters=b64encode(bytes(3 * DEFAULT_LAYOUT.row_bytes + 8))), "encoding_wrong_length"),
    ("rows_disagree", _with(rows=2), "encoding_wrong_length"),
    ("handles_short", _with(handles=b64encode(bytes(47))), "encoding_wrong_length"),
    ("presence_short", _with(presence=b64encode(bytes(4))), "encoding_wrong_length"),
    ("years_long", _with(years=b64encode(bytes(8))), "encoding_wrong_length"),
    ("presence_unknown_field", _with(presence=_presence([0b11111, (1 << len(DEFAULT_LAYOUT.fields)) | 0b11, 0b10000])), "encoding_bad_presence"),
    ("absent_field_has_bits", _with(presence=_presence([0b11110, 0b11, 0b10000])), "encoding_bad_presence"),
    ("duplicate_handle", _with(handles=b64encode(bytes(48))), "encoding_duplicate_handle"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "bad", "code"), BAD_PAYLOADS, ids=[b[0] for b in BAD_PAYLOADS])
def test_bad_payloads(name: str, bad: Any, code: str) -> None:
    with pytest.raises(MalformedError) as info:
        batch_from_payload(bad, epoch=1, layout=DEFAULT_LAYOUT)
    assert info.value.code == code
    assert "olena" not in info.value.message


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "given": st.lists(st.text("abcdeé ", min_size=1, max_size=12), max_size=2),
                "family": st.lists(st.text("klmnoș", min_size=1, max_size=12), max_size=2),
                "birth": st.lists(st.tuples(st.dates(date(1900, 1, 1), date(2030, 12, 31)), st.sampled_from([4, 7, 10])).map(lambda t: t[0].isoformat()[: t[1]]), max_size=1),
                "citizenship": st.lists(st.sampled_from(["ROU", "NLD", "UKR"]), max_size=2),
            },
        ),
        max_size=12,
    )
)  # fmt: skip
def test_any_batch_round_trips(records: list[dict[str, list[str]]]) -> None:
    sent = encode(records)
    got = batch_from_payload(batch_to_payload(sent), epoch=1, layout=DEFAULT_LAYOUT)
    assert np.array_equal(got.filters, sent.filters) and np.array_equal(got.presence, sent.presence)
    for i, record in enumerate(records):
        for j, f in enumerate(DEFAULT_LAYOUT.fields):
            assert bool(sent.presence[i] >> j & 1) == bool(items_of(f.kind, record.get(f.name, [])))
