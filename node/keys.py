"""The node's private keys: files in ``HOME/keys`` (0600), optionally sealed with a passphrase.

Three keys, each with one purpose: ``signing`` (Ed25519, the node's identity: signs envelopes),
``encryption`` (X25519: envelopes are encrypted to it) and ``log`` (Ed25519: signs exchange-log
checkpoints only, so that a log key can be handed to a witness process without the identity).

A protected key file holds the key encrypted with SecretBox under a key derived from the
passphrase by Argon2id (libsodium ``crypto_pwhash``, parameters stored beside the salt).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from node.errors import ConfigurationError
from protocol.canonical import b64decode, b64encode

KEY_FILES = {"signing": "ed25519", "encryption": "x25519", "log": "ed25519"}
FORMAT = "palermo-key-v1"


@dataclass(frozen=True)
class NodeKeys:
    signing: nacl.signing.SigningKey
    encryption: nacl.public.PrivateKey
    log: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> NodeKeys:
        return cls(
            signing=nacl.signing.SigningKey.generate(),
            encryption=nacl.public.PrivateKey.generate(),
            log=nacl.signing.SigningKey.generate(),
        )

    def identity(self) -> dict[str, bytes]:
        """The raw public keys that rotate (``signing``, ``encryption``), to compare with a directory entry."""
        return {"signing": bytes(self.signing.verify_key), "encryption": bytes(self.encryption.public_key)}

    def public(self) -> dict[str, str]:
        """Base64 public keys, as a directory member descriptor lists them."""
        return {
            "signing_key": b64encode(bytes(self.signing.verify_key)),
            "encryption_key": b64encode(bytes(self.encryption.public_key)),
            "log_key": b64encode(bytes(self.log.verify_key)),
        }


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def seal_key(raw: bytes, *, purpose: str, passphrase: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "purpose": purpose,
        "algorithm": KEY_FILES.get(purpose, "ed25519"),
    }
    if not passphrase:
        return {**doc, "protection": "none", "key": b64encode(raw)}
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    ops, mem = nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=ops, memlimit=mem
    )
    sealed = nacl.secret.SecretBox(box_key).encrypt(raw)
    return {
        **doc,
        "protection": "argon2id-secretbox",
        "salt": b64encode(salt),
        "opslimit": ops,
        "memlimit": mem,
        "box": b64encode(bytes(sealed)),
    }


def open_key(doc: Any, *, purpose: str, passphrase: str | None) -> bytes:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("purpose") != purpose:
        raise ConfigurationError(f"key file for '{purpose}' is not a Palermo key file")
    if doc.get("protection") == "none":
        return b64decode(doc.get("key"), what=f"{purpose} key", length=32)
    if doc.get("protection") != "argon2id-secretbox":
        raise ConfigurationError(f"key file for '{purpose}' uses an unknown protection")
    if not passphrase:
        raise ConfigurationError(
            "the node's keys are passphrase-protected: set PALERMO_PASSPHRASE or enter it"
        )
    salt = b64decode(doc.get("salt"), what="salt", length=nacl.pwhash.argon2id.SALTBYTES)
    box_key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode(),
        salt,
        opslimit=int(doc["opslimit"]),
        memlimit=int(doc["memlimit"]),
    )
    try:
        return nacl.secret.SecretBox(box_key).decrypt(b64decode(doc.get("box"), what="sealed key"))
    except nacl.exceptions.CryptoError as e:
        raise ConfigurationError("wrong passphrase for the node's keys") from e


def save_keys(keys: NodeKeys, directory: Path, *, passphrase: str | None) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    raws = {"signing": bytes(keys.signing), "encryption": bytes(keys.encryption), "log": bytes(keys.log)}
    for purpose, raw in raws.items():
        doc = seal_key(raw, purpose=purpose, passphrase=passphrase)
        write_private_file(directory / f"{purpose}.key", json.dumps(doc, indent=2).encode())


def load_keys(directory: Path, *, passphrase: str | None) -> NodeKeys:
    raws: dict[str, bytes] = {}
    for purpose in KEY_FILES:
        path = directory / f"{purpose}.key"
        try:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigurationError(f"{path} is readable by others (mode {mode:o}); run chmod 600 on it")
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigurationError(f"missing key file {path}") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"key file {path} is not valid JSON") from e
        raws[purpose] = open_key(doc, purpose=purpose, passphrase=passphrase)
    return NodeKeys(
        signing=nacl.signing.SigningKey(raws["signing"]),
        encryption=nacl.public.PrivateKey(raws["encryption"]),
        log=nacl.signing.SigningKey(raws["log"]),
    )


def keys_are_protected(directory: Path) -> bool:
    try:
        doc = json.loads((directory / "signing.key").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("protection") != "none"
