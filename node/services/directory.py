"""The federation directory in force at this node: install (trust on first use, then verified
updates only), read, and the offline steps of governance (drafting, governance key files).

The database is authoritative (table ``directory_versions``, history kept); ``HOME/directory.json``
is a copy for operators and tools, replaced only after the database committed.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from node.context import NodeContext
from node.errors import ConfigurationError, OperatorError
from node.keys import NodeKeys, open_key, seal_key, write_private_file
from node.services import exchange_log
from node.settings import Settings
from node.storage.models.directory import DirectoryVersion
from protocol.canonical import b64decode, b64encode, parse_json
from protocol.directory import (
    Assessment,
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    SignedDirectory,
    WitnessPolicy,
    assess_initial,
    assess_update,
    check_not_expired,
    verify_initial,
    verify_update,
)
from protocol.errors import ProtocolError

GOVERNANCE_PURPOSE = "governance"
log = logging.getLogger("palermo.directory")


class DirectoryError(OperatorError):
    """A directory, a draft or a governance key the operator gave is refused (code says why)."""

    code = "directory_invalid"
    http_status = 422


class DirectoryUnavailableError(DirectoryError):
    """No directory is in force (none installed, or it expired): all exchange stops."""

    code = "no_directory"
    http_status = 503


@dataclass(frozen=True)
class InstalledDirectory:
    """The directory in force and how it got there."""

    directory: Directory
    sha256: str
    installed_at: int
    initial: bool
    history: int


def _protocol(e: ProtocolError) -> DirectoryError:
    return DirectoryError(e.message, code=e.code)


def parse_document(data: bytes) -> SignedDirectory:
    """Parse a directory document; raises DirectoryError with the protocol's ``directory_*`` code."""
    try:
        return SignedDirectory.from_bytes(data)
    except ProtocolError as e:
        raise _protocol(e) from e


def document_text(document: SignedDirectory) -> str:
    """The document as indented JSON for files people review (it parses to the same document)."""
    return json.dumps(document.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=8)
def _stored(document: str, sha256: str) -> Directory:
    # Parsing is cached: every envelope asks for the directory in force.
    try:
        directory = SignedDirectory.from_bytes(document.encode("utf-8")).signed
    except ProtocolError as e:
        raise ConfigurationError("the installed directory no longer parses", code="directory_corrupt") from e
    if not hmac.compare_digest(directory.digest, sha256):
        raise ConfigurationError(
            "the installed directory does not match its digest", code="directory_corrupt"
        )
    return directory


def _latest(session: Session, *, lock: bool = False) -> DirectoryVersion | None:
    query = (
        select(DirectoryVersion)
        .order_by(DirectoryVersion.version.desc(), DirectoryVersion.id.desc())
        .limit(1)
    )
    return session.scalars(query.with_for_update() if lock else query).first()


def installed_record(node: NodeContext) -> InstalledDirectory | None:
    """The directory in force with its digest and install time, or None; no expiry check."""
    with node.db.transaction() as session:
        row = _latest(session)
        if row is None:
            return None
        count = session.scalar(select(func.count(DirectoryVersion.id))) or 0
    return InstalledDirectory(
        _stored(row.document, row.sha256), row.sha256, row.installed_at, row.initial, count
    )


CACHE_SECONDS = 1.0  # how long a process may keep using the directory it read last


def installed_directory(node: NodeContext) -> Directory | None:
    """The installed directory, expired or not, or None (for ``show``; exchange uses current_directory).

    Every envelope asks for it, so each process keeps what it read for CACHE_SECONDS: a directory
    installed by another process is in force everywhere within that time.
    """
    cached = node.cache.get("directory")
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]  # type: ignore[no-any-return]
    with node.db.read() as session:
        row = _latest(session)
        directory = None if row is None else _stored(row.document, row.sha256)
    node.cache["directory"] = (time.monotonic(), directory)
    if directory is not None:
        follow_own_keys(node, directory)
    return directory


def follow_own_keys(node: NodeContext, directory: Directory) -> None:
    """Use the keys ``directory`` lists for this node: a rotation's staged keys once it lists them.

    Cheap when nothing changed (two byte comparisons). A directory that lists keys this node
    cannot reach is tried once per version, not on every read.
    """
    from node.services import key_rotation

    own = directory.member(node.node_id)
    if own is None or node.cache.get("keys_unreachable") == directory.digest:
        return
    wanted = key_rotation.listed_keys(own)
    if node.keys.identity() == wanted:
        return
    try:
        key_rotation.activate(node, own, passphrase=node.passphrase)
    except (OSError, ValueError, ConfigurationError) as e:
        log.warning("cannot switch to the keys the directory lists", extra={"error": type(e).__name__})
    if node.keys.identity() != wanted:
        node.cache["keys_unreachable"] = directory.digest


def current_directory(node: NodeContext, *, now: int | None = None) -> Directory:
    """The directory in force, for every exchange with peers.

    Raises DirectoryUnavailableError: ``no_directory`` when none is installed, ``directory_expired``
    when it expired (an expired directory stops all exchange until a newer one is installed).
    """
    directory = installed_directory(node)
    if directory is None:
        raise DirectoryUnavailableError(
            "no federation directory is installed; get one from your federation's governance and run"
            " 'palermo directory install --initial FILE'",
            code="no_directory",
        )
    try:
        return check_not_expired(directory, now=node.clock() if now is None else now)
    except ProtocolError as e:
        raise DirectoryUnavailableError(f"{e.message}; install a newer directory", code=e.code) from e


def _verify(
    document: SignedDirectory, trusted: DirectoryVersion | None, *, initial: bool, now: int
) -> Directory:
    if trusted is None and not initial:
        raise DirectoryError(
            "no directory is installed yet: installing the first one trusts its governance keys; compare"
            " their key ids with your federation out of band, then install with --initial",
            code="directory_initial_required",
        )
    if trusted is not None and initial:
        raise DirectoryError(
            f"a directory is already installed (version {trusted.version}); expected an update, installed"
            " without --initial, signed by the installed governance keys",
            code="directory_already_installed",
        )
    try:
        if trusted is None:
            return verify_initial(document, now=now)
        return verify_update(_stored(trusted.document, trusted.sha256), document, now=now)
    except ProtocolError as e:
        raise _protocol(e) from e


def install_directory(node: NodeContext, data: bytes, *, initial: bool) -> Directory:
    """Verify ``data`` and make it the directory in force; return the verified directory.

    ``initial`` must be given when (and only when) no directory is installed: trust on first use.
    Otherwise the document must pass ``verify_update`` against the installed one. Raises
    DirectoryError (``directory_*`` codes from protocol.directory, ``directory_initial_required``,
    ``directory_already_installed``) and then changes nothing.
    """
    document = parse_document(data)
    now = node.clock()
    target = node.settings.directory_file
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with node.db.transaction() as session:
            trusted = _latest(session, lock=True)
            directory = _verify(document, trusted, initial=initial, now=now)
            session.add(
                DirectoryVersion(
                    federation=directory.federation,
                    version=directory.version,
                    expires=directory.expires,
                    sha256=directory.digest,
                    document=document.to_bytes().decode("utf-8"),
                    installed_at=now,
                    initial=initial,
                )
            )
            _flush(session, directory)
            exchange_log.append(  # the directory in force decides whom this node trusts: auditors see each change
                session,
                time=now,
                kind="directory",
                outcome="installed",
                envelope_hash=directory.digest,
                detail={"federation": directory.federation[:64], "version": directory.version,
                        "expires": directory.expires, "initial": initial},
            )  # fmt: skip
            if trusted is not None:
                _log_key_rotations(session, _stored(trusted.document, trusted.sha256), directory, now)
            _stage(staged, document_text(document))
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
        node.cache.pop("directory", None)
    follow_own_keys(node, directory)
    return directory


def _log_key_rotations(session: Session, previous: Directory, directory: Directory, now: int) -> None:
    """One log entry per member whose keys the new version changes: a key rotation, as peers see it."""
    for node_id, keys in directory.key_changes(previous).items():
        detail: dict[str, Any] = {"version": directory.version}
        for name, (old, new) in keys.items():
            detail[f"{name}_old"], detail[f"{name}_new"] = old, new
        exchange_log.append(
            session, time=now, kind="key_rotation", peer=node_id, outcome="rotated", detail=detail
        )


def _stage(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:  # raised inside the transaction, so nothing is installed
        raise DirectoryError(f"cannot write {path.parent}: {e.strerror}", code="file_unwritable") from e


def _flush(session: Session, directory: Directory) -> None:
    try:
        session.flush()
    except IntegrityError as e:  # another process installed this version meanwhile
        raise DirectoryError(
            f"directory version {directory.version} is already installed", code="directory_not_newer"
        ) from e


def assess_document(data: bytes, *, trusted: bytes | None, now: int) -> Assessment:
    """Say whether ``data`` would be accepted, as an initial directory or after ``trusted`` (taken as is).

    Raises DirectoryError only when a document does not parse.
    """
    document = parse_document(data)
    if trusted is None:
        return assess_initial(document, now=now)
    return assess_update(parse_document(trusted).signed, document, now=now)


def read_member_descriptor(path: Path) -> Member:
    """A member descriptor file (written by ``palermo keys export``); raises DirectoryError."""
    try:
        return Member.from_dict(_read_json(path, what="member descriptor"))
    except ProtocolError as e:
        raise DirectoryError(f"{path}: {e.message}", code=e.code) from e


def member_keys(member: Member) -> tuple[nacl.signing.VerifyKey, nacl.public.PublicKey]:
    """A member's identity (Ed25519) verify key and its X25519 encryption key."""
    return member.verify_key, member.public_key


def member_descriptor(settings: Settings, keys: NodeKeys, roles: Iterable[str]) -> Member:
    """This node's entry for a directory; raises DirectoryError for unknown roles."""
    public = {name: b64decode(value, what=name, length=32) for name, value in keys.public().items()}
    try:
        return Member(
            node_id=settings.node_id,
            country=settings.country,
            url=settings.url,
            signing_key=public["signing_key"],
            encryption_key=public["encryption_key"],
            log_key=public["log_key"],
            roles=tuple(sorted(set(roles))),
        )
    except ProtocolError as e:
        raise _protocol(e) from e


@dataclass(frozen=True)
class DraftChanges:
    """What ``palermo directory create`` puts into a new (unsigned) version."""

    expires: int
    federation: str | None = None
    version: int | None = None
    threshold: int | None = None
    add_keys: Sequence[GovernanceKey] = ()
    remove_keys: Sequence[str] = ()
    add_members: Sequence[Member] = ()
    remove_members: Sequence[str] = ()
    witness_policy: WitnessPolicy | None = None
    drop_witness_policy: bool = False


def draft_directory(base: Directory | None, changes: DraftChanges) -> SignedDirectory:
    """A new unsigned version: ``base`` (when given) with ``changes`` applied.

    Without a base, federation, version and threshold are required. Members given replace those
    with the same node id. Raises DirectoryError (``directory_draft`` or a ``directory_*`` code).
    """
    federation = changes.federation or (base.federation if base else None)
    version = changes.version or (base.version + 1 if base else None)
    threshold = changes.threshold or (base.governance.threshold if base else None)
    if federation is None or version is None or threshold is None:
        raise DirectoryError(
            "a new directory needs --federation, --version and --threshold", code="directory_draft"
        )
    policy = changes.witness_policy or (base.witness_policy if base else None)
    keys = {k.keyid: k for k in (base.governance.keys if base else ())}
    for prefix in changes.remove_keys:
        del keys[_resolve(prefix, keys, what="governance key id")]
    keys.update((k.keyid, k) for k in changes.add_keys)
    members = {m.node_id: m for m in (base.members if base else ())}
    for node_id in changes.remove_members:
        del members[_resolve(node_id, members, what="member", exact=True)]
    members.update((m.node_id, m) for m in changes.add_members)
    try:
        directory = Directory(
            federation=federation,
            version=version,
            expires=changes.expires,
            governance=GovernanceKeys(keys=tuple(keys.values()), threshold=threshold),
            members=tuple(members[i] for i in sorted(members)),
            witness_policy=None if changes.drop_witness_policy else policy,
        )
    except ProtocolError as e:
        raise _protocol(e) from e
    return SignedDirectory(signed=directory)


def _resolve(name: str, names: Iterable[str], *, what: str, exact: bool = False) -> str:
    found = [n for n in names if n == name or (not exact and len(name) >= 8 and n.startswith(name))]
    if len(found) != 1:
        problem = "matches several" if found else "is not in the directory"
        raise DirectoryError(f"{what} '{name}' {problem}", code="directory_draft")
    return found[0]


# Governance key files: palermo-key-v1 documents with purpose "governance" (see node.keys),
# plus the public key and key id in clear so drafting needs no passphrase.


def create_governance_key(path: Path, *, passphrase: str | None) -> GovernanceKey:
    """Write a new governance signing key to ``path`` (0600); raises DirectoryError if it exists."""
    key = nacl.signing.SigningKey.generate()
    public = GovernanceKey(public=bytes(key.verify_key))
    doc = seal_key(bytes(key), purpose=GOVERNANCE_PURPOSE, passphrase=passphrase)
    doc.update(public=b64encode(public.public), keyid=public.keyid)
    try:
        write_private_file(path, json.dumps(doc, indent=2).encode("utf-8") + b"\n")
    except FileExistsError as e:
        raise DirectoryError(f"{path} exists; refusing to overwrite a key file", code="file_exists") from e
    return public


def _read_json(path: Path, *, what: str) -> Any:
    try:
        return parse_json(path.read_bytes(), what=what)
    except OSError as e:
        raise DirectoryError(f"cannot read {what} {path}: {e.strerror}", code="file_unreadable") from e
    except ProtocolError as e:
        raise DirectoryError(f"{path}: {e.message}", code="directory_malformed") from e


def read_governance_public(path: Path) -> GovernanceKey:
    """The public governance key in a governance key file or a public key file ``{"scheme", "public"}``.

    Raises DirectoryError when the file is unreadable or not a governance key.
    """
    return _public_of(_read_json(path, what="governance key file"), path)


def _public_of(doc: Any, path: Path) -> GovernanceKey:
    if not isinstance(doc, dict) or doc.get("purpose", GOVERNANCE_PURPOSE) != GOVERNANCE_PURPOSE:
        raise DirectoryError(f"{path} is not a governance key file", code="directory_malformed")
    if doc.get("scheme", "ed25519") != "ed25519":
        raise DirectoryError(f"{path}: expected an ed25519 key", code="directory_unsupported")
    try:
        key = GovernanceKey(public=b64decode(doc.get("public"), what=f"{path.name}: public", length=32))
    except ProtocolError as e:
        raise DirectoryError(f"{path}: {e.message}", code="directory_malformed") from e
    if doc.get("keyid", key.keyid) != key.keyid:
        raise DirectoryError(
            f"{path}: key id is not the SHA-256 of the public key", code="directory_keyid_mismatch"
        )
    return key


def governance_key_is_protected(path: Path) -> bool:
    """True when the governance key file at ``path`` needs a passphrase."""
    doc = _read_json(path, what="governance key file")
    return isinstance(doc, dict) and doc.get("protection") != "none"


def load_governance_key(path: Path, *, passphrase: str | None) -> nacl.signing.SigningKey:
    """The signing key in a governance key file; raises DirectoryError (wrong file, passphrase, mode)."""
    doc = _read_json(path, what="governance key file")
    if path.stat().st_mode & 0o077:
        raise DirectoryError(f"{path} is readable by others; run chmod 600 on it", code="key_file_mode")
    public = _public_of(doc, path)
    if doc.get("protection") != "none" and not passphrase:
        raise DirectoryError(
            f"{path} is passphrase-protected: give --passphrase-env", code="passphrase_required"
        )
    try:
        key = nacl.signing.SigningKey(open_key(doc, purpose=GOVERNANCE_PURPOSE, passphrase=passphrase))
    except (ConfigurationError, ProtocolError) as e:
        raise DirectoryError(f"{path}: {e.message}", code="governance_key_unusable") from e
    if public.public != bytes(key.verify_key):
        raise DirectoryError(
            f"{path}: the private key does not match its public key", code="governance_key_unusable"
        )
    return key
