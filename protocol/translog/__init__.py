"""The exchange log: entries, RFC 6962 Merkle hashing, chain checks and C2SP checkpoints.

See protocol/SPEC.md, "Exchange log". An entry's canonical bytes are ``canonical_json`` of its
thirteen fields; its leaf hash is ``SHA-256(0x00 || canonical bytes)`` (RFC 6962 section 2.1),
and each entry names the leaf hash of the one before it in ``prev``, so the log is both a hash
chain and the leaves of a Merkle tree. Checkpoints are C2SP signed notes
(https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint) over ``origin``, ``size`` and
the Merkle root, with no extension lines.

The package re-exports every public name of its modules; import them from here:
``entry`` (LogEntry and its canonical bytes), ``merkle`` (leaf and node hashes, roots, compact
ranges), ``note`` (signed notes and checkpoints), ``verify`` (LogVerifier, LogProblem),
``proofs`` (RFC 9162 inclusion and consistency proofs), ``cosign`` (C2SP witness cosignatures).
``witness`` (the log.witness messages) and ``bundle``/``audit``/``reconcile``/``budget_audit``
(the auditor's offline bundle; ``audit_common`` their shared helpers) are imported by their own
names.
"""

from __future__ import annotations

from protocol.translog.cosign import (
    COSIGNATURE_TYPE,
    Cosignature,
    CosignatureError,
    add_signatures,
    cosign,
    cosignature_key_id,
    cosignature_message,
    cosignatures,
    verify_cosignature,
    witness_name,
)
from protocol.translog.entry import (
    DETAIL_KEY_RE,
    DIRECTION_RE,
    ENTRY_FIELDS,
    MAX_DETAIL_BYTES,
    MAX_DETAIL_TEXT,
    MAX_UINT,
    NAME_RE,
    ZERO_HASH,
    LogEntry,
)
from protocol.translog.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    MAX_TREE_SIZE,
    NODE_PREFIX,
    CompactRange,
    leaf_hash,
    merkle_root,
    node_hash,
)
from protocol.translog.note import (
    ED25519_SIGNATURE_TYPE,
    MAX_NOTE_BYTES,
    MAX_NOTE_SIGNATURES,
    SIGNATURE_DASH,
    Checkpoint,
    NoteSignature,
    check_key_name,
    log_origin,
    note_key_id,
    parse_checkpoint_body,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)
from protocol.translog.proofs import (
    LeafSource,
    ProofError,
    SubtreeCache,
    consistency_proof,
    inclusion_proof,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)
from protocol.translog.verify import (
    LogProblem,
    LogVerifier,
)

__all__ = [
    "COSIGNATURE_TYPE",
    "DETAIL_KEY_RE",
    "DIRECTION_RE",
    "ED25519_SIGNATURE_TYPE",
    "EMPTY_ROOT",
    "ENTRY_FIELDS",
    "LEAF_PREFIX",
    "MAX_DETAIL_BYTES",
    "MAX_DETAIL_TEXT",
    "MAX_NOTE_BYTES",
    "MAX_NOTE_SIGNATURES",
    "MAX_TREE_SIZE",
    "MAX_UINT",
    "NAME_RE",
    "NODE_PREFIX",
    "SIGNATURE_DASH",
    "ZERO_HASH",
    "Checkpoint",
    "CompactRange",
    "Cosignature",
    "CosignatureError",
    "LeafSource",
    "LogEntry",
    "LogProblem",
    "LogVerifier",
    "NoteSignature",
    "ProofError",
    "SubtreeCache",
    "add_signatures",
    "check_key_name",
    "consistency_proof",
    "cosign",
    "cosignature_key_id",
    "cosignature_message",
    "cosignatures",
    "inclusion_proof",
    "leaf_hash",
    "log_origin",
    "merkle_root",
    "node_hash",
    "note_key_id",
    "parse_checkpoint_body",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
    "subtree_root",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_note",
    "witness_name",
]
