"""``palermo query``: joint pattern queries across countries, answered with differential privacy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, operator, table
from node.errors import OperatorError

DEFAULT_ROWS = 30


@click.group("query")
def query_group() -> None:
    """Joint pattern queries: each country releases a differentially private table of its own records."""


def read_spec_file(path: Path) -> Any:
    """The JSON in a specification file, or a clear error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise OperatorError(f"cannot read {path}: {e.strerror}", code="unreadable_file") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OperatorError(f"{path} is not a JSON file: {e}", code="invalid_query") from e


@query_group.command("run")
@click.option("--spec", "spec_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The query specification (JSON); ready ones are in config/queries/.")  # fmt: skip
@click.option("--peers", required=True, help="'all' (every data owner) or node ids separated by commas.")
@click.option(
    "--rows", default=DEFAULT_ROWS, show_default=True, help="Cells to print (largest totals first); 0: all."
)
@json_option
@click.pass_context
def run(ctx: click.Context, spec_file: Path, peers: str, rows: int, as_json: bool) -> None:
    """Send a query to the chosen peers and to this node, and print the combined table."""
    from node.query.runs import run_query
    from protocol.query.spec import parse_spec

    node = open_node_from_ctx(ctx)
    spec = parse_spec(read_spec_file(spec_file), default_delta=node.settings.budget_delta)
    started = time.monotonic()

    def progress(node_id: str, status: str) -> None:
        if not as_json:
            click.echo(f"[{time.monotonic() - started:5.1f} s] {node_id}: {status}", err=True)

    result = run_query(node, spec, peers, by=operator(), progress=progress)
    emit(result, as_json, lambda r: render_run(r, rows))


@query_group.command("list")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def list_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The joint queries run from this node, newest first."""
    from node.query.runs import list_queries

    runs = list_queries(open_node_from_ctx(ctx), limit=limit)
    emit({"queries": runs}, as_json, _render_list)


@query_group.command("show")
@click.argument("query_id")
@click.option(
    "--rows", default=DEFAULT_ROWS, show_default=True, help="Cells to print (largest totals first); 0: all."
)
@json_option
@click.pass_context
def show(ctx: click.Context, query_id: str, rows: int, as_json: bool) -> None:
    """Re-open a stored query: its answers and the combined table (nothing is asked again)."""
    from node.query.runs import show_query

    result = show_query(open_node_from_ctx(ctx), query_id)
    emit(result, as_json, lambda r: render_run(r, rows))


def _render_list(data: dict[str, Any]) -> str:
    runs = data["queries"]
    if not runs:
        return "no joint queries yet; run one with 'palermo query run --spec FILE --peers all'"
    rows = [
        [r["query_id"], time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created_at"])),
         f"{len(r['answered'])}/{len(r['asked'])}", r["title"] or r["description"]]
        for r in runs
    ]  # fmt: skip
    return table(rows, ["query", "created (UTC)", "answered", "question"])


def render_run(r: dict[str, Any], max_rows: int = DEFAULT_ROWS, truth: list[int] | None = None) -> str:
    """The combined table for a person: countries as columns, the largest totals first."""
    t = r["table"]
    lines = [f"query {r['query_id']}: {r['title'] or r['description']}"]
    if r["title"]:
        lines.append(f"  {r['description']}")
    countries = t["countries"]
    outcomes = {o["node_id"]: o for o in r["outcomes"]}
    for c in countries:
        o = outcomes.get(c["node_id"], {})
        how = "from its release cache" if o.get("cached") else f"in {o.get('seconds', 0):.1f} s"
        lines.append(
            f"  {c['country']} ({c['node_id']}): answered {how}, noise scale {c['scale']:.3g}, "
            f"standard error {c['se']:.3g} per cell (95 %: ±{c['ci95_half_width']:.3g})"
        )
    for o in r["left_out"]:
        lines.append(
            f"  {o['country']} ({o['node_id']}): {o['status'].replace('_', ' ')}, left out: {o['message']} [{o['code']}]"
        )
    if not countries:
        lines.append("no country answered, so there is no table")
        return "\n".join(lines)
    cells = t["cells"]
    order = sorted(range(len(cells)), key=lambda i: -cells[i]["total"])
    shown = order if max_rows <= 0 else order[:max_rows]
    headers = [*(t["dimensions"] or ["cell"]), *(c["country"] for c in countries), "total", "95 % interval"]
    if truth is not None:
        headers.append("true total")
    rows = []
    for i in shown:
        cell = cells[i]
        row = [
            *(cell["labels"] or ["all"]),
            *cell["values"],
            cell["total"],
            f"{cell['ci95'][0]:.1f} to {cell['ci95'][1]:.1f}",
        ]
        if truth is not None:
            row.append(truth[i])
        rows.append(row)
    lines += ["", table(rows, headers)]
    if len(shown) < len(cells):
        lines.append(
            f"({len(cells) - len(shown):,} more cells with smaller totals: --rows 0 prints all, --json gives all)"
        )
    lines.append(
        f"standard error of every total: {t['total_se']:.3g}; noisy counts can be below zero (unbiased)"
    )
    return "\n".join(lines)
