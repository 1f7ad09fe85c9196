"""The peer API: envelopes from other nodes (protocol/SPEC.md, "Exchanges over HTTP")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from node.app import current_node
from node.services.exchange import receive

peer_api = Blueprint("peer_api", __name__, url_prefix="/peer/v1")


@peer_api.post("/envelopes")
def envelopes() -> Any:
    body = request.get_data(cache=False)  # bounded by MAX_CONTENT_LENGTH (413 body_too_large)
    reply = receive(current_node(), body)
    return Response(reply, status=200, content_type="application/json")
