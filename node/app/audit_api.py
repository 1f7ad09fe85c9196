"""REST endpoints for auditors: signed checkpoints with their cosignatures, and Merkle proofs."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from node.app import current_node
from node.app.rest_api import require_role, rest_api
from node.errors import OperatorError

MAX_SIZE = 2**53 - 1  # a log index or size (protocol/SPEC.md 7.1)


def _int_arg(name: str) -> int:
    value = request.args.get(name, type=int)
    if value is None or not 0 <= value <= MAX_SIZE:
        raise OperatorError(
            f"{name}: expected a whole number from 0 to 2**53-1 (query parameter)", code="invalid_request"
        )
    return value


@rest_api.get("/audit/checkpoints")
@require_role("auditor")
def audit_checkpoints() -> Any:
    """The newest signed checkpoints (C2SP notes with the witnesses' cosignatures)."""
    from node.services.witness import list_checkpoints

    limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 1000)
    return jsonify({"checkpoints": list_checkpoints(current_node(), limit=limit)})


@rest_api.get("/audit/proofs/inclusion")
@require_role("auditor")
def audit_inclusion() -> Any:
    """``?index=I&size=N``: entry I, its leaf hash and its RFC 9162 inclusion proof in checkpoint N."""
    from node.services.witness import inclusion

    return jsonify(inclusion(current_node(), _int_arg("index"), _int_arg("size")))


@rest_api.get("/audit/proofs/consistency")
@require_role("auditor")
def audit_consistency() -> Any:
    """``?old=M&new=N``: the RFC 9162 consistency proof between the checkpoints at sizes M and N."""
    from node.services.witness import consistency

    return jsonify(consistency(current_node(), _int_arg("old"), _int_arg("new")))


@rest_api.get("/audit/bundle")
@require_role("auditor")
def audit_bundle() -> Any:
    """The node's audit bundle (palermo-audit-bundle/1, gzip), exported now, as a download.

    Without asking the witnesses first (no peer calls inside a request): the bundle shows the
    cosignatures the scheduler's witnessing collected after each checkpoint.
    """
    import io
    import tempfile
    from pathlib import Path

    from flask import send_file

    from node.services.audit_bundle import export_bundle

    node = current_node()
    folder = Path(tempfile.mkdtemp(prefix="palermo-bundle-"))
    path = folder / f"{node.node_id}.bundle"
    try:
        export_bundle(node, path, witness=False)
        data = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
    return send_file(
        io.BytesIO(data), mimetype="application/gzip", as_attachment=True, download_name=path.name
    )
