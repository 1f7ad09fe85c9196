"""Combining countries' answers into one table: each country's noisy cells, totals, errors, intervals.

Each country's noise is independent, zero-mean, with the variance of a discrete Gaussian at the
scale it declared (and the requester checked against the loss charged). So a total over
countries is unbiased with variance the sum of theirs, and a 95 % interval is the total ± 1.96
standard errors (a normal approximation; the discrete Gaussian is near normal above scale 1).
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


def standard_error(scale: float) -> float:
    return math.sqrt(discrete_gaussian_variance(scale))


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
            "ci95_half_width": round(Z95 * standard_error(a.scale), 3),
        }
        for a in answers
    ]
    total_se = math.sqrt(sum(discrete_gaussian_variance(a.scale) for a in answers))
    half = Z95 * total_se
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
