"""``palermo sandbox up|down``: a federation of real node processes on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.cli.common import json_option, table


@click.group("sandbox")
def sandbox_group() -> None:
    """A local federation for trying Palermo (one node process per country, on loopback)."""


@sandbox_group.command("up")
@click.option(
    "--dir", "root", required=True, type=click.Path(file_okay=False), help="Folder for the node homes."
)
@click.option("--nodes", required=True, help="Comma-separated ISO 3166-1 alpha-3 codes, e.g. NLD,ROU,UKR.")
def up(root: str, nodes: str) -> None:
    """Create the nodes and a signed directory, start them, wait until healthy; print JSON."""
    from node.services import sandbox

    result = sandbox.up(Path(root), [c for c in nodes.split(",") if c.strip()])
    click.echo(json.dumps(result, indent=2))


@sandbox_group.command("down")
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False))
@json_option
def down(root: str, as_json: bool) -> None:
    """Stop every node of the sandbox in DIR (the homes stay; 'up' restarts them)."""
    from node.services import sandbox

    result = sandbox.down(Path(root))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"stopped: {', '.join(result['stopped']) or 'nothing was running'}")


@sandbox_group.command("status")
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False))
def status(root: str) -> None:
    """Show the sandbox's nodes."""
    from node.services import sandbox

    result = sandbox.load_description(Path(root))
    click.echo(
        table(
            [[n["id"], n["country"], n["url"], n["home"]] for n in result["nodes"]],
            ["id", "country", "url", "home"],
        )
    )
