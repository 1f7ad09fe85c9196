"""Helpers shared by the ``palermo`` commands: the node home, output for people and for ``--json``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """Errors raised later in the command print as JSON too (see ``PalermoGroup.invoke``)."""
    if value:
        ctx.meta["palermo_json"] = True
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="Print machine-readable JSON instead of text.",
)


def operator() -> str:
    """Who runs this command, as decisions and queries record it: ``cli:<login>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def home_path(ctx: click.Context) -> Path:
    """The node home given by ``palermo --home`` or ``PALERMO_HOME`` (default: the current folder)."""
    root = ctx.find_root()
    home = root.params.get("home") if root.params else None
    return Path(home or os.environ.get("PALERMO_HOME") or ".").resolve()


def passphrase_from_env_or_prompt(*, prompt_if_protected: Path | None = None) -> str | None:
    """The key passphrase: ``PALERMO_PASSPHRASE``, else a prompt when the keys are protected and a TTY is there."""
    value = os.environ.get("PALERMO_PASSPHRASE")
    if value:
        return value
    if prompt_if_protected is not None:
        from node.keys import keys_are_protected

        if keys_are_protected(prompt_if_protected) and sys.stdin.isatty():
            return str(click.prompt("Key passphrase", hide_input=True))
    return None


def open_node_from_ctx(ctx: click.Context) -> Any:
    """Open the node (settings, keys, database) for the home this command runs against."""
    from node.context import open_node

    home = home_path(ctx)
    return open_node(home, passphrase=passphrase_from_env_or_prompt(prompt_if_protected=home / "keys"))


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | str | None = None) -> None:
    """Print ``data`` as JSON, or as text for a person."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))
        return
    if human is None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif callable(human):
        click.echo(human(data))
    else:
        click.echo(human)


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain text table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in cells]
    return "\n".join(line.rstrip() for line in out)
