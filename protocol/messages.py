"""Message types and their payloads. A node acts only on types listed here.

Each type names the payload fields it requires; unknown fields are refused. Requests are
POSTed to a peer; every request is answered by a reply envelope whose header ``reply_to``
names the request's id and envelope hash, so that every reply is also a signed receipt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.canonical import require_fields
from protocol.errors import MalformedError

HEX32_RE = re.compile(r"^[0-9a-f]{32}\Z")  # \Z: "$" would accept a trailing newline


def _nonce_payload(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required={"nonce"})
    if not isinstance(payload["nonce"], str) or not HEX32_RE.match(payload["nonce"]):
        raise MalformedError(f"{what}.nonce: expected 32 lowercase hex digits", code="invalid_payload")
    return dict(payload)


def _empty_payload(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required=set())
    return dict(payload)


@dataclass(frozen=True)
class MessageType:
    """A message type: its name, whether it is a request or a reply, and its payload check."""

    name: str
    kind: str  # "request" | "reply"
    check: Callable[[Any, str], dict[str, Any]]
    reply_types: tuple[str, ...] = ()


MESSAGE_TYPES: dict[str, MessageType] = {
    "ping": MessageType("ping", "request", _nonce_payload, reply_types=("pong",)),
    "pong": MessageType("pong", "reply", _nonce_payload),
    "receipt": MessageType("receipt", "reply", _empty_payload),
}


def register(message_type: MessageType) -> None:
    """Add a message type (used by later capabilities such as matching and queries)."""
    if message_type.name in MESSAGE_TYPES:
        raise ValueError(f"message type {message_type.name} is already registered")
    MESSAGE_TYPES[message_type.name] = message_type


def message_type(name: str) -> MessageType:
    """The registered type ``name``; raise MalformedError(code unknown_message_type) otherwise."""
    found = MESSAGE_TYPES.get(name)
    if found is None:
        raise MalformedError("message type is not one this node knows", code="unknown_message_type")
    return found


def check_payload(type_name: str, payload: Any) -> dict[str, Any]:
    """Validate ``payload`` for ``type_name``; raise MalformedError with code invalid_payload."""
    mtype = message_type(type_name)
    try:
        return mtype.check(payload, f"payload of {type_name}")
    except MalformedError as e:
        raise MalformedError(str(e), code="invalid_payload") from e
