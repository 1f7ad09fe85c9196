"""The local REST API for the node's own users. Every endpoint names the roles that may call it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request

from node import __version__
from node.app import current_node
from node.errors import NodeError, OperatorError
from node.services import outbox, peers, users

rest_api = Blueprint("rest_api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(NodeError):
    code = "unauthorized"
    http_status = 401


class Forbidden(NodeError):
    code = "forbidden"
    http_status = 403


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow a bearer token whose user has one of ``roles`` (admin may do everything)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized(
                    "send 'Authorization: Bearer <token>' (create one with 'palermo users add')"
                )
            principal = users.authenticate(current_node(), token.strip())
            if principal is None:
                raise Unauthorized("the token is unknown or revoked")
            if principal.role != "admin" and principal.role not in roles:
                raise Forbidden(
                    f"the {principal.role} role may not do this (needs: {', '.join(roles) or 'admin'})"
                )
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # functools.wraps loses the TypeVar

    return decorate


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None and request.get_data(cache=True):
        raise OperatorError("the request body is not valid JSON", code="malformed_json")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OperatorError("the request body must be a JSON object", code="malformed_json")
    return data


@rest_api.get("/status")
@require_role("admin", "analyst", "auditor", "ingest")
def status() -> Any:
    node = current_node()
    from node.services.directory import installed_directory

    directory = installed_directory(node)
    return jsonify(
        {
            "node_id": node.node_id,
            "country": node.settings.country,
            "version": __version__,
            "directory": None
            if directory is None
            else {
                "federation": directory.federation,
                "version": directory.version,
                "expires": directory.expires,
                "expired": directory.is_expired(node.clock()),
            },
            "user": {"name": g.principal.name, "role": g.principal.role},
        }
    )


@rest_api.get("/peers")
@require_role("admin", "analyst", "auditor")
def list_peers() -> Any:
    return jsonify({"peers": peers.list_peers(current_node())})


@rest_api.post("/peers/ping")
@require_role("admin")
def ping_peers() -> Any:
    body = _json_body()
    targets = body.get("peers")
    if targets is not None and (
        not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
    ):
        raise OperatorError("'peers' must be a list of node ids", code="invalid_request")
    return jsonify({"results": peers.ping(current_node(), targets)})


@rest_api.get("/outbox")
@require_role("admin")
def list_outbox() -> Any:
    status = request.args.get("status")
    return jsonify({"messages": outbox.list_messages(current_node(), status=status)})


@rest_api.get("/records/stats")
@require_role("admin", "analyst", "ingest")
def records_stats() -> Any:
    from node.services.records import stats

    return jsonify(stats(current_node()))


@rest_api.post("/records")
@require_role("ingest")
def upload_records() -> Any:
    """Load a file sent as the request body; ``?format=csv|jsonl|xlsx`` (default csv)."""
    import tempfile
    from pathlib import Path

    from node.services.ingest import ingest_file

    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "jsonl", "xlsx"):
        raise OperatorError("format must be csv, jsonl or xlsx", code="invalid_format")
    skip = request.args.get("skip_invalid", "false").lower() in ("1", "true", "yes")
    node = current_node()
    with tempfile.TemporaryDirectory(dir=node.settings.home) as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        path.write_bytes(request.get_data(cache=False))
        path.chmod(0o600)
        report = ingest_file(
            node, path, skip_invalid=skip, rejects_path=Path(tmp) / "rejects.csv" if skip else None
        )
        result = report.to_dict()
        result.pop("rejects_file", None)  # lives in a temporary folder that is gone now
        return jsonify(result)


@rest_api.get("/audit/verify")
@require_role("auditor")
def audit_verify() -> Any:
    from node.services.exchange_log import verify

    report = verify(current_node())
    return jsonify(report.to_dict())


@rest_api.get("/audit/log")
@require_role("auditor")
def audit_log() -> Any:
    from node.services.exchange_log import recent_entries

    limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), 1000)
    return jsonify({"entries": recent_entries(current_node(), limit=limit)})
