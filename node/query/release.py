"""The differentially private release of one table, built and run by OpenDP.

The node builds the measurement itself from a specification it parsed (never from a plan a peer
sent): the discrete Gaussian mechanism on the vector of exact cell counts, with the L2 distance
the specification's contribution bounds give. The scale comes in closed form from the loss asked
(protocol.query.privacy.gaussian_scale, padded by 1e-9); OpenDP's own privacy map then checks it
(``measurement.map(sensitivity) <= rho``) before anything is released, and draws the noise. A
measurement depends only on the number of cells, the sensitivity and rho, so it is built once
per shape and process and kept: building costs 0.2 ms, where OpenDP's scale search
(``binary_search_param``) costs 15-30 ms for this measurement and, per FIELD-NOTES, over a second
for the Polars ``Context`` API (``scripts/bench/query_speed.py`` prints both).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np

from node.errors import NodeError
from protocol.query.messages import MECHANISM, scale_text
from protocol.query.privacy import NANO, format_rho, gaussian_scale
from protocol.query.spec import QuerySpec

_lock = threading.Lock()


class ReleaseError(NodeError):
    code = "release_failed"
    http_status = 500


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@lru_cache(maxsize=512)
def measurement(cells: int, l2_sensitivity: float, rho_nano: int) -> tuple[Any, float]:
    """The OpenDP measurement for a table of ``cells`` counts, and its scale; checked by OpenDP's map."""
    dp = _opendp()
    scale = gaussian_scale(l2_sensitivity, rho_nano)
    built = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int), size=cells), dp.l2_distance(T=float), scale=scale
    )
    if built.map(l2_sensitivity) > rho_nano / NANO:
        raise ReleaseError("OpenDP's privacy map exceeds the loss asked; nothing was released")
    return built, scale


def release_table(spec: QuerySpec, counts: np.ndarray, *, period: str, released_at: int) -> dict[str, Any]:
    """Draw the noisy table of exact ``counts`` for ``spec``: the query.answer payload, less the query id."""
    if counts.shape != (spec.cells,):
        raise ReleaseError("the exact table does not have the specification's shape")
    if counts.size and (counts.min() < 0 or counts.max() >= 2**31 - 2**20):
        raise ReleaseError("an exact count is outside what the mechanism takes")
    with _lock:  # lru_cache builds a missing entry once even when threads race
        built, scale = measurement(spec.cells, spec.l2_sensitivity, spec.rho_nano)
    noisy = built(counts.astype(np.int64).tolist())
    return {
        "spec_hash": spec.hash,
        "period": period,
        "mechanism": MECHANISM,
        "rho": format_rho(spec.rho_nano),
        "scale": scale_text(scale),
        "l2_sensitivity": scale_text(spec.l2_sensitivity),
        "cells": [int(v) for v in noisy],
        "released_at": released_at,
    }
