"""REST endpoints of joint queries (the analyst role; auditors may read)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from node.app import current_node
from node.app.rest_api import _json_body, require_role, rest_api
from node.errors import OperatorError


@rest_api.post("/queries")
@require_role("analyst")
def run_query() -> Any:
    """Body: ``{"spec": {...}, "peers": "all" | ["node-id", ...]}``; answers with the combined run."""
    from node.query.runs import run_query as run
    from protocol.query.spec import parse_spec

    body = _json_body()
    peers = body.get("peers", "all")
    if not (peers == "all" or (isinstance(peers, list) and all(isinstance(p, str) for p in peers))):
        raise OperatorError('peers: send "all" or a list of node ids', code="invalid_request")
    node = current_node()
    spec = parse_spec(body.get("spec"), default_delta=node.settings.budget_delta)
    return jsonify(run(node, spec, peers, by=f"api:{g.principal.name}"[:64]))


@rest_api.get("/queries")
@require_role("analyst", "auditor")
def list_queries() -> Any:
    from node.query.runs import list_queries as listed

    try:
        limit = min(500, max(1, int(request.args.get("limit", "100"))))
    except ValueError as e:
        raise OperatorError("limit: expected a whole number") from e
    return jsonify({"queries": listed(current_node(), limit=limit)})


@rest_api.get("/queries/<query_id>")
@require_role("analyst", "auditor")
def show_query(query_id: str) -> Any:
    from node.query.runs import show_query as shown

    return jsonify(shown(current_node(), query_id))
