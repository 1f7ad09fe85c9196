"""``palermo users``: local users of the REST API and their bearer tokens."""

from __future__ import annotations

import click

from node.cli.common import emit, json_option, open_node_from_ctx, table


@click.group("users")
def users_group() -> None:
    """Local users of the REST API (admin, analyst, auditor, ingest)."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "analyst", "auditor", "ingest"]))
@json_option
@click.pass_context
def add(ctx: click.Context, name: str, role: str, as_json: bool) -> None:
    """Create a user and print its bearer token (shown only this once)."""
    from node.services.users import add_user

    node = open_node_from_ctx(ctx)
    user, token = add_user(node, name, role)
    emit(
        {**user, "token": token},
        as_json,
        f"Created {role} user '{name}'. Token (store it now, it is not shown again):\n{token}",
    )


@users_group.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List users (never their tokens)."""
    from node.services.users import list_users

    rows = list_users(open_node_from_ctx(ctx))
    emit(
        {"users": rows},
        as_json,
        lambda d: (
            table(
                [[u["name"], u["role"], "revoked" if u["revoked"] else "active"] for u in d["users"]],
                ["name", "role", "state"],
            )
            if d["users"]
            else "No users yet ('palermo users add NAME --role R')."
        ),
    )


@users_group.command("revoke")
@click.argument("name")
@json_option
@click.pass_context
def revoke(ctx: click.Context, name: str, as_json: bool) -> None:
    """Revoke a user's token."""
    from node.services.users import revoke_user

    emit(revoke_user(open_node_from_ctx(ctx), name), as_json, f"Revoked '{name}'.")
