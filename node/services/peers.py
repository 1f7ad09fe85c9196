"""Peers as the directory lists them, and the signed, encrypted round trip that checks each one."""

from __future__ import annotations

import time
from typing import Any

from node.context import NodeContext
from node.errors import NodeError, OperatorError
from node.services.directory import current_directory
from node.services.exchange import send_request


def list_peers(node: NodeContext) -> list[dict[str, Any]]:
    """Every other member of the directory in force (raises when none is installed or it expired)."""
    directory = current_directory(node)
    return [
        {"id": m.node_id, "country": m.country, "url": m.url, "roles": list(m.roles)}
        for m in directory.members
        if m.node_id != node.node_id
    ]


def ping(node: NodeContext, peer_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Send a ping envelope to each peer (all when ``peer_ids`` is empty) and time the verified pong."""
    peers = [p["id"] for p in list_peers(node)]
    targets = peer_ids or peers
    unknown = [p for p in targets if p not in peers]
    if unknown:
        raise OperatorError(
            f"not a peer in this node's directory: {', '.join(unknown)}", code="unknown_peer", http_status=404
        )
    return [_ping_one(node, peer) for peer in targets]


def _ping_one(node: NodeContext, peer: str) -> dict[str, Any]:
    nonce = node.random_bytes(16).hex()
    started = time.perf_counter()
    try:
        exchange = send_request(node, peer, "ping", {"nonce": nonce})
    except NodeError as e:
        return {"peer": peer, "ok": False, "error": e.code, "message": e.message}
    rtt_ms = round((time.perf_counter() - started) * 1000, 1)
    if exchange.reply.payload.get("nonce") != nonce:
        return {
            "peer": peer,
            "ok": False,
            "error": "nonce_mismatch",
            "message": "the pong does not echo our nonce",
        }
    return {
        "peer": peer,
        "ok": True,
        "rtt_ms": rtt_ms,
        "request_hash": exchange.request_hash,
        "reply_hash": exchange.reply_hash,
    }
