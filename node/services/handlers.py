"""What this node does with each accepted request type. Later capabilities register their handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

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


@dataclass(frozen=True)
class Handled:
    """A handler's reply, and whether the request's log entry was committed with the handler's work."""

    reply_type: str
    payload: dict[str, Any]
    logged: bool


def handle_request(node: NodeContext, message: Message, *, log_request: Callable[[Session], None]) -> Handled:
    """Run the handler for an accepted request; returns its reply and whether ``log_request`` ran.

    ``log_request`` appends the request's ``accepted`` entry; it runs inside the first transaction
    the handler commits, if any. Raises what the handler raises (a refusal is a NodeError or
    ProtocolError), PeerRefusal ``unknown_message_type`` when no handler is registered.
    """
    load_handlers()
    fn = HANDLERS.get(message.header.type)
    if fn is None:
        raise PeerRefusal(
            "this node does not handle that message type", code="unknown_message_type", http_status=422
        )
    # The first transaction the handler's thread commits also appends the request's entry: work it
    # changes is never committed without that entry, and a refusal before any commit leaves the
    # entry to the caller, which then logs the refusal alone. No lock is held across a commit.
    with node.db.before_first_commit(log_request) as first:
        reply_type, payload = fn(node, message)
    return Handled(reply_type, payload, first.done)


@handler("ping")
def _ping(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    return "pong", {"nonce": message.payload["nonce"]}
