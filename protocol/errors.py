"""Errors raised by the protocol package.

Every error carries a stable machine-readable ``code`` (shown in JSON output and sent to
peers) and a message for a person. Messages say what was expected and what arrived; they
never contain keys, tokens or personal data.
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Base of every error raised by :mod:`protocol`."""

    code = "protocol_error"
    # Set by envelope.open_envelope when the envelope's signature verified and a later check
    # (SPEC 4.8 steps 9-13) refused it: the signed header, whose id and type may then be logged.
    verified_header: Any = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class MalformedError(ProtocolError):
    """The bytes or fields are not of the expected shape (wrong type, missing, unknown)."""

    code = "malformed"


class VerificationError(ProtocolError):
    """A signature, decryption, binding or trust check failed."""

    code = "verification_failed"


class ExpiredError(ProtocolError):
    """Something is used outside its validity window."""

    code = "expired"


class RollbackError(ProtocolError):
    """A version or sequence number went backwards."""

    code = "rollback"


class InvalidRequestError(ProtocolError):
    """The caller (an operator or local code) asked for something invalid."""

    code = "invalid_request"
