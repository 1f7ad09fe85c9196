"""``palermo peers`` and ``palermo outbox``: talking to the other members of the federation."""

from __future__ import annotations

from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx, table


@click.group("peers")
def peers_group() -> None:
    """The other members of the federation."""


@peers_group.command("list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the peers named by the directory in force."""
    from node.services.peers import list_peers

    rows = list_peers(open_node_from_ctx(ctx))
    emit(
        {"peers": rows},
        as_json,
        lambda d: table(
            [[p["id"], p["country"], p["url"], ",".join(p["roles"])] for p in d["peers"]],
            ["id", "country", "url", "roles"],
        ),
    )


@peers_group.command("ping")
@click.argument("peer_ids", nargs=-1)
@click.option("--queue", is_flag=True, help="Put the ping in the durable outbox instead of sending it now.")
@json_option
@click.pass_context
def ping(ctx: click.Context, peer_ids: tuple[str, ...], queue: bool, as_json: bool) -> None:
    """Send a signed, encrypted ping to each peer (or the ones named) and show the round trip."""
    node = open_node_from_ctx(ctx)
    if queue:
        from node.services.outbox import enqueue
        from node.services.peers import list_peers

        targets = list(peer_ids) or [p["id"] for p in list_peers(node)]
        queued = [
            {"peer": p, "message_id": enqueue(node, p, "ping", {"nonce": node.random_bytes(16).hex()})}
            for p in targets
        ]
        emit(
            {"queued": queued},
            as_json,
            lambda d: "\n".join(f"queued ping to {q['peer']} ({q['message_id']})" for q in d["queued"]),
        )
        return
    from node.services.peers import ping as ping_peers

    results = ping_peers(node, list(peer_ids))
    emit({"results": results}, as_json, _render_ping)
    if not all(r["ok"] for r in results):
        ctx.exit(1)


def _render_ping(data: dict[str, Any]) -> str:
    rows = [
        [
            r["peer"],
            "ok" if r["ok"] else "FAILED",
            f"{r['rtt_ms']} ms" if r["ok"] else f"{r['error']}: {r['message']}",
        ]
        for r in data["results"]
    ]
    return table(rows, ["peer", "status", "round trip"])


@click.group("outbox")
def outbox_group() -> None:
    """The durable outbox of messages waiting for their peer."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]))
@json_option
@click.pass_context
def outbox_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """Show outbox messages (metadata only)."""
    from node.services.outbox import list_messages

    rows = list_messages(open_node_from_ctx(ctx), status=status)
    emit(
        {"messages": rows},
        as_json,
        lambda d: (
            table(
                [
                    [
                        m["message_id"][:12],
                        m["peer"],
                        m["type"],
                        m["status"],
                        m["attempts"],
                        m["last_error"] or "",
                    ]
                    for m in d["messages"]
                ],
                ["message", "peer", "type", "status", "attempts", "last error"],
            )
            if d["messages"]
            else "The outbox is empty."
        ),
    )


@outbox_group.command("flush")
@json_option
@click.pass_context
def outbox_flush(ctx: click.Context, as_json: bool) -> None:
    """Deliver what is due now (the scheduler does this every few seconds while the node serves)."""
    from node.jobs import delivery_lock
    from node.services.outbox import deliver_due

    node = open_node_from_ctx(ctx)
    with delivery_lock(node.settings.home):
        report = deliver_due(node)
    emit(
        report.to_dict(),
        as_json,
        lambda r: f"delivered {r['delivered']}, will retry {r['retried']}, failed {r['failed']}",
    )
