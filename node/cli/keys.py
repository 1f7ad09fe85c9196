"""``palermo keys``: this node's public keys, its member descriptor, and governance key files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from node.cli.common import emit, home_path, json_option, passphrase_from_env_or_prompt
from node.services import directory as service
from protocol.canonical import b64decode, sha256_hex

DEFAULT_ROLES = "data-owner,analyst"


@click.group("keys")
def keys_group() -> None:
    """Show and export this node's public keys; create governance keys."""


def _node_keys(ctx: click.Context) -> tuple[Any, Any, str | None]:
    from node.keys import load_keys
    from node.settings import load_settings

    settings = load_settings(home_path(ctx))
    passphrase = passphrase_from_env_or_prompt(prompt_if_protected=settings.keys_dir)
    return settings, load_keys(settings.keys_dir, passphrase=passphrase), passphrase


@keys_group.command("show")
@json_option
@click.pass_context
def show_command(ctx: click.Context, as_json: bool) -> None:
    """Print this node's public keys and their key ids (SHA-256 of the raw key)."""
    settings, keys, passphrase = _node_keys(ctx)
    public = keys.public()
    info = {
        "node_id": settings.node_id,
        "keys": {
            name: {"public": value, "keyid": sha256_hex(b64decode(value, what=name, length=32))}
            for name, value in public.items()
        },
    }
    lines = [f"node {settings.node_id}"]
    lines += [f"  {name:<15} {k['public']}  keyid {k['keyid']}" for name, k in info["keys"].items()]
    staged = _staged(settings.keys_dir, passphrase)
    info["staged"] = staged
    if staged:
        lines.append("staged by 'keys rotate', in use once a directory lists them:")
        lines += [f"  {name:<15} {k['public']}  keyid {k['keyid']}" for name, k in staged.items()]
    emit(info, as_json, "\n".join(lines))


def _staged(keys_dir: Path, passphrase: str | None) -> dict[str, dict[str, str]]:
    from node.services.key_rotation import staged_public
    from protocol.canonical import b64encode

    return {
        f"{purpose}_key": {"public": b64encode(public), "keyid": sha256_hex(public)}
        for purpose, public in staged_public(keys_dir, passphrase).items()
    }


@keys_group.command("export")
@click.option("--roles", default=DEFAULT_ROLES, show_default=True, help="Comma-separated roles.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the descriptor here.")
@json_option
@click.pass_context
def export_command(ctx: click.Context, roles: str, out: Path | None, as_json: bool) -> None:
    """Write this node's member descriptor, for the federation's governance to put in the directory."""
    settings, keys, _passphrase = _node_keys(ctx)
    names = [r.strip() for r in roles.split(",") if r.strip()]
    descriptor = service.member_descriptor(settings, keys, names).to_dict()
    text = json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    if out.exists():
        raise service.DirectoryError(f"{out} exists; refusing to overwrite it", code="file_exists")
    out.write_text(text, encoding="utf-8")
    emit(
        {**descriptor, "out": str(out)},
        as_json,
        f"wrote the member descriptor of {settings.node_id} to {out}",
    )


def _new_passphrase(env_name: str | None) -> str | None:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise service.DirectoryError(
                f"environment variable {env_name} is empty", code="passphrase_required"
            )
        return value
    if sys.stdin.isatty():
        value = click.prompt(
            "Passphrase for the new governance key (empty: none)",
            hide_input=True,
            confirmation_prompt=True,
            default="",
            show_default=False,
        )
        return str(value) or None
    return None


@keys_group.command("governance-new")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Key file to create."
)
@click.option("--passphrase-env", help="Environment variable holding a passphrase to protect the key.")
@click.option(
    "--public-out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the public key."
)
@json_option
def governance_new_command(
    out: Path, passphrase_env: str | None, public_out: Path | None, as_json: bool
) -> None:
    """Create a governance signing key file (0600) and print its key id and public key."""
    passphrase = _new_passphrase(passphrase_env)
    if public_out is not None and public_out.exists():
        raise service.DirectoryError(f"{public_out} exists; refusing to overwrite it", code="file_exists")
    key = service.create_governance_key(out, passphrase=passphrase)
    public = {"keyid": key.keyid, "scheme": "ed25519", "public": key.to_dict()["public"]}
    if public_out is not None:
        public_out.write_text(json.dumps(public, indent=2) + "\n", encoding="utf-8")
    info = {**public, "file": str(out), "protected": bool(passphrase)}
    if not passphrase:
        click.echo("warning: the governance key is not passphrase-protected", err=True)
    emit(info, as_json, f"created governance key {key.keyid}\npublic key {public['public']}\nfile {out}")


@keys_group.command("rotate")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the new member descriptor here."
)
@click.option("--roles", help="Comma-separated roles (default: this node's roles in the directory in force).")
@click.option("--discard", is_flag=True, help="Remove staged keys that no directory lists yet, and stop.")
@json_option
@click.pass_context
def rotate_command(
    ctx: click.Context, out: Path | None, roles: str | None, discard: bool, as_json: bool
) -> None:
    """Stage a new signing and encryption key; the node switches to them once a directory lists them.

    Writes the member descriptor with the new public keys for governance (directory create
    --member). The log key stays: it names the log. See docs/federation.md, "A node's own keys".
    """
    from dataclasses import replace

    from node.cli.common import open_node_from_ctx
    from node.services import key_rotation
    from node.services.directory import installed_directory

    if out is not None and out.exists():
        raise service.DirectoryError(f"{out} exists; refusing to overwrite it", code="file_exists")
    node = open_node_from_ctx(ctx)
    try:
        if discard:
            removed = key_rotation.discard(node)
            text = "removed the staged keys" if removed else "no keys were staged"
            emit({"node_id": node.node_id, "discarded": removed}, as_json, text)
            return
        directory = installed_directory(node)
        listed = directory.member(node.node_id) if directory else None
        names = [r.strip() for r in roles.split(",") if r.strip()] if roles else None
        names = names or (list(listed.roles) if listed else DEFAULT_ROLES.split(","))
        public = key_rotation.stage(node, passphrase=node.passphrase)
        current = service.member_descriptor(node.settings, node.keys, names)
        descriptor = replace(current, signing_key=public["signing"], encryption_key=public["encryption"])
    finally:
        node.close()
    document = descriptor.to_dict()
    if out is not None:
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staged = {f"{p}_key": {"public": document[f"{p}_key"], "keyid": sha256_hex(k)} for p, k in public.items()}
    info: dict[str, Any] = {
        "node_id": descriptor.node_id,
        "staged": staged,
        "descriptor": document,
        "out": str(out) if out else None,
    }
    lines = [f"staged new keys for {descriptor.node_id} in {key_rotation.next_dir(node)} (the log key stays)"]
    lines += [f"  {name:<15} {k['public']}  keyid {k['keyid']}" for name, k in staged.items()]
    lines.append(
        f"wrote the member descriptor to {out}"
        if out
        else "member descriptor (save it with --out):\n" + json.dumps(document, indent=2)
    )
    lines.append(
        "next: governance lists these keys in a new directory version (palermo directory create --from"
        " CURRENT --member DESCRIPTOR); this node keeps its current keys until it installs that version"
    )
    emit(info, as_json, "\n".join(lines))
