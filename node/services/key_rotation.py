"""Rotating the node's identity keys: staged by the operator, switched on by the directory.

A member's keys reach its peers only through the governance-signed directory, so a rotation has
two halves. ``palermo keys rotate`` (:func:`stage`) writes a new signing key and a new encryption
key to ``HOME/keys/next/`` and the member descriptor that governance puts in the next directory
version. The node keeps using its current keys until a directory that lists the staged ones is
in force; then :func:`activate` moves each staged key into place, keeping the old one under
``HOME/keys/retired/<unix time>/``. Every process of the node checks this whenever it reads a
newer directory (node.services.directory.installed_directory), so a running server switches
within a second of the install, without a restart.

The log key does not rotate: it names the log (its checkpoints from the first entry on verify
with it, and witnesses follow the log by it), as a transparency log's key does. A node that must
replace its log key starts a new log under a new node id.

Crash safety: each key moves by one rename, after its old file was copied and fsynced to the
retired folder, and :func:`activate` checks each key on its own against the directory. A crash
between the two renames leaves one key moved; the next check moves the other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing

from node.context import NodeContext
from node.errors import OperatorError
from node.keys import keys_are_protected, load_keys, open_key, seal_key, write_private_file
from node.services import exchange_log
from protocol.canonical import sha256_hex
from protocol.directory import Member

log = logging.getLogger("palermo.keys")

ROTATING = ("signing", "encryption")
NEXT = "next"
RETIRED = "retired"


class KeyRotationError(OperatorError):
    """A rotation the operator asked for cannot be done (code says why)."""

    code = "key_rotation"


def next_dir(node: NodeContext) -> Path:
    return node.settings.keys_dir / NEXT


def _public(purpose: str, raw: bytes) -> bytes:
    if purpose == "signing":
        return bytes(nacl.signing.SigningKey(raw).verify_key)
    return bytes(nacl.public.PrivateKey(raw).public_key)


def staged_public(keys_dir: Path, passphrase: str | None) -> dict[str, bytes]:
    """Purpose -> public key of each staged key still waiting in ``keys/next`` (empty if none)."""
    found = {}
    for purpose in ROTATING:
        path = keys_dir / NEXT / f"{purpose}.key"
        if path.exists():
            doc = json.loads(path.read_text(encoding="utf-8"))
            found[purpose] = _public(purpose, open_key(doc, purpose=purpose, passphrase=passphrase))
    return found


def stage(node: NodeContext, *, passphrase: str | None) -> dict[str, Any]:
    """Write a new signing and encryption key to ``keys/next`` and log that they were staged.

    The keys get the same protection as the current ones (``passphrase`` must open those). Raises
    KeyRotationError ``key_rotation_pending`` while a staged pair waits for its directory.
    Returns the new public keys as a member descriptor lists them, with their key ids.
    """
    folder = next_dir(node)
    if folder.exists() and any(folder.iterdir()):
        raise KeyRotationError(
            f"new keys are already staged in {folder}, waiting for a directory that lists them; "
            "run 'palermo keys rotate --discard' first to stage others",
            code="key_rotation_pending",
        )
    protected = keys_are_protected(node.settings.keys_dir)
    if protected and not passphrase:
        raise KeyRotationError(
            "the node's keys are passphrase-protected: set PALERMO_PASSPHRASE", code="passphrase_required"
        )
    load_keys(node.settings.keys_dir, passphrase=passphrase)  # the passphrase opens the current keys
    raws = {
        "signing": bytes(nacl.signing.SigningKey.generate()),
        "encryption": bytes(nacl.public.PrivateKey.generate()),
    }
    folder.mkdir(mode=0o700, exist_ok=True)
    for purpose, raw in raws.items():
        doc = seal_key(raw, purpose=purpose, passphrase=passphrase if protected else None)
        write_private_file(folder / f"{purpose}.key", json.dumps(doc, indent=2).encode())
    public = {purpose: _public(purpose, raw) for purpose, raw in raws.items()}
    with node.db.transaction() as session:
        exchange_log.append(
            session,
            time=node.clock(),
            kind="key_rotation",
            peer=node.node_id,
            outcome="staged",
            detail={f"{p}_key_new": sha256_hex(k) for p, k in public.items()},
        )
    return public


def discard(node: NodeContext) -> bool:
    """Remove the staged keys; True if there were any.

    Raises KeyRotationError ``key_rotation_in_progress`` when the directory in force already lists
    one of them: the node is switching to it and removing it would lose a key its peers use.
    """
    from node.services.directory import installed_directory

    directory = installed_directory(node)  # first: reading it may finish a switch under way
    folder = next_dir(node)
    if not folder.exists():
        return False
    own = directory.member(node.node_id) if directory else None
    listed = {own.signing_key, own.encryption_key} if own else set()
    if listed & set(staged_public(node.settings.keys_dir, node.passphrase).values()):
        raise KeyRotationError(
            "the directory in force lists these staged keys: the node is switching to them, not discarding",
            code="key_rotation_in_progress",
        )
    shutil.rmtree(folder)
    with node.db.transaction() as session:
        exchange_log.append(
            session, time=node.clock(), kind="key_rotation", peer=node.node_id, outcome="discarded"
        )
    return True


def activate(node: NodeContext, listed: Member, *, passphrase: str | None) -> bool:
    """Move into place each staged key ``listed`` (this node's directory entry) names; reload the keys.

    Also reloads when another process already moved them. Returns True when ``node.keys`` changed.
    A directory that lists keys this node has neither in use nor staged changes nothing here; it
    is logged as a warning (exchange fails until governance lists the right keys).
    """
    wanted = listed_keys(listed)
    current = node.keys.identity()
    if wanted == current:
        return False
    try:
        staged = staged_public(node.settings.keys_dir, passphrase)
    except (OSError, ValueError) as e:
        log.warning("staged keys unreadable", extra={"error": type(e).__name__})
        staged = {}
    retired = node.settings.keys_dir / RETIRED / str(node.clock())
    for purpose, public in staged.items():
        if public == wanted[purpose]:
            _move_into_place(node.settings.keys_dir, purpose, retired)
    folder = next_dir(node)
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
    keys = load_keys(node.settings.keys_dir, passphrase=passphrase)
    node.keys = keys
    now = keys.identity()
    if now != wanted:
        log.warning("the directory lists other keys for this node than it holds or has staged")
    return now != current


def listed_keys(member: Member) -> dict[str, bytes]:
    """The rotating keys a directory entry lists, shaped as NodeKeys.identity()."""
    return {"signing": member.signing_key, "encryption": member.encryption_key}


def _move_into_place(keys_dir: Path, purpose: str, retired: Path) -> None:
    """Copy the key in use to ``retired`` (fsynced), then rename the staged one over it."""
    retired.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = keys_dir / f"{purpose}.key"
    kept = retired / f"{purpose}.key"
    if not kept.exists():
        write_private_file(kept, old.read_bytes())
    os.replace(keys_dir / NEXT / f"{purpose}.key", old)
    _fsync_dir(keys_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
