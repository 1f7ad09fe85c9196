"""What a federation directory lists, and the rules its fields share.

Governance keys (:class:`GovernanceKey`, :class:`GovernanceKeys`), members (:class:`Member`) and
governance signatures (:class:`Signature`), with the limits, the stable error codes and the field
checks of the directory wire format (protocol/SPEC.md, "Federation directory"). Each type is a
frozen dataclass that validates when built. The document that holds them is in
:mod:`protocol.directory`, which re-exports every public name defined here: import them from there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import nacl.public
import nacl.signing

from protocol.canonical import b64decode, b64encode, expect_type, require_fields, sha256_hex
from protocol.envelope import check_node_id
from protocol.errors import MalformedError

SCHEME = "ed25519"
ROLES = ("analyst", "data-owner", "linkage-unit", "witness")
KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_INT = 2**53 - 1
MAX_KEYS = 64
MAX_URL_LENGTH = 2048
KEYID_RE = re.compile(r"[0-9a-f]{64}")
COUNTRY_RE = re.compile(r"[A-Z]{3}")

# Stable error codes (ProtocolError.code).
MALFORMED = "directory_malformed"
UNSUPPORTED = "directory_unsupported"
TOO_LARGE = "directory_too_large"
NO_KEYS = "directory_no_keys"
BAD_THRESHOLD = "directory_bad_threshold"
KEYID_MISMATCH = "directory_keyid_mismatch"
DUPLICATE_MEMBER = "directory_duplicate_member"
DUPLICATE_KEY = "directory_duplicate_key"
UNSORTED = "directory_unsorted"
NOT_MEMBER = "directory_not_member"
THRESHOLD = "directory_threshold"
EXPIRED = "directory_expired"
NOT_NEWER = "directory_not_newer"
ROLLBACK = "directory_rollback"
FEDERATION_MISMATCH = "directory_federation_mismatch"
BAD_QUORUM = "directory_bad_quorum"

_GOVERNANCE_FIELDS = {"keys", "threshold"}
_KEY_FIELDS = {"scheme", "public"}
_MEMBER_FIELDS = {"node_id", "country", "url", "signing_key", "encryption_key", "log_key", "roles"}
_SIGNATURE_FIELDS = {"keyid", "sig"}
_POLICY_FIELDS = {"quorum", "max_delay"}


@contextmanager
def _recoded() -> Iterator[None]:
    """Give shape errors from the shared helpers (code ``malformed``) the directory's code."""
    try:
        yield
    except MalformedError as e:
        if e.code != MalformedError.code:
            raise
        raise MalformedError(e.message, code=MALFORMED) from e


def _integer(value: Any, *, what: str, low: int) -> int:
    expect_type(value, int, what=what)
    if not low <= value <= MAX_INT:
        raise MalformedError(
            f"{what}: expected an integer from {low} to 2**53-1, got {value}", code=MALFORMED
        )
    return int(value)


def _pattern(value: Any, pattern: re.Pattern[str], *, what: str, expected: str) -> str:
    expect_type(value, str, what=what)
    if not pattern.fullmatch(value):
        raise MalformedError(f"{what}: expected {expected}", code=MALFORMED)
    return str(value)


def _check_url(value: Any, *, what: str) -> str:
    expect_type(value, str, what=what)
    expected = f"{what}: expected an http:// or https:// URL with a host, no credentials, no fragment"
    if (
        len(value) > MAX_URL_LENGTH
        or not value.isascii()
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise MalformedError(expected, code=MALFORMED)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as e:
        raise MalformedError(expected, code=MALFORMED) from e
    if (
        not value.startswith(("http://", "https://"))
        or not parts.hostname
        or "@" in parts.netloc
        or parts.fragment
    ):
        raise MalformedError(expected, code=MALFORMED)
    return str(value)


def _raw_key(value: Any, *, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise MalformedError(f"{what}: expected {KEY_SIZE} bytes", code=MALFORMED)
    return value


def iso_time(timestamp: int) -> str:
    """Unix seconds as an ISO 8601 UTC time (for messages and reports)."""
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp} (unix seconds)"


@dataclass(frozen=True)
class GovernanceKey:
    """One governance public key (Ed25519). Its key id is derived, never stored apart from it."""

    public: bytes

    def __post_init__(self) -> None:
        _raw_key(self.public, what="governance key")

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of the raw 32-byte public key."""
        return sha256_hex(self.public)

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return nacl.signing.VerifyKey(self.public)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": SCHEME, "public": b64encode(self.public)}

    @classmethod
    def from_dict(cls, keyid: str, obj: Any) -> GovernanceKey:
        """Parse one ``keys`` entry; raises MalformedError (``directory_*`` codes)."""
        what = f"governance.keys[{keyid[:16]}]"
        with _recoded():
            _pattern(keyid, KEYID_RE, what="governance key id", expected="64 lowercase hex digits")
            require_fields(obj, what=what, required=_KEY_FIELDS)
            if expect_type(obj["scheme"], str, what=f"{what}.scheme") != SCHEME:
                raise MalformedError(f"{what}.scheme: expected '{SCHEME}'", code=UNSUPPORTED)
            key = cls(public=b64decode(obj["public"], what=f"{what}.public", length=KEY_SIZE))
        if key.keyid != keyid:
            raise MalformedError(f"{what}: key id is not the SHA-256 of the public key", code=KEYID_MISMATCH)
        return key


@dataclass(frozen=True)
class GovernanceKeys:
    """The governance key set and how many of its keys must sign (1 ≤ threshold ≤ number of keys)."""

    keys: tuple[GovernanceKey, ...]
    threshold: int

    def __post_init__(self) -> None:
        if not isinstance(self.keys, tuple | list) or not all(
            isinstance(k, GovernanceKey) for k in self.keys
        ):
            raise MalformedError("governance.keys: expected governance keys", code=MALFORMED)
        if not self.keys:
            raise MalformedError("governance.keys: expected at least one key, got none", code=NO_KEYS)
        if len(self.keys) > MAX_KEYS:
            raise MalformedError(
                f"governance.keys: at most {MAX_KEYS} keys, got {len(self.keys)}", code=MALFORMED
            )
        keyids = [k.keyid for k in self.keys]
        if len(set(keyids)) != len(keyids):
            raise MalformedError("governance.keys: the same key is listed twice", code=DUPLICATE_KEY)
        object.__setattr__(self, "keys", tuple(sorted(self.keys, key=lambda k: k.keyid)))
        with _recoded():
            expect_type(self.threshold, int, what="governance.threshold")
        if not 1 <= self.threshold <= len(self.keys):
            raise MalformedError(
                f"governance.threshold: expected 1 to {len(self.keys)} (the key count), got {self.threshold}",
                code=BAD_THRESHOLD,
            )

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(k.keyid for k in self.keys)

    def get(self, keyid: str) -> GovernanceKey | None:
        """The key with this key id, or None."""
        return next((k for k in self.keys if k.keyid == keyid), None)

    def to_dict(self) -> dict[str, Any]:
        return {"keys": {k.keyid: k.to_dict() for k in self.keys}, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, obj: Any) -> GovernanceKeys:
        """Parse ``governance``; raises MalformedError (``directory_*`` codes)."""
        with _recoded():
            require_fields(obj, what="governance", required=_GOVERNANCE_FIELDS)
            keys = expect_type(obj["keys"], dict, what="governance.keys")
            if len(keys) > MAX_KEYS:
                raise MalformedError(
                    f"governance.keys: at most {MAX_KEYS} keys, got {len(keys)}", code=MALFORMED
                )
        return cls(
            keys=tuple(GovernanceKey.from_dict(k, v) for k, v in keys.items()), threshold=obj["threshold"]
        )


@dataclass(frozen=True)
class WitnessPolicy:
    """How many witnesses must cosign a member's log, and how soon (protocol/SPEC.md 6.1, 7.10).

    A checkpoint of member M's log is *witnessed* when at least ``quorum`` members with the
    ``witness`` role other than M cosigned it; an entry must be under a witnessed checkpoint
    within ``max_delay`` seconds of being logged. The directory checks that the quorum can be met.
    """

    quorum: int
    max_delay: int

    def __post_init__(self) -> None:
        with _recoded():
            _integer(self.quorum, what="witness_policy.quorum", low=1)
            _integer(self.max_delay, what="witness_policy.max_delay", low=1)

    def to_dict(self) -> dict[str, Any]:
        return {"quorum": self.quorum, "max_delay": self.max_delay}

    @classmethod
    def from_dict(cls, obj: Any) -> WitnessPolicy:
        with _recoded():
            require_fields(obj, what="witness_policy", required=_POLICY_FIELDS)
        return cls(quorum=obj["quorum"], max_delay=obj["max_delay"])


@dataclass(frozen=True)
class Member:
    """One node of the federation as the directory lists it. Keys are raw 32-byte public keys."""

    node_id: str
    country: str
    url: str
    signing_key: bytes
    encryption_key: bytes
    log_key: bytes
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        with _recoded():
            check_node_id(self.node_id, what="member.node_id")
            what = f"member[{self.node_id}]"
            _pattern(self.country, COUNTRY_RE, what=f"{what}.country", expected="an ISO 3166-1 alpha-3 code")
            _check_url(self.url, what=f"{what}.url")
            for name in ("signing_key", "encryption_key", "log_key"):
                _raw_key(getattr(self, name), what=f"{what}.{name}")
            if not isinstance(self.roles, tuple | list) or not self.roles:
                raise MalformedError(f"{what}.roles: expected a non-empty list of roles", code=MALFORMED)
            for role in self.roles:
                if expect_type(role, str, what=f"{what}.roles[]") not in ROLES:
                    raise MalformedError(
                        f"{what}.roles: expected roles from {', '.join(ROLES)}", code=MALFORMED
                    )
        if list(self.roles) != sorted(set(self.roles)):
            raise MalformedError(f"{what}.roles: expected a sorted list without repeats", code=UNSORTED)
        object.__setattr__(self, "roles", tuple(self.roles))

    @property
    def keys(self) -> tuple[bytes, bytes, bytes]:
        return (self.signing_key, self.encryption_key, self.log_key)

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        """The member's identity key (verifies its envelopes)."""
        return nacl.signing.VerifyKey(self.signing_key)

    @property
    def public_key(self) -> nacl.public.PublicKey:
        """The member's X25519 key (envelopes to it are encrypted to this key)."""
        return nacl.public.PublicKey(self.encryption_key)

    @property
    def log_verify_key(self) -> nacl.signing.VerifyKey:
        return nacl.signing.VerifyKey(self.log_key)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "country": self.country,
            "url": self.url,
            "signing_key": b64encode(self.signing_key),
            "encryption_key": b64encode(self.encryption_key),
            "log_key": b64encode(self.log_key),
            "roles": list(self.roles),
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Member:
        """Parse a member entry (or a member descriptor); raises MalformedError (``directory_*`` codes)."""
        with _recoded():
            require_fields(obj, what="member", required=_MEMBER_FIELDS)
            what = f"member[{check_node_id(obj['node_id'], what='member.node_id')}]"
            signing, encryption, log = (
                b64decode(obj[n], what=f"{what}.{n}", length=KEY_SIZE)
                for n in ("signing_key", "encryption_key", "log_key")
            )
            roles = expect_type(obj["roles"], list, what=f"{what}.roles")
        return cls(
            node_id=obj["node_id"],
            country=obj["country"],
            url=obj["url"],
            signing_key=signing,
            encryption_key=encryption,
            log_key=log,
            roles=tuple(roles),
        )


@dataclass(frozen=True)
class Signature:
    """One governance signature over :meth:`Directory.signing_bytes`."""

    keyid: str
    sig: bytes

    def __post_init__(self) -> None:
        with _recoded():
            _pattern(self.keyid, KEYID_RE, what="signature.keyid", expected="64 lowercase hex digits")
        if not isinstance(self.sig, bytes) or len(self.sig) != SIGNATURE_SIZE:
            raise MalformedError(f"signature.sig: expected {SIGNATURE_SIZE} bytes", code=MALFORMED)

    def to_dict(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "sig": b64encode(self.sig)}

    @classmethod
    def from_dict(cls, obj: Any) -> Signature:
        with _recoded():
            require_fields(obj, what="signature", required=_SIGNATURE_FIELDS)
            sig = b64decode(obj["sig"], what="signature.sig", length=SIGNATURE_SIZE)
        return cls(keyid=obj["keyid"], sig=sig)
