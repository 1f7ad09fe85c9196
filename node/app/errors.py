"""One error handler: every error is JSON ``{"error": code, "message": text}`` without internals.

A refused envelope's error also carries the node's signed refusal receipt (``receipt``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from node.errors import NodeError, PeerRefusal
from protocol.errors import ProtocolError

log = logging.getLogger("palermo.http")


def error_response(code: str, message: str, status: int, **extra: Any) -> Any:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(NodeError)
    def _node_error(e: NodeError) -> Any:
        if isinstance(e, PeerRefusal) and e.receipt is not None:  # signed: the peer can prove it
            return error_response(e.code, e.message, e.http_status, receipt=e.receipt)
        return error_response(e.code, e.message, e.http_status)

    @app.errorhandler(ProtocolError)
    def _protocol_error(e: ProtocolError) -> Any:
        return error_response(e.code, e.message, 400)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e: RequestEntityTooLarge) -> Any:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response("body_too_large", f"the request body is larger than {limit} bytes", 413)

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException) -> Any:
        code = (e.name or "http_error").lower().replace(" ", "_")
        return error_response(code, e.description or code, e.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        log.error("unexpected error", extra={"code": type(e).__name__})
        return error_response("internal_error", "the node failed to handle the request", 500)
