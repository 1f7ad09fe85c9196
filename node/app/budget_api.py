"""REST endpoint for the privacy budget of joint queries (analysts and auditors)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from node.app import current_node
from node.app.rest_api import require_role, rest_api


@rest_api.get("/budget")
@require_role("analyst", "auditor")
def show_budget() -> Any:
    """This period's caps, spending per peer and releases; ``?peer=ID`` narrows to one peer."""
    from node.query.ledger import budget_summary

    return jsonify(budget_summary(current_node(), peer=request.args.get("peer") or None))
