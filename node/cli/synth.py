"""``palermo synth``: write a file of synthetic HTCDS case records for one country."""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import emit, json_option
from node.errors import OperatorError
from node.services import synth


def _country(value: str, param_hint: str) -> str:
    try:
        return synth.check_country(value)
    except OperatorError as e:
        raise click.BadParameter(e.message, param_hint=param_hint) from e


def _summary(data: dict[str, object]) -> str:
    return (
        f"wrote {data['rows']} rows ({data['persons']} persons in {data['cases']} cases) "
        f"for {data['country']} to {data['file']}"
    )


@click.command("synth")
@click.option(
    "--country", required=True, help="ISO 3166-1 alpha-3 code of the registering country, e.g. ROU."
)
@click.option(
    "--records", type=click.IntRange(min=1), required=True, help="Number of rows (one per person in a case)."
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="File to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same records.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(synth.FORMATS),
    default=None,
    help="Default: from the file extension.",
)
@click.option(
    "--overlap-with",
    default="",
    metavar="ISO3,ISO3",
    help="Countries whose files (made with the same --seed, --records, --overlap and --difficulty) "
    "share people with this one.",
)
@click.option(
    "--overlap",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of people also abroad.",
)
@click.option(
    "--difficulty",
    type=click.Choice(synth.DIFFICULTIES),
    default="mixed",
    show_default=True,
    help="How hard to match.",
)
@click.option("--with-truth", is_flag=True, help=f"Add the hidden ground-truth column {synth.TRUTH_COLUMN}.")
@json_option
def synth_command(
    country: str,
    records: int,
    out: str,
    seed: int,
    fmt: str | None,
    overlap_with: str,
    overlap: float,
    difficulty: str,
    with_truth: bool,
    as_json: bool,
) -> None:
    """Write synthetic case records (HTCDS 2.0 columns) for COUNTRY; no real person is in them."""
    code = _country(country, "--country")
    others = [_country(c, "--overlap-with") for c in overlap_with.split(",") if c.strip()]
    if fmt is None:
        try:
            fmt = synth.format_from_path(out)
        except OperatorError as e:
            raise click.UsageError(f"{e.message}, or give --format {'|'.join(synth.FORMATS)}") from e
    rows = synth.generate_country(
        code,
        records,
        seed=seed,
        overlap_with=others,
        overlap=overlap,
        difficulty=difficulty,
        include_truth=with_truth,
    )
    try:
        synth.write_rows(rows, out, fmt)
    except OperatorError as e:
        raise click.FileError(out, hint=e.message) from e
    data = {
        "file": str(Path(out)),
        "country": code,
        "rows": len(rows),
        "persons": len({str(r["prs_PersonId"]) for r in rows}),
        "cases": len({str(r["cas_CaseId"]) for r in rows}),
    }
    emit(data, as_json, _summary)
