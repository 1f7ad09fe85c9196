"""``palermo audit export | verify-bundle | reconcile | budget``: the auditor's offline toolkit.

``export`` runs at the node and writes its audit bundle. The other three read only bundle files:
no node home, no key, no network, so an auditor runs them on a machine of their own with just
the package installed. Each exits 0 only when everything holds, else 1, naming each failing
entry, checkpoint or exchange. Add them to the ``audit`` group with ``register(audit_group)``.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, table
from node.errors import OperatorError

MAX_SHOWN = 50
KEYID_RE = re.compile(r"[0-9a-f]{64}")
BUNDLE = click.Path(exists=True, dir_okay=False, path_type=Path)


def register(group: click.Group) -> None:
    """Add the four commands to ``group`` (the ``palermo audit`` group)."""
    for command in (export_command, verify_bundle_command, reconcile_command, budget_command):
        group.add_command(command)


@contextlib.contextmanager
def bundle_lines(path: Path) -> Iterator[Iterator[bytes]]:
    """The lines of the bundle file at ``path``, read and decompressed as they are consumed."""
    from protocol.translog.bundle import CHUNK_BYTES, read_lines

    try:
        f = path.open("rb")
    except OSError as e:
        raise OperatorError(f"cannot read {path}: {e.strerror}", code="bundle_unreadable") from e
    with f:
        yield read_lines(iter(lambda: f.read(CHUNK_BYTES), b""))


def utc(seconds: Any, suffix: str = " UTC") -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` UTC for a person; "unknown" for None."""
    if seconds is None:
        return "unknown"
    try:
        return (
            datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S") + suffix
        )
    except (TypeError, ValueError, OverflowError, OSError):
        return str(seconds)


def _problem_lines(problems: Any, count: int, indent: str = "  ") -> list[str]:
    lines = [f"{indent}{p.message}" for p in problems[:MAX_SHOWN]]
    if count > min(len(problems), MAX_SHOWN):
        lines.append(
            f"{indent}... and {count - min(len(problems), MAX_SHOWN)} more (--json lists up to 1000)"
        )
    return lines


# --- export ---------------------------------------------------------------------------------------


@click.command("export")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The bundle file to write."
)
@click.option(
    "--no-witness",
    is_flag=True,
    help="Do not ask the witnesses to cosign a fresh checkpoint first (offline export).",
)
@json_option
@click.pass_context
def export_command(ctx: click.Context, out: Path, no_witness: bool, as_json: bool) -> None:
    """Write the exchange log, its checkpoints, the directory and the budget caps to one signed file
    for an auditor (gzip JSON Lines, mode 0600: it tells who exchanged what with whom).

    First asks the directory's witnesses to cosign a fresh checkpoint, unless --no-witness."""
    from node.services.audit_bundle import export_bundle

    node = open_node_from_ctx(ctx)
    try:
        result = export_bundle(node, out, witness=not no_witness)
    finally:
        node.close()
    text = (
        f"bundle written: {result['path']}\n"
        f"  {result['entries']} entries, {result['checkpoints']} checkpoints, {result['bytes']} bytes\n"
        f"  sha256 {result['sha256']}"
    )
    for answer in result["witnesses"]:
        if answer["status"] == "cosigned":
            text += f"\n  cosigned by {answer['peer']} at size {answer['size']}"
        else:
            who = answer["peer"] or "witnesses"
            text += f"\n  warning: {who} not cosigned ({answer['status']}: {answer.get('message', '')})"
    if result["checkpoint_refused"]:
        text += f"\n  warning: no checkpoint signed before export: {result['checkpoint_refused']}"
    emit(result, as_json, text)


# --- verify-bundle --------------------------------------------------------------------------------


def _keyid(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    for value in values:
        if not KEYID_RE.fullmatch(value):
            raise click.BadParameter("expected a governance key id: 64 lowercase hex digits")
    return list(values)


@click.command("verify-bundle")
@click.argument("bundle", type=BUNDLE)
@click.option(
    "--governance-key",
    "governance_keys",
    multiple=True,
    metavar="KEYID",
    callback=_keyid,
    help="A governance key id you trust (repeat): the bundled directory must use only these keys.",
)
@json_option
@click.pass_context
def verify_bundle_command(
    ctx: click.Context, bundle: Path, governance_keys: list[str], as_json: bool
) -> None:
    """Check an audit bundle offline: header signature and keys, directory, every entry, the hash
    chain, every checkpoint, the witnesses' cosignatures and the directory's witness policy.
    Exit 0 only if all hold."""
    from protocol.translog.audit import verify_bundle

    with bundle_lines(bundle) as lines:
        report = verify_bundle(lines, governance_keys=governance_keys or None)
    emit(
        report.to_dict(),
        as_json,
        lambda _data: "\n".join(render_verify(report, trusted=bool(governance_keys))),
    )
    if not report.ok:
        ctx.exit(1)


def render_verify(report: Any, *, trusted: bool = False) -> list[str]:
    """An AuditReport for a person: summary, what to compare out of band, then each problem."""
    lines = [report.summary()]
    header, facts = report.header, report.directory
    if header is not None:
        lines.append(f"  origin {header.origin}, exported {utc(header.exported_at)}")
    if facts is not None:
        lines.append(
            f"  directory: federation {facts.federation}, version {facts.version}, expires {utc(facts.expires)}; "
            f"governance keys (threshold {facts.threshold}):"
        )
        lines += [f"    {k}{'  (signed)' if k in facts.signed_by else ''}" for k in facts.governance_keys]
        if not trusted:
            lines.append(
                "  compare these key ids with the ones your federation publishes (or pass --governance-key)"
            )
    policy = report.witnessing.get("policy")
    if policy:
        lines.append(
            f"  witness policy: quorum {policy['quorum']}, within {policy['max_delay'] / 3600:g} h; "
            f"witnessed up to size {report.witnessing['witnessed_size']}, "
            f"{report.witnessing['unwitnessed_entries']} entries after it"
        )
    return lines + _problem_lines(report.problems, report.problem_count)


# --- reconcile ------------------------------------------------------------------------------------


@click.command("reconcile")
@click.argument("bundle_a", type=BUNDLE)
@click.argument("bundle_b", type=BUNDLE)
@json_option
@click.pass_context
def reconcile_command(ctx: click.Context, bundle_a: Path, bundle_b: Path, as_json: bool) -> None:
    """Check two nodes' bundles and pair every envelope between them: each one sent is logged as
    received by the other, and each request accepted has its reply. Exit 0 only if all agree."""
    from protocol.translog.reconcile import reconcile

    with bundle_lines(bundle_a) as lines_a, bundle_lines(bundle_b) as lines_b:
        report = reconcile(lines_a, lines_b)
    emit(report.to_dict(), as_json, lambda _data: "\n".join(_render_reconcile(report)))
    if not report.ok:
        ctx.exit(1)


def _render_reconcile(report: Any) -> list[str]:
    lines = [report.summary()]
    for side in (report.a, report.b):
        lines.append(f"  {side.summary()}")
        lines += _problem_lines(side.problems, side.problem_count, indent="    ")
    for title, items, count in (
        ("mismatches", report.mismatches, report.mismatch_count),
        ("refused (listed, not a mismatch)", report.refusals, len(report.refusals)),
        ("undelivered (listed, not a mismatch)", report.undelivered, len(report.undelivered)),
        (
            "after the other node's export (listed, not a mismatch)",
            report.after_export,
            len(report.after_export),
        ),
    ):
        if items:
            lines.append(f"  {title}:")
            lines += _problem_lines(items, count, indent="    ")
    return lines + [f"  note: {note}" for note in report.notes]


# --- budget ---------------------------------------------------------------------------------------


@click.command("budget")
@click.argument("bundle", type=BUNDLE)
@json_option
@click.pass_context
def budget_command(ctx: click.Context, bundle: Path, as_json: bool) -> None:
    """Sum the privacy-budget charges of a bundle per period and peer against the caps its header
    states. Exit 0 only if the log verifies and no cap or limit was exceeded."""
    from protocol.translog.budget_audit import budget_audit

    with bundle_lines(bundle) as lines:
        report = budget_audit(lines)
    emit(report.to_dict(), as_json, lambda _data: "\n".join(_render_budget(report)))
    if not report.ok:
        ctx.exit(1)


def _render_budget(report: Any) -> list[str]:
    lines = [report.summary()]
    caps = report.caps
    if caps is not None:
        own = ", ".join(f"{peer} {cap}" for peer, cap in caps.peer_caps.items()) or "none"
        lines.append(
            f"  caps per {caps.period}: per peer {caps.peer_rho}, all peers {caps.global_rho}, "
            f"per query {caps.query_rho} (rho); own caps: {own}"
        )
        lines.append(f"  note: {report.caps_note}")
    rows = []
    for total in report.periods:
        rows.append([total.period, "(all)", *_spend_cells(total)])
        rows += [[p.period, p.peer, *_spend_cells(p)] for p in report.peers if p.period == total.period]
    if rows:
        lines += [
            "  " + line
            for line in table(rows, ["period", "peer", "spent", "cap", "left", "charges", ""]).split("\n")
        ]
    lines.append(f"  log: {report.log.summary()}")
    return lines + _problem_lines(report.problems, report.log.problem_count + report.budget_problem_count)


def _spend_cells(spend: Any) -> list[Any]:
    data = spend.to_dict()
    return [data["spent"], data["cap"], data["left"], data["charges"], "OVER" if data["over"] else ""]
