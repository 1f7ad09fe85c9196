"""The federation directory: members, their keys, endpoints and roles, signed by governance keys.

Modelled on the root role of The Update Framework (TUF specification, "root.json" and the
client workflow step 5.3 "Update the root role"): a threshold of governance keys signs each
version; a new version must be signed by a threshold of the keys of the version it replaces
and by a threshold of its own keys; versions only go up; an expired directory is refused.
See protocol/SPEC.md, "Federation directory", for the wire format.

Parsing builds frozen dataclasses that validate when built, so an instance is always
well-formed. Only :func:`verify_initial` and :func:`verify_update` hand out a *trusted*
:class:`Directory`; :func:`assess_initial` / :func:`assess_update` explain a verdict for reports.

This module holds the document (:class:`Directory`, :class:`SignedDirectory`) and its parsing.
What it lists, the error codes and the field checks are in protocol/directory_entries.py;
signature counting and verification in protocol/directory_trust.py. Every public name of both
is re-exported here, so ``from protocol.directory import ...`` is the one import to use.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from protocol.canonical import canonical_json, expect_type, parse_json, require_fields, sha256_hex
from protocol.directory_entries import (
    BAD_QUORUM,
    BAD_THRESHOLD,
    COUNTRY_RE,
    DUPLICATE_KEY,
    DUPLICATE_MEMBER,
    EXPIRED,
    FEDERATION_MISMATCH,
    KEY_SIZE,
    KEYID_MISMATCH,
    KEYID_RE,
    MALFORMED,
    MAX_INT,
    MAX_KEYS,
    MAX_URL_LENGTH,
    NO_KEYS,
    NOT_MEMBER,
    NOT_NEWER,
    ROLES,
    ROLLBACK,
    SCHEME,
    SIGNATURE_SIZE,
    THRESHOLD,
    TOO_LARGE,
    UNSORTED,
    UNSUPPORTED,
    GovernanceKey,
    GovernanceKeys,
    Member,
    Signature,
    WitnessPolicy,
    _integer,
    _pattern,
    _recoded,
    iso_time,
)
from protocol.directory_trust import (
    Assessment,
    SignatureTally,
    assess_initial,
    assess_update,
    check_not_expired,
    sign_directory,
    tally_signatures,
    verify_initial,
    verify_update,
)
from protocol.errors import InvalidRequestError, MalformedError

__all__ = [
    "BAD_QUORUM",
    "BAD_THRESHOLD",
    "COUNTRY_RE",
    "DIRECTORY_TYPE",
    "DUPLICATE_KEY",
    "DUPLICATE_MEMBER",
    "EXPIRED",
    "FEDERATION_MISMATCH",
    "FEDERATION_RE",
    "KEYID_MISMATCH",
    "KEYID_RE",
    "KEY_SIZE",
    "MALFORMED",
    "MAX_DOCUMENT_BYTES",
    "MAX_INT",
    "MAX_KEYS",
    "MAX_MEMBERS",
    "MAX_SIGNATURES",
    "MAX_URL_LENGTH",
    "NOT_MEMBER",
    "NOT_NEWER",
    "NO_KEYS",
    "ROLES",
    "ROLLBACK",
    "SCHEME",
    "SIGNATURE_SIZE",
    "SIGNING_CONTEXT",
    "SPEC_VERSION",
    "THRESHOLD",
    "TOO_LARGE",
    "UNSORTED",
    "UNSUPPORTED",
    "Assessment",
    "Directory",
    "GovernanceKey",
    "GovernanceKeys",
    "Member",
    "Signature",
    "SignatureTally",
    "SignedDirectory",
    "WitnessPolicy",
    "assess_initial",
    "assess_update",
    "check_not_expired",
    "iso_time",
    "sign_directory",
    "tally_signatures",
    "verify_initial",
    "verify_update",
]

DIRECTORY_TYPE = "palermo-directory"
SPEC_VERSION = 1
SIGNING_CONTEXT = b"palermo/directory/v1\n"
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_MEMBERS = 1000
MAX_SIGNATURES = 256
FEDERATION_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")

_DOCUMENT_FIELDS = {"signed", "signatures"}
_SIGNED_FIELDS = {"_type", "spec_version", "federation", "version", "expires", "governance", "members"}
_SIGNED_OPTIONAL = frozenset({"witness_policy"})


@dataclass(frozen=True)
class Directory:
    """The content of one directory version. Only verify_* return an instance you may trust."""

    federation: str
    version: int
    expires: int
    governance: GovernanceKeys
    members: tuple[Member, ...]
    witness_policy: WitnessPolicy | None = None

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
        _check_policy(self.witness_policy, self.members)

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

    def witnesses_of(self, node_id: str) -> tuple[Member, ...]:
        """The members that may witness ``node_id``'s log: every member with the witness role but it."""
        return tuple(m for m in self.members if "witness" in m.roles and m.node_id != node_id)

    def key_changes(self, previous: Directory) -> dict[str, dict[str, tuple[str, str]]]:
        """Node id -> key name -> (old, new) key id, for each member of both versions whose keys changed.

        A key id here is the lowercase hex SHA-256 of the raw public key (as for governance keys).
        Members added or removed are not key changes.
        """
        changes: dict[str, dict[str, tuple[str, str]]] = {}
        for member in self.members:
            old = previous.member(member.node_id)
            if old is None:
                continue
            changed = {
                name: (sha256_hex(before), sha256_hex(after))
                for name, before, after in (
                    ("signing_key", old.signing_key, member.signing_key),
                    ("encryption_key", old.encryption_key, member.encryption_key),
                    ("log_key", old.log_key, member.log_key),
                )
                if before != after
            }
            if changed:
                changes[member.node_id] = changed
        return changes

    def is_expired(self, now: int) -> bool:
        """True from the second ``expires`` onwards (as TUF: ``now >= expires``)."""
        return now >= self.expires

    def to_dict(self) -> dict[str, Any]:
        signed = {
            "_type": DIRECTORY_TYPE,
            "spec_version": SPEC_VERSION,
            "federation": self.federation,
            "version": self.version,
            "expires": self.expires,
            "governance": self.governance.to_dict(),
            "members": [m.to_dict() for m in self.members],
        }
        if self.witness_policy is not None:  # absent, not null: one encoding per meaning
            signed["witness_policy"] = self.witness_policy.to_dict()
        return signed

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
            require_fields(obj, what="signed", required=_SIGNED_FIELDS, optional=_SIGNED_OPTIONAL)
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
            witness_policy=WitnessPolicy.from_dict(obj["witness_policy"])
            if "witness_policy" in obj
            else None,
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


def _check_policy(policy: WitnessPolicy | None, members: tuple[Member, ...]) -> None:
    """A quorum every member's log can meet: at most the witnesses other than a witness itself."""
    if policy is None:
        return
    if not isinstance(policy, WitnessPolicy):
        raise MalformedError("witness_policy: expected a witness policy", code=MALFORMED)
    witnesses = sum("witness" in m.roles for m in members)
    reachable = witnesses - 1 if witnesses else 0
    if policy.quorum > reachable:
        raise MalformedError(
            f"witness_policy.quorum: {policy.quorum}, but a witness's log can be cosigned by at most "
            f"{reachable} other witness(es) ({witnesses} member(s) have the witness role)",
            code=BAD_QUORUM,
        )


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
