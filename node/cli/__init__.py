"""The ``palermo`` command. Commands are thin: parse, call a service, render.

Every command catches the node's and the protocol's errors once, here, prints a one-line
reason (or ``{"error", "message"}`` with ``--json``) and exits non-zero.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from node import __version__

# (module under node.cli, attribute) of every command, registered lazily so that
# `palermo --help` stays fast and a broken optional module cannot stop the others.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "init_command"),
    "keys": ("keys", "keys_group"),
    "directory": ("directory", "directory_group"),
    "ingest": ("ingest", "ingest_command"),
    "records": ("ingest", "records_group"),
    "synth": ("synth", "synth_command"),
    "users": ("users", "users_group"),
    "serve": ("serve", "serve_command"),
    "peers": ("peers", "peers_group"),
    "outbox": ("peers", "outbox_group"),
    "audit": ("audit", "audit_group"),
    "sandbox": ("sandbox", "sandbox_group"),
    "demo": ("demo", "demo_command"),
    "match": ("matching", "match_group"),
    "matches": ("matching", "matches_group"),
    "disclosures": ("matching", "disclosures_group"),
    "query": ("query", "query_group"),
    "budget": ("budget", "budget_group"),
}


class PalermoGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"node.cli.{module}"), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from node.errors import NodeError
        from protocol.errors import ProtocolError

        try:
            return super().invoke(ctx)
        except (NodeError, ProtocolError) as e:
            code, message = e.code, e.message
        if ctx.meta.get("palermo_json") or "--json" in sys.argv[1:]:
            click.echo(json.dumps({"error": code, "message": message}))
        else:
            click.echo(f"error: {message} [{code}]", err=True)
        ctx.exit(1)


@click.group(cls=PalermoGroup)
@click.option("--home", type=click.Path(file_okay=False), envvar="PALERMO_HOME", help="The node home folder.")
@click.version_option(__version__, prog_name="palermo")
def cli(home: str | None) -> None:
    """Palermo: match cases and study trafficking routes across borders without sharing case files."""


def main() -> None:
    cli(prog_name="palermo")
