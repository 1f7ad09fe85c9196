"""Errors raised by the node. Each has a stable ``code``; messages never contain personal data or secrets.

Branches follow who is at fault: the operator or local user asked for something invalid
(:class:`OperatorError`), a peer sent something we refuse (:class:`PeerRefusal`), or the network
or the peer failed (:class:`TransportError`).
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node raises on purpose."""

    code = "node_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class OperatorError(NodeError):
    """The operator or a local user asked for something invalid (bad arguments, files, state)."""

    code = "invalid_request"
    http_status = 400


class NotFoundError(OperatorError):
    code = "not_found"
    http_status = 404


class ConfigurationError(OperatorError):
    """The node home, settings or keys are missing or wrong."""

    code = "configuration_error"
    http_status = 500


class PeerRefusal(NodeError):
    """A peer sent something this node refuses (bad envelope, unknown sender, replay, ...).

    ``receipt``: the signed refusal receipt (protocol/refusal.py) returned in the error body, for
    an envelope addressed to this node.
    """

    code = "refused"
    http_status = 400
    receipt: dict[str, object] | None = None


class TransportError(NodeError):
    """A peer could not be reached or answered with something that is not a Palermo reply."""

    code = "transport_error"
    http_status = 502


class RemoteRefusal(NodeError):
    """A peer refused our envelope and said why (its error code is kept in ``code``)."""

    code = "remote_refused"
    http_status = 502
