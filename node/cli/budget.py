"""``palermo budget``: the privacy budget of joint queries, as the ledger records it."""

from __future__ import annotations

import datetime
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, table


@click.group("budget")
def budget_group() -> None:
    """The privacy budget that peers and this node's analysts spend on joint queries."""


@budget_group.command("show")
@click.option("--peer", "peer_id", default=None, help="Only this peer's spending and releases.")
@json_option
@click.pass_context
def show(ctx: click.Context, peer_id: str | None, as_json: bool) -> None:
    """Show this period's caps, what was spent and what is left, per peer, and the releases."""
    from node.query.ledger import budget_summary

    node = open_node_from_ctx(ctx)
    try:
        summary = budget_summary(node, peer=peer_id)
    finally:
        node.close()
    emit(summary, as_json, _render)


def _utc(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _loss(x: dict[str, Any]) -> str:
    return f"rho {x['rho']} (epsilon {x['epsilon']:g})"


def _render(s: dict[str, Any]) -> str:
    caps, total = s["caps"], s["global"]
    lines = [
        f"privacy budget for {s['period']} (one {s['period_kind']}; epsilon at delta {s['delta']:g})",
        f"  caps        per peer {_loss(caps['per_peer'])}, all peers {_loss(caps['global'])}, "
        f"per query {_loss(caps['per_query'])}",
        f"  all peers   spent {_loss(total['spent'])} in {total['releases']} release(s), "
        f"left {_loss(total['left'])}",
        "",
    ]
    if s["peers"]:
        rows = [
            [p["peer"], p["cap"]["rho"], p["spent"]["rho"], p["left"]["rho"], f"{p['left']['epsilon']:g}",
             p["releases"]]
            for p in s["peers"]
        ]  # fmt: skip
        lines.append(
            table(rows, ["peer", "cap (rho)", "spent (rho)", "left (rho)", "left (eps)", "releases"])
        )
    else:
        lines.append("no peer has spent anything in this period")
    lines.append("")
    if s["releases"]:
        rows = [
            [
                _utc(r["created_at"]),
                r["peer"],
                r["measure"],
                ",".join(r["dimensions"]),
                r["rho"],
                r["query_hash"][:12],
            ]
            for r in s["releases"]
        ]
        lines.append(table(rows, ["time (UTC)", "peer", "measure", "dimensions", "rho", "query"]))
    else:
        lines.append("no releases in this period")
    return "\n".join(lines)
