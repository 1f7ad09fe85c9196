"""REST endpoints for matches and disclosures (the focal point's work; the admin role)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from node.app import current_node
from node.app.rest_api import _json_body, require_role, rest_api
from node.errors import OperatorError


def _by() -> str:
    return f"api:{g.principal.name}"[:64]


@rest_api.get("/matches")
@require_role("admin")
def list_matches() -> Any:
    from node.matching.followup import list_matches as listed

    args = request.args
    return jsonify(
        {
            "matches": listed(
                current_node(), peer=args.get("peer"), band=args.get("band"), status=args.get("status")
            )
        }
    )


@rest_api.get("/matches/<match_id>")
@require_role("admin")
def show_match(match_id: str) -> Any:
    from node.matching.followup import show_match as shown

    return jsonify(shown(current_node(), match_id))


@rest_api.post("/matches/<match_id>/review")
@require_role("admin")
def review_match(match_id: str) -> Any:
    """Body: ``{"decision": "confirmed" | "rejected"}``."""
    from node.matching.followup import review

    decision = _json_body().get("decision")
    if not isinstance(decision, str):
        raise OperatorError('send {"decision": "confirmed"} or {"decision": "rejected"}')
    return jsonify(review(current_node(), match_id, decision, by=_by()))


@rest_api.get("/match-rounds")
@require_role("admin")
def list_rounds() -> Any:
    from node.matching.history import list_rounds as listed

    return jsonify({"rounds": listed(current_node(), peer=request.args.get("peer"))})


@rest_api.get("/disclosures")
@require_role("admin")
def list_disclosures() -> Any:
    from node.matching.followup import list_disclosures as listed

    args = request.args
    return jsonify(
        {"disclosures": listed(current_node(), direction=args.get("direction"), status=args.get("status"))}
    )


@rest_api.post("/disclosures")
@require_role("admin")
def request_disclosure() -> Any:
    """Body: ``{"match_id": ..., "fields": [...]}``."""
    from node.matching.followup import request_disclosure as requested

    body = _json_body()
    match_id, fields = body.get("match_id"), body.get("fields")
    if (
        not isinstance(match_id, str)
        or not isinstance(fields, list)
        or not all(isinstance(f, str) for f in fields)
    ):
        raise OperatorError('send {"match_id": "...", "fields": ["prs_FirstName", ...]}')
    return jsonify(requested(current_node(), match_id, fields, by=_by()))


@rest_api.post("/disclosures/<disclosure_id>/<action>")
@require_role("admin")
def decide_disclosure(disclosure_id: str, action: str) -> Any:
    """``approve`` or ``refuse`` (body may carry ``{"reason": ...}`` when refusing)."""
    from node.matching.followup import decide_disclosure as decided

    if action not in ("approve", "refuse"):
        raise OperatorError("the action is approve or refuse", code="not_found", http_status=404)
    reason = _json_body().get("reason") if action == "refuse" else None
    if reason is not None and not isinstance(reason, str):
        raise OperatorError("reason must be a string")
    return jsonify(decided(current_node(), disclosure_id, action == "approve", by=_by(), reason=reason))
