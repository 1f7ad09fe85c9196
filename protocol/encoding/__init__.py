"""Keyed Bloom-filter encodings for fuzzy matching of names and dates (protocol/SPEC.md section 11).

``keys`` derives the pair key and its subkeys, ``bloom`` encodes persons into field-level filters,
``similarity`` computes Dice, ``blocking`` finds candidate pairs, ``comparisons`` turns a pair into
agreement levels, ``scoring`` weighs them (Fellegi-Sunter with EM) and ``model`` fits the model of
the reference linkage on two batches. This module holds the wire format of an encoded batch
(SPEC-encoding 5): a JSON header and base64 columns, checked strictly on arrival.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from protocol.canonical import b64decode, b64encode, expect_type, require_fields
from protocol.encoding.bloom import (
    DEFAULT_LAYOUT,
    HANDLE_SIZE,
    WORD,
    EncodedBatch,
    Encoder,
    FieldSpec,
    Layout,
)
from protocol.errors import MalformedError

__all__ = [
    "DEFAULT_LAYOUT",
    "MAX_ROWS",
    "PAYLOAD_FORMAT",
    "EncodedBatch",
    "Encoder",
    "FieldSpec",
    "Layout",
    "batch_from_payload",
    "batch_to_payload",
]

PAYLOAD_FORMAT = "palermo.encodings.v1"
PAYLOAD_FIELDS = frozenset({"epoch", "filters", "format", "handles", "layout", "presence", "rows", "years"})
MAX_ROWS = 16384  # a batch of the default layout is then about 7.5 MiB of base64, under the 16 MiB body cap


def batch_to_payload(batch: EncodedBatch) -> dict[str, Any]:
    """The JSON payload that carries ``batch`` (SPEC-encoding 5): a header and base64 columns."""
    return {
        "epoch": batch.epoch,
        "filters": b64encode(np.ascontiguousarray(batch.filters).astype(WORD, copy=False).tobytes()),
        "format": PAYLOAD_FORMAT,
        "handles": b64encode(np.ascontiguousarray(batch.handles).tobytes()),
        "layout": batch.layout.to_dict(),
        "presence": b64encode(batch.presence.astype("<u2").tobytes()),
        "rows": len(batch),
        "years": b64encode(batch.years.astype("<u2").tobytes()),
    }


def batch_from_payload(payload: Any, *, epoch: int, layout: Layout, max_rows: int = MAX_ROWS) -> EncodedBatch:
    """Check a received payload against the expected epoch and layout and return its batch.

    Raises MalformedError with code ``encoding_malformed``, ``encoding_unsupported_format``,
    ``encoding_wrong_epoch``, ``encoding_wrong_layout``, ``encoding_too_many_rows``,
    ``encoding_bad_base64``, ``encoding_wrong_length``, ``encoding_bad_presence`` or
    ``encoding_duplicate_handle``, in the order of SPEC-encoding 5.2.
    """
    obj, rows = _header(payload, epoch=epoch, layout=layout, max_rows=max_rows)
    columns = {name: _column(obj[name], name) for name in ("filters", "handles", "presence", "years")}
    sizes = {"filters": layout.row_bytes, "handles": HANDLE_SIZE, "presence": 2, "years": 2}
    for name, size in sizes.items():
        if len(columns[name]) != rows * size:
            raise MalformedError(
                f"encodings.{name}: expected {rows * size} bytes for {rows} rows, got {len(columns[name])}",
                code="encoding_wrong_length",
            )
    filters = np.frombuffer(columns["filters"], WORD).reshape(rows, layout.total_bits // 64).copy()
    presence = np.frombuffer(columns["presence"], "<u2").astype(np.uint16)
    _check_presence(filters, presence, layout)
    handles = np.frombuffer(columns["handles"], np.uint8).reshape(rows, HANDLE_SIZE).copy()
    if len(np.unique(handles, axis=0)) != rows:
        raise MalformedError(
            "encodings.handles: a row handle appears twice", code="encoding_duplicate_handle"
        )
    years = np.frombuffer(columns["years"], "<u2").astype(np.uint16)
    return EncodedBatch(layout, epoch, filters, presence, years, handles)


def _header(payload: Any, *, epoch: int, layout: Layout, max_rows: int) -> tuple[dict[str, Any], int]:
    """Checks 1 to 5 of SPEC-encoding 5.2: members and types, format, epoch, layout, row count."""
    try:
        obj = require_fields(payload, what="encodings", required=set(PAYLOAD_FIELDS))
        fmt = expect_type(obj["format"], str, what="encodings.format")
        got_epoch = expect_type(obj["epoch"], int, what="encodings.epoch")
        rows = expect_type(obj["rows"], int, what="encodings.rows")
        for name in ("filters", "handles", "presence", "years"):
            expect_type(obj[name], str, what=f"encodings.{name}")
    except MalformedError as e:
        raise MalformedError(e.message, code="encoding_malformed") from e
    if fmt != PAYLOAD_FORMAT:
        raise MalformedError(
            f"encodings: expected format {PAYLOAD_FORMAT}", code="encoding_unsupported_format"
        )
    if got_epoch != epoch:
        raise MalformedError(
            f"encodings: expected key epoch {epoch}, got {got_epoch}", code="encoding_wrong_epoch"
        )
    if Layout.from_dict(obj["layout"]) != layout:
        raise MalformedError(
            "encodings: the field layout differs from the agreed one", code="encoding_wrong_layout"
        )
    if not 0 <= rows <= max_rows:
        raise MalformedError(
            f"encodings: expected 0 to {max_rows} rows, got {rows}", code="encoding_too_many_rows"
        )
    return obj, int(rows)


def _column(text: str, name: str) -> bytes:
    try:
        return b64decode(text, what=f"encodings.{name}")
    except MalformedError as e:
        raise MalformedError(e.message, code="encoding_bad_base64") from e


def _check_presence(filters: NDArray[np.uint64], presence: NDArray[np.uint16], layout: Layout) -> None:
    if np.any(presence >> np.uint16(len(layout.fields))):
        raise MalformedError(
            "encodings.presence: marks a field the layout does not have", code="encoding_bad_presence"
        )
    for i, f in enumerate(layout.fields):
        absent = (presence >> np.uint16(i)) & np.uint16(1) == 0
        if np.any(filters[absent][:, layout.word_slice(f.name)]):
            raise MalformedError(
                f"encodings: field {f.name} is marked absent but has bits set", code="encoding_bad_presence"
            )
