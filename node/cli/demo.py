"""``palermo demo``: a three-node federation on this machine, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.cli.common import json_option


@click.command("demo")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False),
    help="Keep the sandbox in this folder (default: a temporary one).",
)
@click.option("--records", default=2000, show_default=True, help="Synthetic case-person rows per country.")
@click.option("--seed", default=7, show_default=True)
@click.option("--keep", is_flag=True, help="Leave the sandbox running at the end.")
@json_option
def demo_command(root: str | None, records: int, seed: int, keep: bool, as_json: bool) -> None:
    """Bring up three nodes, load synthetic records, exchange envelopes, verify the logs, tear down."""
    from node.services.demo import run_demo

    say = (lambda _s: None) if as_json else click.echo
    summary = run_demo(root=Path(root) if root else None, records=records, seed=seed, keep=keep, say=say)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
