"""``palermo audit``: verify the node's exchange log, sign a checkpoint, list recent entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from node.cli.audit_offline import _keyid, utc, verify_bundle_command
from node.cli.audit_offline import register as register_offline_commands
from node.cli.common import emit, json_option, open_node_from_ctx, table

MAX_PROBLEMS_SHOWN = 50


@click.group("audit")
def audit_group() -> None:
    """Check that the exchange log is complete and untampered; sign checkpoints of it."""


@audit_group.command("verify")
@click.argument("bundle", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--governance-key", "governance_keys", multiple=True, metavar="KEYID",
              help="With BUNDLE: a governance key id you trust (repeat).")  # fmt: skip
@json_option
@click.pass_context
def verify_command(
    ctx: click.Context, bundle: Path | None, governance_keys: tuple[str, ...], as_json: bool
) -> None:
    """Check every entry, the hash chain and every signed checkpoint. Exit 0 only if all hold.

    Without BUNDLE: this node's log in its database. With BUNDLE: an audit bundle, offline (no
    node, no keys, no network), as 'palermo audit verify-bundle' does.
    """
    from node.services import exchange_log

    if bundle is not None:
        ctx.invoke(
            verify_bundle_command,
            bundle=bundle,
            governance_keys=_keyid(ctx, ctx.command.params[1], governance_keys),
            as_json=as_json,
        )
        return
    node = open_node_from_ctx(ctx)
    try:
        report = exchange_log.verify(node)
    finally:
        node.close()
    emit(report.to_dict(), as_json, lambda _data: _render_report(report))
    if not report.ok:
        ctx.exit(1)


def _render_report(report: Any) -> str:
    lines = [report.summary()]
    lines += [f"  {problem.message}" for problem in report.problems[:MAX_PROBLEMS_SHOWN]]
    hidden = report.problem_count - min(len(report.problems), MAX_PROBLEMS_SHOWN)
    if hidden > 0:
        lines.append(f"  ... and {hidden} more (use --json to see up to {len(report.problems)})")
    return "\n".join(lines)


@audit_group.command("checkpoint")
@json_option
@click.pass_context
def checkpoint_command(ctx: click.Context, as_json: bool) -> None:
    """Sign a checkpoint of the log now with the node's log key and print it (a C2SP signed note)."""
    from node.services import exchange_log
    from protocol.canonical import b64encode

    node = open_node_from_ctx(ctx)
    try:
        signed = exchange_log.checkpoint(node)
    finally:
        node.close()
    data = {
        "origin": signed.origin,
        "size": signed.size,
        "root": b64encode(signed.root),
        "note": signed.note.decode(),
    }
    emit(data, as_json, signed.note.decode().rstrip("\n"))


@audit_group.command("witness")
@click.option(
    "--peer", "peer_id", default=None, help="One witness (default: every member with the witness role)."
)
@json_option
@click.pass_context
def witness_command(ctx: click.Context, peer_id: str | None, as_json: bool) -> None:
    """Send the newest checkpoint to the witnesses now and store their cosignatures."""
    from node.services.witness import witness_all, witness_checkpoint

    node = open_node_from_ctx(ctx)
    try:
        outcomes = [witness_checkpoint(node, peer_id)] if peer_id else witness_all(node)
    finally:
        node.close()
    emit({"witnesses": outcomes}, as_json, lambda data: _render_witnesses(data["witnesses"]))
    if any(o["status"] != "cosigned" for o in outcomes):
        ctx.exit(1)


def _render_witnesses(outcomes: list[dict[str, Any]]) -> str:
    if not outcomes:
        return "no member of the directory has the witness role"
    lines = []
    for o in outcomes:
        if o["status"] == "cosigned":
            lines.append(f"{o['peer']}: cosigned the checkpoint at size {o['size']}")
        else:
            reason = o.get("message") or o.get("code") or ""
            lines.append(f"{o['peer']}: {o['status'].replace('_', ' ')} {reason}".rstrip())
    return "\n".join(lines)


@audit_group.command("checkpoints")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
@click.pass_context
def checkpoints_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The newest signed checkpoints and which witnesses cosigned each."""
    from node.services.witness import list_checkpoints, witnessing_status

    node = open_node_from_ctx(ctx)
    try:
        rows = list_checkpoints(node, limit=limit)
        status = witnessing_status(node)
    finally:
        node.close()
    emit(
        {"checkpoints": rows, "witnessing": status},
        as_json,
        lambda data: _render_checkpoints(data["checkpoints"]) + "\n" + _render_witnessing(data["witnessing"]),
    )


def _render_checkpoints(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no checkpoint yet ('palermo audit checkpoint' signs one)"
    body = [
        [r["size"], r["root"][:16], _utc(r["created_at"]), ", ".join(r["witnesses"]) or "-"] for r in rows
    ]
    return table(body, ["size", "root", "signed (UTC)", "cosigned by"])


def _render_witnessing(status: dict[str, Any]) -> str:
    policy = status["policy"]
    if policy is None:
        return "witness policy: none in the directory (cosignatures are kept, none is required)"
    text = (
        f"witness policy: quorum {policy['quorum']} within {policy['max_delay'] / 3600:g} h; "
        f"witnessed up to size {status['witnessed_size']} of {status['log_size']}"
    )
    if status["due"] is None:
        return text + ", nothing pending"
    text += f", {status['pending']} entries pending, due by {_utc(status['due'])}"
    if status["state"] == "late":
        text += "\nLATE: an auditor's 'audit verify' fails now; run 'palermo audit witness' and check the witnesses"
    return text


@audit_group.command("log")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many entries."
)
@json_option
@click.pass_context
def log_command(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Show the most recent log entries, newest first (hashes and metadata only)."""
    from node.services import exchange_log

    node = open_node_from_ctx(ctx)
    try:
        entries = exchange_log.recent_entries(node, limit=limit)
    finally:
        node.close()
    emit({"entries": entries}, as_json, lambda data: _render_entries(data["entries"]))


def _utc(seconds: Any) -> str:
    return utc(seconds, suffix="")


def _render_entries(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "the log is empty"
    rows = [
        [
            e["index"],
            _utc(e["time"]),
            e["kind"],
            e["direction"] or "-",
            e["peer"] or "-",
            e["message_type"] or "-",
            e["outcome"],
            e["code"] or "-",
            e["size"],
            e["envelope_hash"][:16] or "-",
        ]
        for e in entries
    ]
    headers = [
        "index",
        "time (UTC)",
        "kind",
        "dir",
        "peer",
        "type",
        "outcome",
        "code",
        "bytes",
        "envelope hash",
    ]
    return table(rows, headers)


register_offline_commands(audit_group)
