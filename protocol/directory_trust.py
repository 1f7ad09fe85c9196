"""Trust in a directory: governance signatures counted, successions assessed, verified versions.

The verification half of the federation directory (TUF specification, client workflow step 5.3
"Update the root role"): a first version must carry a threshold of signatures by its own
governance keys; a successor a threshold by the trusted version's keys AND by its own, a higher
version number and the same federation; an expired version is refused. The document model and
parsing live in :mod:`protocol.directory`, which re-exports every public name defined here:
import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.signing

from protocol.canonical import sha256_hex
from protocol.directory_entries import (
    EXPIRED,
    FEDERATION_MISMATCH,
    NOT_NEWER,
    ROLLBACK,
    THRESHOLD,
    GovernanceKeys,
    Signature,
    iso_time,
)
from protocol.errors import ExpiredError, ProtocolError, RollbackError, VerificationError

if TYPE_CHECKING:
    # Types only: protocol.directory imports this module to re-export it, so a run-time import
    # back would be a cycle. Nothing here builds a Directory or a SignedDirectory by name.
    from protocol.directory import Directory, SignedDirectory


def _short(keyids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(k[:16] for k in keyids) or "none"


def sign_directory(document: SignedDirectory, key: nacl.signing.SigningKey) -> SignedDirectory:
    """Add ``key``'s signature, replacing any earlier one by the same key; signatures sorted by key id."""
    keyid = sha256_hex(bytes(key.verify_key))
    signature = Signature(keyid=keyid, sig=key.sign(document.signed.signing_bytes()).signature)
    kept = [s for s in document.signatures if s.keyid != keyid]
    return replace(document, signatures=tuple(sorted([*kept, signature], key=lambda s: s.keyid)))


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
