"""``palermo match``, ``palermo matches`` and ``palermo disclosures``: cross-border matching and its follow-up."""

from __future__ import annotations

import time
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, operator, table


@click.group("match")
def match_group() -> None:
    """Matching rounds with peers."""


@match_group.command("run")
@click.option("--peer", "peer_id", required=True, help="The peer's node id.")
@click.option(
    "--unit", default=None, help="Compare through this linkage unit (a third member) instead of here."
)
@json_option
@click.pass_context
def run(ctx: click.Context, peer_id: str, unit: str | None, as_json: bool) -> None:
    """Run a matching round with a peer now, wait for it to finish and print a summary."""
    from node.matching.rounds import run_round

    node = open_node_from_ctx(ctx)
    started = time.monotonic()

    def progress(stage: str, done: int, total: int) -> None:
        if as_json:
            return
        elapsed = time.monotonic() - started
        detail = f" {done:,}/{total:,}" if total > 1 else ""
        click.echo(f"[{elapsed:6.1f} s] {stage}{detail}", err=True)

    summary = run_round(node, peer_id, unit=unit, progress=progress)
    emit(summary, as_json, _render_round)


def _render_round(s: dict[str, Any]) -> str:
    bands = s.get("candidates", {})
    lines = [
        f"round {s['number']} with {s['peer']} ({s['round_id']}), key epoch {s['epoch']}, "
        + (f"compared by linkage unit {s['unit']}" if s.get("unit") else "compared here"),
        f"  own persons matched from    {s.get('own_records', 0):,}",
        f"  peer's persons declared     {s.get('peer_records', 0):,}",
        f"  exact selectors sent        {s.get('psi_own_selectors', 0):,}"
        f" (peer: {s.get('psi_peer_selectors', 0):,}), in both: {s.get('psi_matched', 0):,}",
        f"  encodings received          {s.get('encodings_received', 0):,}"
        f"{' (full resend)' if s.get('encodings_full') else ''}, removed {s.get('encodings_removed', 0):,}"
        if not s.get("unit")
        else f"  encodings sent to the unit  {s.get('encodings_sent', 0):,} (peer: {s.get('peer_encodings', 0):,})",
        f"  candidates                  likely {bands.get('likely', 0):,}, possible {bands.get('possible', 0):,}",
        "  seconds                     " + ", ".join(f"{k} {v:.1f}" for k, v in s.get("seconds", {}).items()),
    ]
    return "\n".join(lines)


@match_group.command("prepare")
@json_option
@click.pass_context
def prepare(ctx: click.Context, as_json: bool) -> None:
    """Compute the matching features of new and changed persons now (the scheduler does it too)."""
    from node.matching.local import prepare as prepare_features

    emit(
        prepare_features(open_node_from_ctx(ctx)),
        as_json,
        lambda r: (
            f"matching features ready for {r['persons']:,} persons: {r['computed']:,} computed now, "
            f"{r['cached']:,} already cached ({r['seconds']:.1f} s)"
        ),
    )


@match_group.command("rounds")
@click.option("--peer", "peer_id", default=None, help="Only rounds with this peer.")
@json_option
@click.pass_context
def rounds(ctx: click.Context, peer_id: str | None, as_json: bool) -> None:
    """List recent matching rounds (both those this node started and those peers started)."""
    from node.matching.history import list_rounds

    rows = list_rounds(open_node_from_ctx(ctx), peer=peer_id)
    emit(
        {"rounds": rows},
        as_json,
        lambda d: table(
            [
                [r["round_id"][:12], r["peer"], r["role"], r["number"], r["status"], r["stage"],
                 r["error_code"] or "", _bands(r)]
                for r in d["rounds"]
            ],
            ["round", "peer", "role", "no.", "status", "stage", "error", "candidates"],
        ),
    )  # fmt: skip


def _bands(r: dict[str, Any]) -> str:
    bands = (r.get("stats") or {}).get("candidates") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(bands.items()))


@click.group("matches")
def matches_group() -> None:
    """Cross-border matches and the focal point's review of them."""


@matches_group.command("list")
@click.option("--peer", default=None, help="Only matches with this peer.")
@click.option("--band", type=click.Choice(["likely", "possible"]), default=None)
@click.option(
    "--status",
    type=click.Choice(["candidate", "confirmed", "confirmed_here", "confirmed_by_peer", "rejected"]),
    default=None,
)
@json_option
@click.pass_context
def list_(ctx: click.Context, peer: str | None, band: str | None, status: str | None, as_json: bool) -> None:
    """List matches, best first, with this node's own case and person ids only."""
    from node.matching.followup import list_matches

    rows = list_matches(open_node_from_ctx(ctx), peer=peer, band=band, status=status)
    emit({"matches": rows}, as_json, _render_matches)


def _render_matches(d: dict[str, Any]) -> str:
    if not d["matches"]:
        return "no matches"
    return table(
        [
            [m["match_id"], m["peer"], m["band"], f"{m['score']:.1f}", ",".join(m["evidence"]), m["status"],
             m["prs_PersonId"], ",".join(m["cas_CaseIds"])]
            for m in d["matches"]
        ],
        ["match_id", "peer", "band", "score", "evidence", "status", "prs_PersonId", "cas_CaseId"],
    )  # fmt: skip


@matches_group.command("show")
@click.argument("match_id")
@json_option
@click.pass_context
def show(ctx: click.Context, match_id: str, as_json: bool) -> None:
    """Show one match."""
    from node.matching.followup import show_match

    emit(show_match(open_node_from_ctx(ctx), match_id), as_json, _render_match)


def _render_match(m: dict[str, Any]) -> str:
    return "\n".join(
        f"{k:16} {', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in m.items()
        if k not in ("created_at", "updated_at")
    )


@matches_group.command("review")
@click.argument("match_id")
@click.option("--confirm", "decision", flag_value="confirmed", help="The two records are the same person.")
@click.option("--reject", "decision", flag_value="rejected", help="They are not the same person.")
@json_option
@click.pass_context
def review(ctx: click.Context, match_id: str, decision: str | None, as_json: bool) -> None:
    """Record the focal point's decision on a match; it is sent to the peer."""
    from node.matching.followup import review as review_match

    if decision is None:
        raise click.UsageError("give --confirm or --reject")
    result = review_match(open_node_from_ctx(ctx), match_id, decision, by=operator())
    emit(result, as_json, lambda m: f"match {m['match_id']}: {decision}; status now {m['status']}")


@click.group("disclosures")
def disclosures_group() -> None:
    """Requests for named fields of confirmed links, and their approval by the owner."""


@disclosures_group.command("list")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None, help="in: asked of this node.")
@click.option("--status", type=click.Choice(["pending", "approved", "refused"]), default=None)
@json_option
@click.pass_context
def disclosures_list(ctx: click.Context, direction: str | None, status: str | None, as_json: bool) -> None:
    """List disclosure requests asked of this node (in) and by it (out)."""
    from node.matching.followup import list_disclosures

    rows = list_disclosures(open_node_from_ctx(ctx), direction=direction, status=status)
    emit({"disclosures": rows}, as_json, _render_disclosures)


def _render_disclosures(d: dict[str, Any]) -> str:
    if not d["disclosures"]:
        return "no disclosures"
    return table(
        [
            [x["disclosure_id"], x["direction"], x["peer"], x["match_id"], ",".join(x["fields"]), x["status"],
             x["handling_code"] or ""]
            for x in d["disclosures"]
        ],
        ["disclosure_id", "dir", "peer", "match_id", "fields", "status", "handling"],
    )  # fmt: skip


@disclosures_group.command("request")
@click.argument("match_id")
@click.option(
    "--fields", required=True, help="Comma-separated field names, e.g. prs_FirstName,prs_Birthdate."
)
@json_option
@click.pass_context
def disclosures_request(ctx: click.Context, match_id: str, fields: str, as_json: bool) -> None:
    """Ask the peer of a confirmed link for named fields."""
    from node.matching.followup import request_disclosure

    names = [f.strip() for f in fields.split(",") if f.strip()]
    result = request_disclosure(open_node_from_ctx(ctx), match_id, names, by=operator())
    emit(result, as_json, lambda x: f"disclosure {x['disclosure_id']} requested from {x['peer']}")


@disclosures_group.command("show")
@click.argument("disclosure_id")
@json_option
@click.pass_context
def disclosures_show(ctx: click.Context, disclosure_id: str, as_json: bool) -> None:
    """Show one disclosure (with the values received, for one this node asked for)."""
    from node.matching.followup import show_disclosure

    emit(show_disclosure(open_node_from_ctx(ctx), disclosure_id), as_json, _render_match)


@disclosures_group.command("approve")
@click.argument("disclosure_id")
@json_option
@click.pass_context
def disclosures_approve(ctx: click.Context, disclosure_id: str, as_json: bool) -> None:
    """Approve a disclosure asked of this node: the fields' values are sent to the peer."""
    from node.matching.followup import decide_disclosure

    result = decide_disclosure(open_node_from_ctx(ctx), disclosure_id, True, by=operator())
    emit(result, as_json, lambda x: f"disclosure {x['disclosure_id']} approved; the values are on their way")


@disclosures_group.command("refuse")
@click.argument("disclosure_id")
@click.option("--reason", default=None, help="Why (sent nowhere; name no person).")
@json_option
@click.pass_context
def disclosures_refuse(ctx: click.Context, disclosure_id: str, reason: str | None, as_json: bool) -> None:
    """Refuse a disclosure asked of this node."""
    from node.matching.followup import decide_disclosure

    result = decide_disclosure(open_node_from_ctx(ctx), disclosure_id, False, by=operator(), reason=reason)
    emit(result, as_json, lambda x: f"disclosure {x['disclosure_id']} refused")
