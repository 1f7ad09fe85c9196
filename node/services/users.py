"""Local users of the REST API. A token is shown once; only its SHA-256 is stored.

Tokens are 32 random bytes, so a fast hash is enough (no password-style stretching needed):
guessing a token is as hard as guessing the 256-bit value itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from node.context import NodeContext
from node.errors import NotFoundError, OperatorError
from node.storage.models.exchange import User

ROLES = ("admin", "analyst", "auditor", "ingest")
TOKEN_PREFIX = "plm_"  # noqa: S105 - a visible prefix, not a secret
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(node: NodeContext, name: str, role: str) -> tuple[dict[str, Any], str]:
    """Create a user; returns its public record and the bearer token (shown once)."""
    if role not in ROLES:
        raise OperatorError(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    if not NAME_RE.match(name):
        raise OperatorError(
            "user name: 1-64 characters of letters, digits, '.', '_', '@' and '-'", code="invalid_name"
        )
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(node.random_bytes(32)).decode().rstrip("=")
    with node.db.transaction() as session:
        if session.execute(select(User).where(User.name == name)).scalar_one_or_none() is not None:
            raise OperatorError(f"a user named '{name}' exists already", code="user_exists", http_status=409)
        user = User(name=name, role=role, token_hash=token_hash(token), created_at=node.clock())
        session.add(user)
    return _public(user), token


def list_users(node: NodeContext) -> list[dict[str, Any]]:
    with node.db.transaction() as session:
        return [_public(u) for u in session.execute(select(User).order_by(User.name)).scalars()]


def revoke_user(node: NodeContext, name: str) -> dict[str, Any]:
    with node.db.transaction() as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError(f"no user named '{name}'")
        user.revoked_at = user.revoked_at or node.clock()
        return _public(user)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def authenticate(node: NodeContext, token: str) -> Principal | None:
    """The active user holding ``token``, or None."""
    digest = token_hash(token)
    with node.db.transaction() as session:
        user = session.execute(select(User).where(User.token_hash == digest)).scalar_one_or_none()
        if user is None or user.revoked_at is not None or not hmac.compare_digest(user.token_hash, digest):
            return None
        return Principal(name=user.name, role=user.role)


def _public(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "created_at": user.created_at,
        "revoked": user.revoked_at is not None,
    }
