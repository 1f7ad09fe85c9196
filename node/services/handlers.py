"""What this node does with each accepted request type. Later capabilities register their handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.context import NodeContext
from node.errors import PeerRefusal
from protocol.envelope import Message

Handler = Callable[[NodeContext, Message], tuple[str, dict[str, Any]]]

HANDLERS: dict[str, Handler] = {}


def handler(type_name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[type_name] = fn
        return fn

    return register


def load_handlers() -> None:
    """Import the modules that register handlers of later capabilities (once; imports are cached)."""
    import node.matching.followup
    import node.matching.responder
    import node.matching.unit
    import node.query.responder
    import node.services.witness  # noqa: F401


def handle_request(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    """Run the handler for an accepted request; returns the reply type and payload."""
    load_handlers()
    fn = HANDLERS.get(message.header.type)
    if fn is None:
        raise PeerRefusal(
            "this node does not handle that message type", code="unknown_message_type", http_status=422
        )
    return fn(node, message)


@handler("ping")
def _ping(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    return "pong", {"nonce": message.payload["nonce"]}
