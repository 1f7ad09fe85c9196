"""``palermo init``: create a node home."""

from __future__ import annotations

import os
from pathlib import Path

import click

from node.cli.common import emit, home_path, json_option


@click.command("init")
@click.option(
    "--home", "init_home_dir", type=click.Path(file_okay=False), help="Folder to create the node home in."
)
@click.option("--node-id", required=True, help="This node's id in the federation (a-z, 0-9, '-').")
@click.option("--country", required=True, help="ISO 3166-1 alpha-3 code of the agency's country.")
@click.option("--url", required=True, help="The URL peers use to reach this node.")
@click.option(
    "--database-url", help="PostgreSQL URL (postgresql+psycopg://...); default: SQLite in the home."
)
@click.option("--bind", help="host:port that 'palermo serve' listens on.")
@click.option(
    "--protect", is_flag=True, help="Protect the keys with a passphrase (asked, or PALERMO_PASSPHRASE)."
)
@json_option
@click.pass_context
def init_command(
    ctx: click.Context,
    init_home_dir: str | None,
    node_id: str,
    country: str,
    url: str,
    database_url: str | None,
    bind: str | None,
    protect: bool,
    as_json: bool,
) -> None:
    """Create a node home: settings, keys and a migrated database."""
    from node.services.init import init_home

    home = Path(init_home_dir).resolve() if init_home_dir else home_path(ctx)
    passphrase = None
    if protect:
        passphrase = os.environ.get("PALERMO_PASSPHRASE") or click.prompt(
            "New key passphrase", hide_input=True, confirmation_prompt=True
        )
    result = init_home(
        home,
        node_id=node_id,
        country=country,
        url=url,
        database_url=database_url,
        bind=bind,
        passphrase=passphrase,
    )
    emit(
        result,
        as_json,
        lambda r: (
            f"Created node {r['node_id']} ({r['country']}) in {r['home']}\n"
            f"  database: {r['database']}, keys: {'passphrase-protected' if r['keys_protected'] else 'unprotected'}\n"
            f"Next: 'palermo --home {r['home']} keys export' and send the descriptor to your federation's governance."
        ),
    )
