"""What this node does with each accepted request type. Later capabilities register their handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import PeerRefusal
from node.storage.db import Database
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


class _LoggedWithFirstCommit(Database):
    """The node's database as one handler call sees it: the first transaction the handler's thread
    commits also appends the request's log entry, just before committing.

    A handler that changes something therefore never commits it without that entry (a crash
    cannot leave an acted-on request unlogged), and one that refuses before committing anything
    leaves the entry to its caller, which then logs the refusal alone. Other threads' transactions
    are left as they are: one writer of the entry, and no lock held across a commit.
    """

    def __init__(self, db: Database, log_request: Callable[[Session], None]) -> None:
        vars(self).update(vars(db))  # the same engine and session factories, not a second pool
        self._log_request = log_request
        self._thread = threading.get_ident()
        self.logged = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        carries = False
        with super().transaction() as session:
            yield session
            carries = not self.logged and threading.get_ident() == self._thread
            if carries:
                self._log_request(session)
        if carries:  # committed: only now is the entry in the log
            self.logged = True


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
    db = _LoggedWithFirstCommit(node.db, log_request)
    reply_type, payload = fn(replace(node, db=db), message)
    return Handled(reply_type, payload, db.logged)


@handler("ping")
def _ping(node: NodeContext, message: Message) -> tuple[str, dict[str, Any]]:
    return "pong", {"nonce": message.payload["nonce"]}
