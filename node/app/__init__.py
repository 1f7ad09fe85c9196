"""The node's web application: ``create_app(settings)``, no module-level app (Flask tutorial style).

Blueprints: ``/peer/v1`` (envelopes from peers), ``/api/v1`` (the node's own users, bearer
tokens per role) and ``/health`` (no authentication, for load balancers).
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from flask import Flask, g, jsonify, request

from node import __version__
from node.context import NodeContext, open_node
from node.logs import configure_logging
from node.settings import Settings

log = logging.getLogger("palermo.http")


def create_app(
    settings: Settings, *, node: NodeContext | None = None, passphrase: str | None = None
) -> Flask:
    """Build the app for one node. ``node`` may be given (tests); otherwise it is opened from ``settings.home``."""
    node = node or open_node(settings.home, passphrase=passphrase)
    configure_logging(settings.log_level, settings.node_id)
    app = Flask("palermo")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["palermo_node"] = node

    from node.app.errors import register_error_handlers
    from node.app.peer_api import peer_api
    from node.app.rest_api import rest_api

    for routes in ("matching_api", "query_api", "budget_api", "audit_api"):  # add their routes to rest_api
        importlib.import_module(f"node.app.{routes}")

    register_error_handlers(app)
    app.register_blueprint(peer_api)
    app.register_blueprint(rest_api)

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok", "node_id": node.node_id, "version": __version__})

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log_request(response: Any) -> Any:
        if request.path != "/health":
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(
                        (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1
                    ),
                },
            )
        return response

    return app


def current_node() -> NodeContext:
    from flask import current_app

    node = current_app.extensions["palermo_node"]
    assert isinstance(node, NodeContext)
    return node
