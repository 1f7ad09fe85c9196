"""``palermo ingest FILE`` and ``palermo records stats``: load case records, see what is held."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, table

MAX_SHOWN_PROBLEMS = 50
PROGRESS_FROM_ROWS = 5_000  # smaller files load before a progress line would help


@click.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid", is_flag=True, help="Load the good rows; write the bad ones to the rejects file."
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected rows go (default: <name>.rejected.csv beside FILE). Holds personal data: mode 0600.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "jsonl", "xlsx"]),
    help="Default: from the extension.",
)
@click.option(
    "--progress", "show_progress", is_flag=True, help="Show a progress line on stderr for any file size."
)
@json_option
@click.pass_context
def ingest_command(
    ctx: click.Context,
    file: Path,
    skip_invalid: bool,
    rejects_path: Path | None,
    file_format: str | None,
    show_progress: bool,
    as_json: bool,
) -> None:
    """Check FILE (HTCDS 2.0 rows: CSV, JSON Lines or XLSX) and load it; see docs/ingest.md.

    Nothing is loaded if any row is bad, unless --skip-invalid is given.
    """
    from node.services.ingest import IngestRejected, ingest_file

    if rejects_path is not None and not skip_invalid:
        raise click.UsageError("--rejects needs --skip-invalid")
    progress = _ProgressLine(always=show_progress) if show_progress or sys.stderr.isatty() else None
    node = open_node_from_ctx(ctx)
    try:
        report = ingest_file(
            node,
            file,
            skip_invalid=skip_invalid,
            rejects_path=rejects_path,
            progress=progress,
            file_format=file_format,
        )
    except IngestRejected as e:
        if progress is not None:
            progress.done()
        if as_json:
            emit({"error": e.code, "message": e.message, "report": e.report.to_dict()}, as_json)
        else:
            click.echo(_rejected_text(e, file), err=True)
        ctx.exit(1)
    finally:
        if progress is not None:
            progress.done()
        node.close()
    emit(report.to_dict(), as_json, _summary_text(file))


class _ProgressLine:
    """One line on stderr, rewritten in place: rows checked, then rows loaded of the total. Unless
    ``always``, it appears only once the file is known to have PROGRESS_FROM_ROWS rows or more."""

    def __init__(self, *, always: bool) -> None:
        self.always, self.shown = always, False

    def __call__(self, done: int, total: int | None) -> None:
        if not (self.always or max(done, total or 0) >= PROGRESS_FROM_ROWS):
            return
        self.shown = True
        if total is None:
            text = f"checked {done:,} rows"
        else:
            text = f"loaded {done:,} of {total:,} rows ({100 * done // max(total, 1)}%)"
        click.echo(f"\r{text:<50}", err=True, nl=False)

    def done(self) -> None:
        """End the line (once), so that what follows starts on a line of its own."""
        if self.shown:
            click.echo("", err=True)
            self.shown = False


def _summary_text(file: Path) -> Any:
    def render(report: dict[str, Any]) -> str:
        lines = [f"loaded {report['rows_loaded']:,} of {report['rows_read']:,} rows from {file.name}"]
        if report["rows_rejected"]:
            lines[0] += (
                f"; {report['rows_rejected']:,} rejected, written to {report['rejects_file']} (personal data)"
            )
        lines.append(
            f"cases: {report['cases_created']:,} new, {report['cases_updated']:,} replaced; "
            f"persons: {report['persons_created']:,} new, {report['persons_updated']:,} changed, "
            f"{report['persons_removed']:,} removed (in no case any more)"
        )
        return "\n".join(lines)

    return render


def _rejected_text(error: Any, file: Path) -> str:
    problems = error.report.problems
    shown = problems[:MAX_SHOWN_PROBLEMS]
    rows = [[p.row, p.field, p.expected, p.got] for p in shown]
    lines = [
        f"error: {file.name}: {error.message} [{error.code}]",
        table(rows, ["row", "field", "expected", "got"]),
    ]
    if len(problems) > len(shown):
        lines.append(f"... and {len(problems) - len(shown):,} more problems (--json lists them all)")
    lines.append("Fix these rows and load again, or load the good rows with --skip-invalid.")
    return "\n".join(lines)


@click.group("records")
def records_group() -> None:
    """The case records this node holds."""


@records_group.command("stats")
@json_option
@click.pass_context
def stats_command(ctx: click.Context, as_json: bool) -> None:
    """Counts of persons, cases, roles, sharing controls and routes (no personal values)."""
    from node.services.records import stats

    node = open_node_from_ctx(ctx)
    try:
        data = stats(node)
    finally:
        node.close()
    emit(data, as_json, _stats_text)


def _stats_text(data: dict[str, Any]) -> str:
    lines = [
        f"persons {data['persons']:,} (victims {data['victims']:,}, perpetrators {data['perpetrators']:,}, "
        f"matchable {data['matchable_persons']:,})",
        f"cases {data['cases']:,}; persons in cases {data['records']:,}",
        "handling codes: " + _pairs(data["by_handling_code"]),
        "citizenship (top 10): " + _pairs({c["country"]: c["persons"] for c in data["by_citizenship"]}),
        "exploitation types (victims): " + _pairs(data["by_exploitation_type"]),
        "countries of exploitation (victims): " + _pairs(data["by_exploitation_country"]),
    ]
    last = data["last_load"]
    lines.append(
        f"last load: {last['finished_at']}, {last['rows_loaded']:,} rows" if last else "last load: never"
    )
    return "\n".join(lines)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in counts.items()) or "none"
