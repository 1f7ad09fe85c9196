"""Combining countries' answers into one table: each country's noisy cells, totals, errors, intervals.

Each country's noise is independent, zero-mean, with the variance of a discrete Gaussian at the
scale it declared (and the requester checked against the loss charged). So a total over
countries is unbiased with variance the sum of theirs. Its 95 % interval is the total ± h: when
the standard error is small (under 4) h is exact, the smallest whole number with P(|noise| ≤ h)
≥ 0.95 under the sum of the countries' discrete Gaussians (at scale 1, ± 1.96 would cover only
88 %); above, the normal approximation ± 1.96 standard errors is exact to well under 0.1 %.
Noisy counts may be negative; they are kept as released, so that sums stay unbiased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.query.privacy import discrete_gaussian_variance
from protocol.query.spec import QuerySpec

Z95 = 1.959963984540054


@dataclass(frozen=True)
class CountryAnswer:
    """One country's verified release."""

    node_id: str
    country: str
    scale: float
    cells: Sequence[int]


EXACT_BELOW = 4.0  # standard errors under this get an exact interval


def standard_error(scale: float) -> float:
    return math.sqrt(discrete_gaussian_variance(scale))


def _pmf(scale: float) -> list[float]:
    """The discrete Gaussian's probabilities on -bound..bound (the rest is below 1e-30)."""
    bound = math.ceil(12 * scale) + 2
    weights = [math.exp(-(x * x) / (2 * scale * scale)) for x in range(-bound, bound + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def _convolve(a: list[float], b: list[float]) -> list[float]:
    out = [0.0] * (len(a) + len(b) - 1)
    for i, p in enumerate(a):
        if p > 1e-30:
            for j, q in enumerate(b):
                out[i + j] += p * q
    return out


def ci95_half_width(scales: Sequence[float]) -> float:
    """h such that the total ± h is a 95 % interval for the sum of discrete Gaussians at ``scales``."""
    positive = [s for s in scales if s > 0]
    se = math.sqrt(sum(discrete_gaussian_variance(s) for s in positive))
    if se >= EXACT_BELOW:
        return Z95 * se
    if not positive:
        return 0.0
    pmf = [1.0]
    for scale in positive:
        pmf = _convolve(pmf, _pmf(scale))
    middle = len(pmf) // 2  # each pmf is symmetric around its centre, so the sum's is too
    covered = pmf[middle]
    h = 0
    while covered < 0.95 and h < middle:
        h += 1
        covered += pmf[middle - h] + pmf[middle + h]
    return float(h)


def combine(spec: QuerySpec, answers: Sequence[CountryAnswer]) -> dict[str, Any]:
    """The combined table of ``answers`` (already verified against ``spec``), JSON-ready.

    ``countries`` lists each answering country with its standard error, which is the same for
    every one of its cells; ``cells`` lists every cell in release order with each country's
    value (in ``countries`` order), the total, its standard error and its 95 % interval.
    """
    countries = [
        {
            "node_id": a.node_id,
            "country": a.country,
            "scale": round(a.scale, 6),
            "se": round(standard_error(a.scale), 4),
            "ci95_half_width": round(ci95_half_width([a.scale]), 3),
        }
        for a in answers
    ]
    total_se = math.sqrt(sum(discrete_gaussian_variance(a.scale) for a in answers))
    half = ci95_half_width([a.scale for a in answers])
    columns = [a.cells for a in answers]
    cells = []
    for index, labels in enumerate(spec.cell_labels()):
        values = [column[index] for column in columns]
        total = sum(values)
        cells.append(
            {
                "labels": list(labels),
                "values": values,
                "total": total,
                "se": round(total_se, 4),
                "ci95": [round(total - half, 2), round(total + half, 2)],
            }
        )
    return {
        "dimensions": list(spec.dimensions),
        "countries": countries,
        "total_se": round(total_se, 4),
        "cells": cells,
    }
