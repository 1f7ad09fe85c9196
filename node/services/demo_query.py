"""The joint-query step of ``palermo demo``: one query over the three countries, beside the true counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.context import NodeContext

Say = Callable[[str], None]

DEMO_SPEC = {
    "title": "Victims by type of exploitation and sex",
    "measure": "victims",
    "dimensions": ["exploitation_group", "sex"],
    "privacy": {"rho": "0.05"},
}


def run(nodes: dict[str, NodeContext], say: Say, *, step: int) -> dict[str, Any]:
    """nld's analyst asks every country; each answers with its own noisy table, charged to nld."""
    from node.cli.query import render_run
    from node.query.count import count_cells
    from node.query.frame import current_frame
    from node.query.ledger import budget_summary
    from node.query.runs import run_query
    from protocol.query.spec import parse_spec

    asker = nodes["nld"]
    spec = parse_spec(DEMO_SPEC)
    say(
        f"\n{step}. A joint query with differential privacy, asked by nld of every country: {spec.describe()}"
    )
    say("   Each node counts its own records, adds discrete Gaussian noise with OpenDP, charges nld's budget")
    say("   in its ledger and signs its answer; nld checks each answer and totals the countries.")
    result = run_query(asker, spec, "all", by="demo")
    # The demo generated every country's records, so it can show the true totals beside the noisy ones.
    truth = [0] * spec.cells
    for node in nodes.values():
        for i, value in enumerate(count_cells(current_frame(node), spec).tolist()):
            truth[i] += value
    for line in render_run(result, max_rows=0, truth=truth).splitlines():
        say(f"   {line}")
    errors = [abs(c["total"] - t) for c, t in zip(result["table"]["cells"], truth, strict=True)]
    inside = sum(
        1 for c, t in zip(result["table"]["cells"], truth, strict=True) if c["ci95"][0] <= t <= c["ci95"][1]
    )
    say(f"   the true total is inside the 95 % interval in {inside} of {len(truth)} cells")
    again = run_query(asker, spec, "all", by="demo")
    cached = sum(1 for o in again["outcomes"] if o["cached"])
    say(f"   asked again: {cached} of {len(again['outcomes'])} countries answered from their release cache,")
    say("   with the same noise and at no cost (asking twice never gives fresh noise to average away)")
    rou_budget = budget_summary(nodes["rou"], peer="nld")
    left = next((p["left"] for p in rou_budget["peers"] if p["peer"] == "nld"), None)
    if left:
        say(
            f"   rou's ledger: nld has rho {left['rho']} (epsilon {left['epsilon']} at delta {rou_budget['delta']:g}) left this period"
        )
    return {
        "query_id": result["query_id"],
        "answered": [c["country"] for c in result["table"]["countries"]],
        "cells": len(truth),
        "max_abs_error": max(errors),
        "inside_ci95": inside,
        "cached_again": cached,
    }
