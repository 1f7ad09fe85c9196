"""The federation directory: members, their keys, endpoints and roles, signed by governance keys.

Modelled on the root role of The Update Framework (TUF specification, "root.json" and the
client workflow step 5.3 "Update the root role"): a threshold of governance keys signs each
version; a new version must be signed by a threshold of the keys of the version it replaces
and by a threshold of its own keys; versions only go up; an expired directory is refused.
See protocol/SPEC.md, "Federation directory", for the wire format.

Parsing builds frozen dataclasses that validate when built, so an instance is always
well-formed. Only :func:`verify_initial` and :func:`verify_update` hand out a *trusted*
:class:`Directory`; :func:`assess_initial` / :func:`assess_update` explain a verdict for reports.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.public
import nacl.signing

from protocol.canonical import (
    b64decode,
    b64encode,
    canonical_json,
    expect_type,
    parse_json,
    require_fields,
    sha256_hex,
)
from protocol.envelope import check_node_id
from protocol.errors import (
    ExpiredError,
    InvalidRequestError,
    MalformedError,
    ProtocolError,
    RollbackError,
    VerificationError,
)

DIRECTORY_TYPE = "palermo-directory"
SPEC_VERSION = 1
SIGNING_CONTEXT = b"palermo/directory/v1\n"
SCHEME = "ed25519"
ROLES = ("analyst", "data-owner", "linkage-unit", "witness")
KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_INT = 2**53 - 1
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_MEMBERS = 1000
MAX_KEYS = 64
MAX_SIGNATURES = 256
MAX_URL_LENGTH = 2048
KEYID_RE = re.compile(r"[0-9a-f]{64}")
COUNTRY_RE = re.compile(r"[A-Z]{3}")
FEDERATION_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")

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

_DOCUMENT_FIELDS = {"signed", "signatures"}
_SIGNED_FIELDS = {"_type", "spec_version", "federation", "version", "expires", "governance", "members"}
_GOVERNANCE_FIELDS = {"keys", "threshold"}
_KEY_FIELDS = {"scheme", "public"}
_MEMBER_FIELDS = {"node_id", "country", "url", "signing_key", "encryption_key", "log_key", "roles"}
_SIGNATURE_FIELDS = {"keyid", "sig"}


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


def _short(keyids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(k[:16] for k in keyids) or "none"


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
class Directory:
    """The content of one directory version. Only verify_* return an instance you may trust."""

    federation: str
    version: int
    expires: int
    governance: GovernanceKeys
    members: tuple[Member, ...]

    def __post_init__(self) -> None:
        with _recoded():
            _pattern(
                self.federation, FEDERATION_RE, what="federation", expected="1-63 of a-z, 0-9, '.', '_', '-'"
            )
            _integer(self.version, what="version", low=1)
            _integer(self.expires, what="expires", low=0)
        if not isinstance(self.governance, GovernanceKeys):
            raise MalformedError("governance: expected a governance key set", code=MALFORMED)
        if not isinstance(self.members, tuple | list) or not all(isinstance(m, Member) for m in self.members):
            raise MalformedError("members: expected a list of members", code=MALFORMED)
        object.__setattr__(self, "members", tuple(self.members))
        _check_members(self.members)

    def member(self, node_id: str) -> Member | None:
        """The member with this node id, or None when the directory does not list it."""
        return next((m for m in self.members if m.node_id == node_id), None)

    def peers_of(self, node_id: str) -> tuple[Member, ...]:
        """Every member but ``node_id``.

        Raises InvalidRequestError (``directory_not_member``) when ``node_id`` is not a member.
        """
        if self.member(node_id) is None:
            raise InvalidRequestError(f"node '{node_id}' is not a member of this directory", code=NOT_MEMBER)
        return tuple(m for m in self.members if m.node_id != node_id)

    def is_expired(self, now: int) -> bool:
        """True from the second ``expires`` onwards (as TUF: ``now >= expires``)."""
        return now >= self.expires

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": DIRECTORY_TYPE,
            "spec_version": SPEC_VERSION,
            "federation": self.federation,
            "version": self.version,
            "expires": self.expires,
            "governance": self.governance.to_dict(),
            "members": [m.to_dict() for m in self.members],
        }

    def signing_bytes(self) -> bytes:
        """The exact bytes each governance key signs."""
        return SIGNING_CONTEXT + canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        """Lowercase hex SHA-256 of the canonical ``signed`` part: names this version's content."""
        return sha256_hex(canonical_json(self.to_dict()))

    @classmethod
    def from_dict(cls, obj: Any) -> Directory:
        """Parse the ``signed`` part; raises MalformedError (``directory_*`` codes)."""
        with _recoded():
            require_fields(obj, what="signed", required=_SIGNED_FIELDS)
            if expect_type(obj["_type"], str, what="signed._type") != DIRECTORY_TYPE:
                raise MalformedError(f"signed._type: expected '{DIRECTORY_TYPE}'", code=UNSUPPORTED)
            if expect_type(obj["spec_version"], int, what="signed.spec_version") != SPEC_VERSION:
                raise MalformedError(
                    f"signed.spec_version: expected {SPEC_VERSION}, got {obj['spec_version']}",
                    code=UNSUPPORTED,
                )
            members = expect_type(obj["members"], list, what="members")
        return cls(
            federation=obj["federation"],
            version=obj["version"],
            expires=obj["expires"],
            governance=GovernanceKeys.from_dict(obj["governance"]),
            members=tuple(Member.from_dict(m) for m in members),
        )


def _check_members(members: tuple[Member, ...]) -> None:
    if len(members) > MAX_MEMBERS:
        raise MalformedError(f"members: at most {MAX_MEMBERS}, got {len(members)}", code=MALFORMED)
    ids = [m.node_id for m in members]
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise MalformedError(
            f"members: node id listed more than once: {', '.join(repeated)}", code=DUPLICATE_MEMBER
        )
    if ids != sorted(ids):
        raise MalformedError("members: expected the list sorted by node_id", code=UNSORTED)
    keys = [key for m in members for key in m.keys]
    if len(set(keys)) != len(keys):
        raise MalformedError("members: the same public key appears more than once", code=DUPLICATE_KEY)


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


@dataclass(frozen=True)
class SignedDirectory:
    """A directory document as it travels: the ``signed`` content and its signatures (not yet verified)."""

    signed: Directory
    signatures: tuple[Signature, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.signed, Directory):
            raise MalformedError("signed: expected a directory", code=MALFORMED)
        if not isinstance(self.signatures, tuple | list) or not all(
            isinstance(s, Signature) for s in self.signatures
        ):
            raise MalformedError("signatures: expected a list of signatures", code=MALFORMED)
        if len(self.signatures) > MAX_SIGNATURES:
            raise MalformedError(
                f"signatures: at most {MAX_SIGNATURES}, got {len(self.signatures)}", code=MALFORMED
            )
        object.__setattr__(self, "signatures", tuple(self.signatures))

    def to_dict(self) -> dict[str, Any]:
        return {"signed": self.signed.to_dict(), "signatures": [s.to_dict() for s in self.signatures]}

    def to_bytes(self) -> bytes:
        """Canonical JSON of the whole document (any JSON layout of it parses the same)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Any) -> SignedDirectory:
        with _recoded():
            require_fields(obj, what="directory", required=_DOCUMENT_FIELDS)
            signatures = expect_type(obj["signatures"], list, what="signatures")
            if len(signatures) > MAX_SIGNATURES:
                raise MalformedError(
                    f"signatures: at most {MAX_SIGNATURES}, got {len(signatures)}", code=MALFORMED
                )
        return cls(
            signed=Directory.from_dict(obj["signed"]), signatures=tuple(map(Signature.from_dict, signatures))
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedDirectory:
        """Parse a directory document; raises MalformedError (``directory_*`` codes), never verifies."""
        if len(data) > MAX_DOCUMENT_BYTES:
            raise MalformedError(
                f"directory: at most {MAX_DOCUMENT_BYTES} bytes, got {len(data)}", code=TOO_LARGE
            )
        with _recoded():
            obj = parse_json(data, what="directory")
        return cls.from_dict(obj)


def sign_directory(document: SignedDirectory, key: nacl.signing.SigningKey) -> SignedDirectory:
    """Add ``key``'s signature, replacing any earlier one by the same key; signatures sorted by key id."""
    keyid = sha256_hex(bytes(key.verify_key))
    signature = Signature(keyid=keyid, sig=key.sign(document.signed.signing_bytes()).signature)
    kept = [s for s in document.signatures if s.keyid != keyid]
    return SignedDirectory(
        signed=document.signed, signatures=tuple(sorted([*kept, signature], key=lambda s: s.keyid))
    )


@dataclass(frozen=True)
class SignatureTally:
    """Signatures counted against one key set; each listed key id is in one of valid/invalid/missing."""

    threshold: int
    valid: tuple[str, ...]
    invalid: tuple[str, ...]
    missing: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def met(self) -> bool:
        return len(self.valid) >= self.threshold


def tally_signatures(document: SignedDirectory, keys: GovernanceKeys) -> SignatureTally:
    """Count distinct keys of ``keys`` with a good signature; ignore other keys; never raises."""
    message = document.signed.signing_bytes()
    valid: set[str] = set()
    invalid: set[str] = set()
    unknown: set[str] = set()
    for signature in document.signatures:
        key = keys.get(signature.keyid)
        if key is None:
            unknown.add(signature.keyid)
        elif signature.keyid not in valid:
            try:
                key.verify_key.verify(message, signature.sig)
                valid.add(signature.keyid)
            except nacl.exceptions.CryptoError:
                invalid.add(signature.keyid)
    invalid -= valid
    missing = set(keys.keyids) - valid - invalid
    return SignatureTally(keys.threshold, *(tuple(sorted(s)) for s in (valid, invalid, missing, unknown)))


@dataclass(frozen=True)
class Assessment:
    """Why a document would (not) be accepted. ``candidate`` is NOT verified: report it, never use it."""

    candidate: Directory
    new_keys: SignatureTally
    trusted_keys: SignatureTally | None
    error: ProtocolError | None

    @property
    def accepted(self) -> bool:
        return self.error is None


def _threshold_error(tally: SignatureTally, which: str) -> ProtocolError | None:
    if tally.met:
        return None
    return VerificationError(
        f"expected signatures by {tally.threshold} distinct {which}, got {len(tally.valid)} valid"
        f" (valid: {_short(tally.valid)}; bad: {_short(tally.invalid)})",
        code=THRESHOLD,
    )


def _expiry_error(directory: Directory, now: int) -> ProtocolError | None:
    if not directory.is_expired(now):
        return None
    return ExpiredError(
        f"directory version {directory.version} expired at {iso_time(directory.expires)}"
        f" (expected an expiry after {iso_time(now)})",
        code=EXPIRED,
    )


def check_not_expired(directory: Directory, *, now: int) -> Directory:
    """Return ``directory`` unless it expired; raises ExpiredError (``directory_expired``)."""
    error = _expiry_error(directory, now)
    if error is not None:
        raise error
    return directory


def _succession_error(trusted: Directory, new: Directory) -> ProtocolError | None:
    if new.federation != trusted.federation:
        return VerificationError(
            f"expected a directory of federation '{trusted.federation}', got '{new.federation}'",
            code=FEDERATION_MISMATCH,
        )
    if new.version == trusted.version:
        return RollbackError(
            f"directory version {new.version} is the trusted version (expected above {trusted.version})",
            code=NOT_NEWER,
        )
    if new.version < trusted.version:
        return RollbackError(
            f"directory version {new.version} is older than the trusted version {trusted.version}",
            code=ROLLBACK,
        )
    return None


def _first(*errors: ProtocolError | None) -> ProtocolError | None:
    return next((e for e in errors if e is not None), None)


def assess_initial(document: SignedDirectory, *, now: int) -> Assessment:
    """Check a first directory (trust on first use) against its own governance keys; never raises."""
    tally = tally_signatures(document, document.signed.governance)
    error = _first(
        _threshold_error(tally, "keys of its own governance set"), _expiry_error(document.signed, now)
    )
    return Assessment(candidate=document.signed, new_keys=tally, trusted_keys=None, error=error)


def assess_update(trusted: Directory, document: SignedDirectory, *, now: int) -> Assessment:
    """Check a successor of ``trusted`` (TUF root rotation); never raises.

    The trusted directory may itself have expired: a newer version is how a federation recovers.
    """
    new = document.signed
    new_tally = tally_signatures(document, new.governance)
    trusted_tally = tally_signatures(document, trusted.governance)
    error = _first(
        _succession_error(trusted, new),
        _threshold_error(trusted_tally, "keys of the trusted (installed) governance set"),
        _threshold_error(new_tally, "keys of the new governance set"),
        _expiry_error(new, now),
    )
    return Assessment(candidate=new, new_keys=new_tally, trusted_keys=trusted_tally, error=error)


def verify_initial(document: SignedDirectory, *, now: int) -> Directory:
    """Verify a first directory; return it, now trusted.

    Raises VerificationError (``directory_threshold``) when fewer than its threshold of its own
    keys signed it, ExpiredError (``directory_expired``) when ``now >= expires``.
    """
    assessment = assess_initial(document, now=now)
    if assessment.error is not None:
        raise assessment.error
    return document.signed


def verify_update(trusted: Directory, new: SignedDirectory, *, now: int) -> Directory:
    """Verify ``new`` as the successor of ``trusted``; return it, now trusted.

    Raises VerificationError (``directory_federation_mismatch``; ``directory_threshold`` unless a
    threshold of the trusted keys AND a threshold of the new keys signed), RollbackError
    (``directory_not_newer`` for the same version, ``directory_rollback`` for a lower one),
    ExpiredError (``directory_expired``).
    """
    assessment = assess_update(trusted, new, now=now)
    if assessment.error is not None:
        raise assessment.error
    return new.signed
