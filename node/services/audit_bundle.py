"""Exporting the exchange log as an audit bundle (protocol/translog/bundle.py) for an auditor.

Everything comes from one consistent snapshot of the database (exchange_log._snapshot, which
does not hold up appends): the directory in force, every stored checkpoint and every entry
exactly as stored. A damaged row is exported as it is: finding it is the auditor's job, and a
node that "repaired" its log on export would hide what it should show. The header states the
node's keys and budget caps and is signed with the log key. The file is streamed to a temporary
file beside the target (mode 0600: the log tells who talked to whom) and renamed into place only
when complete, so no one ever reads half a bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from node.context import NodeContext
from node.errors import ConfigurationError, OperatorError
from node.query.ledger import budget_policy
from node.services import exchange_log
from node.storage.models.directory import DirectoryVersion
from node.storage.models.log import LogCheckpoint, LogEntryRow
from protocol.query.privacy import format_rho
from protocol.translog.bundle import BudgetCaps, BundleHeader, compress, encode_bundle

_entries = cast(Table, LogEntryRow.__table__)
_checkpoints = cast(Table, LogCheckpoint.__table__)
_directories = cast(Table, DirectoryVersion.__table__)


def budget_caps(settings: Any) -> BudgetCaps:
    """The node's budget caps (node.query.ledger.budget_policy) as the bundle header states them."""
    policy = budget_policy(settings)
    return BudgetCaps(
        period=policy.period,
        peer_rho=format_rho(policy.peer_nano),
        global_rho=format_rho(policy.global_nano),
        query_rho=format_rho(policy.query_nano),
        peer_caps={peer: format_rho(nano) for peer, nano in policy.peer_caps_nano.items()},
        delta=format(Decimal(repr(float(policy.delta))), "f"),
    )


def export_bundle(node: NodeContext, out: Path, *, witness: bool = True) -> dict[str, Any]:
    """Write this node's audit bundle to ``out`` (replacing it atomically); return what was written.

    With ``witness``, first signs a checkpoint and asks the directory's witnesses to cosign it
    (witness.witness_all), so the bundle shows the log witnessed up to a moment ago; a witness that
    refuses or does not answer is reported in ``witnesses``, not raised. Then signs a checkpoint of
    the whole log (exchange_log.checkpoint, which refuses over a damaged log), so that every
    exported entry is under a signature: a checkpoint-less tail could be rewritten by whoever holds
    the file. Only the entries of the witnessing exchange itself are then under no cosigned
    checkpoint, which the witness policy's ``max_delay`` allows for. A refusal does not stop the
    export (the bundle is how an auditor sees the damage); it is returned in ``checkpoint_refused``.

    Returns ``{"path", "node_id", "exported_at", "entries", "checkpoints", "bytes", "sha256",
    "checkpoint_refused", "witnesses"}``. Raises OperatorError when ``out`` cannot be written and
    ConfigurationError when the installed directory no longer parses. Memory does not grow with
    the log.
    """
    witnessed = _ask_witnesses(node) if witness else []
    refused = None
    try:
        exchange_log.checkpoint(node)
    except exchange_log.LogIntegrityError as e:
        refused = e.message
    exported_at = node.clock()
    with exchange_log._snapshot(node.db) as conn:
        entries = conn.execute(select(func.count()).select_from(_entries)).scalar_one()
        checkpoints = conn.execute(select(func.count()).select_from(_checkpoints)).scalar_one()
        header = BundleHeader(
            node_id=node.node_id,
            country=node.settings.country,
            exported_at=exported_at,
            log_public_key=bytes(node.keys.log.verify_key),
            signing_public_key=bytes(node.keys.signing.verify_key),
            directory=_directory_in_force(conn),
            budget_policy=budget_caps(node.settings),
            entries=entries,
            checkpoints=checkpoints,
        ).signed_with(node.keys.log)
        lines = encode_bundle(header, _notes(conn), _entries_as_stored(conn))
        size, digest = _write_atomically(out, compress(lines))
    return {
        "path": str(out),
        "node_id": node.node_id,
        "exported_at": exported_at,
        "entries": entries,
        "checkpoints": checkpoints,
        "bytes": size,
        "sha256": digest,
        "checkpoint_refused": refused,
        "witnesses": witnessed,
    }


def _ask_witnesses(node: NodeContext) -> list[dict[str, Any]]:
    """Sign a checkpoint and have it cosigned; each witness's answer (none when that cannot start)."""
    from node.services.witness import witness_all

    try:
        exchange_log.checkpoint(node)
        return witness_all(node)
    except exchange_log.LogIntegrityError:
        return []  # reported by the checkpoint that follows
    except OperatorError as e:  # no directory in force: no one to ask
        return [{"peer": None, "status": "not_asked", "code": e.code, "message": e.message}]


def _directory_in_force(conn: Connection) -> dict[str, Any] | None:
    query = select(_directories.c.document).order_by(_directories.c.version.desc(), _directories.c.id.desc())
    document = conn.execute(query.limit(1)).scalar()
    if document is None:
        return None
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigurationError("the installed directory no longer parses", code="directory_corrupt")
    return parsed


def _notes(conn: Connection) -> Iterator[str]:
    """Every checkpoint note in size order, with the cosignatures witnesses returned for it."""
    from node.services.witness import cosignature_lines
    from protocol.translog.cosign import add_signatures

    lines = cosignature_lines(conn)
    query = select(_checkpoints.c.size, _checkpoints.c.note).order_by(_checkpoints.c.size)
    for row in conn.execute(query.execution_options(yield_per=1000)):
        extra = [line for _, line in lines.get(int(row.size), [])]
        yield add_signatures(row.note.encode("utf-8"), extra).decode("utf-8") if extra else row.note


def _entries_as_stored(conn: Connection) -> Iterator[tuple[dict[str, Any], str]]:
    """Every stored entry in index order, ``detail`` as the JSON object stored (as text if it is not one)."""
    for fields, leaf_hash in exchange_log._stream_entries(conn, 0):
        text = fields["detail"]
        if text == "{}":
            fields["detail"] = {}
        else:
            try:
                detail = json.loads(text)
            except (TypeError, ValueError):
                detail = None
            fields["detail"] = detail if isinstance(detail, dict) else text
        yield fields, leaf_hash


def _write_atomically(out: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Write ``chunks`` to a 0600 temporary file beside ``out``, fsync, rename; return (bytes, sha256)."""
    try:  # mkstemp: a new file of mode 0600 with a name no one else uses
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise OperatorError(
            f"cannot write the bundle to {out}: {e.strerror}", code="bundle_not_written"
        ) from e
    temporary, digest, size = Path(name), hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, out)
    except BaseException as e:
        temporary.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OperatorError(
                f"cannot write the bundle to {out}: {e.strerror}", code="bundle_not_written"
            ) from e
        raise
    return size, digest.hexdigest()
