"""``palermo directory``: draft, sign, verify, install and show the federation directory.

``create``, ``sign`` and ``verify`` work on files and need no node home (governance may run them
on an offline machine); ``install`` and ``show`` act on the node home.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from node.cli.common import emit, json_option, open_node_from_ctx
from node.services import directory as service
from protocol.canonical import sha256_hex
from protocol.directory import (
    Assessment,
    Directory,
    SignatureTally,
    SignedDirectory,
    WitnessPolicy,
    iso_time,
    sign_directory,
)

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("directory")
def directory_group() -> None:
    """Create, sign, verify and install the federation directory."""


def parse_time(text: str) -> int:
    """An ISO 8601 date or time as unix seconds (UTC when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise service.DirectoryError(
            f"expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T12:00:00Z, got '{text}'",
            code="invalid_time",
        ) from e
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _write(path: Path, text: str, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise service.DirectoryError(f"{path} exists; refusing to overwrite it", code="file_exists")
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    except OSError as e:
        raise service.DirectoryError(f"cannot write {path}: {e.strerror}", code="file_unwritable") from e
    finally:
        staged.unlink(missing_ok=True)


def _read_document(path: Path) -> SignedDirectory:
    return service.parse_document(path.read_bytes())


def describe(directory: Directory, *, now: int, own_id: str | None = None) -> dict[str, Any]:
    """The directory as ``--json`` output shows it."""
    return {
        "federation": directory.federation,
        "version": directory.version,
        "expires": directory.expires,
        "expires_at": iso_time(directory.expires),
        "expired": directory.is_expired(now),
        "digest": directory.digest,
        "governance": {
            "threshold": directory.governance.threshold,
            "keyids": list(directory.governance.keyids),
        },
        "members": [
            {
                "node_id": m.node_id,
                "country": m.country,
                "url": m.url,
                "roles": list(m.roles),
                **({"self": True} if m.node_id == own_id else {}),
            }
            for m in directory.members
        ],
        "witness_policy": directory.witness_policy.to_dict() if directory.witness_policy else None,
    }


def _policy_text(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "no witness policy (cosignatures are checked, none is required)"
    hours = policy["max_delay"] / 3600
    return f"quorum {policy['quorum']}, every entry witnessed within {hours:g} h"


def _describe_text(info: dict[str, Any]) -> str:
    state = "EXPIRED" if info["expired"] else "valid"
    lines = [
        f"federation  {info['federation']}",
        f"version     {info['version']}",
        f"expires     {info['expires_at']} ({state})",
        f"governance  threshold {info['governance']['threshold']} of {len(info['governance']['keyids'])}:",
        *(f"              {k}" for k in info["governance"]["keyids"]),
        f"witnesses   {_policy_text(info['witness_policy'])}",
        f"members     {len(info['members'])}",
    ]
    for m in info["members"]:
        mark = "  <- this node" if m.get("self") else ""
        lines.append(f"  {m['node_id']:<20} {m['country']}  {','.join(m['roles']):<32} {m['url']}{mark}")
    return "\n".join(lines)


@directory_group.command("create")
@click.option("--federation", help="Federation name (a-z, 0-9, '.', '_', '-').")
@click.option("--version", "version", type=int, help="Version number (default with --from: current + 1).")
@click.option("--expires-days", type=click.IntRange(min=1), help="Expire this many days from now.")
@click.option("--expires", "expires_at", help="Expire at this ISO 8601 date or time (UTC unless given).")
@click.option("--threshold", type=click.IntRange(min=1), help="Governance signatures required.")
@click.option("--governance", "governance", multiple=True, type=_FILE, help="Governance key or public file.")
@click.option("--remove-governance", multiple=True, help="Key id (or 8+ hex prefix) to drop (with --from).")
@click.option("--member", "members", multiple=True, type=_FILE, help="Member descriptor from 'keys export'.")
@click.option("--remove-member", multiple=True, help="Node id to drop (with --from).")
@click.option(
    "--witness-quorum",
    type=click.IntRange(min=1),
    help="Witnesses (other than the log's own node) that must cosign each member's log checkpoints.",
)
@click.option(
    "--witness-max-delay",
    type=click.IntRange(min=1),
    help="Hours within which every log entry must be under a witnessed checkpoint (default 24).",
)
@click.option("--no-witness-policy", is_flag=True, help="Drop the witness policy (with --from).")
@click.option("--from", "from_path", type=_FILE, help="Start from this existing directory.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@json_option
def create_command(
    federation: str | None,
    version: int | None,
    expires_days: int | None,
    expires_at: str | None,
    threshold: int | None,
    governance: tuple[Path, ...],
    remove_governance: tuple[str, ...],
    members: tuple[Path, ...],
    remove_member: tuple[str, ...],
    witness_quorum: int | None,
    witness_max_delay: int | None,
    no_witness_policy: bool,
    from_path: Path | None,
    out: Path,
    as_json: bool,
) -> None:
    """Write a new, unsigned directory version (governance keys then sign it)."""
    if (expires_days is None) == (expires_at is None):
        raise service.DirectoryError(
            "give exactly one of --expires-days and --expires", code="directory_draft"
        )
    expires = parse_time(expires_at) if expires_at else int(time.time()) + 86400 * (expires_days or 0)
    base = _read_document(from_path).signed if from_path else None
    policy = _witness_policy(base, witness_quorum, witness_max_delay, drop=no_witness_policy)
    changes = service.DraftChanges(
        expires=expires,
        federation=federation,
        version=version,
        threshold=threshold,
        add_keys=[service.read_governance_public(p) for p in governance],
        remove_keys=remove_governance,
        add_members=[service.read_member_descriptor(p) for p in members],
        remove_members=remove_member,
        witness_policy=policy,
        drop_witness_policy=no_witness_policy,
    )
    document = service.draft_directory(base, changes)
    _write(out, service.document_text(document), overwrite=False)
    info = {**describe(document.signed, now=int(time.time())), "out": str(out)}
    emit(
        info,
        as_json,
        lambda i: f"{_describe_text(i)}\nwrote unsigned directory to {out}; next: directory sign",
    )


def _witness_policy(
    base: Directory | None, quorum: int | None, max_delay_hours: int | None, *, drop: bool
) -> WitnessPolicy | None:
    """The policy the options ask for (None: keep the base's), refusing contradictory options."""
    if drop and (quorum or max_delay_hours):
        raise service.DirectoryError(
            "--no-witness-policy cannot go with --witness-quorum or --witness-max-delay",
            code="directory_draft",
        )
    if quorum is None and max_delay_hours is None:
        return None
    old = base.witness_policy if base else None
    if quorum is None and old is None:
        raise service.DirectoryError("--witness-max-delay needs --witness-quorum", code="directory_draft")
    return WitnessPolicy(
        quorum=quorum or (old.quorum if old else 0),
        max_delay=max_delay_hours * 3600 if max_delay_hours else (old.max_delay if old else 86400),
    )


def _passphrase(path: Path, env_name: str | None) -> str | None:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise service.DirectoryError(
                f"environment variable {env_name} is empty", code="passphrase_required"
            )
        return value
    if service.governance_key_is_protected(path) and sys.stdin.isatty():
        return str(click.prompt(f"Passphrase for {path.name}", hide_input=True))
    return None


@directory_group.command("sign")
@click.argument("file", type=_FILE)
@click.option("--key", "key_path", required=True, type=_FILE, help="Governance key file.")
@click.option("--passphrase-env", help="Environment variable holding the key's passphrase.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: FILE).")
@json_option
def sign_command(
    file: Path, key_path: Path, passphrase_env: str | None, out: Path | None, as_json: bool
) -> None:
    """Add a governance signature (signing twice with one key keeps one signature)."""
    document = _read_document(file)
    key = service.load_governance_key(key_path, passphrase=_passphrase(key_path, passphrase_env))
    signed = sign_directory(document, key)
    _write(out or file, service.document_text(signed), overwrite=True)
    keyid = sha256_hex(bytes(key.verify_key))
    listed = keyid in document.signed.governance.keyids
    info = {
        "keyid": keyid,
        "in_governance_set": listed,
        "signatures": len(signed.signatures),
        "out": str(out or file),
    }
    note = "" if listed else " (not in this version's governance set: counts only as a previous key)"
    emit(info, as_json, f"signed with {keyid}{note}; {len(signed.signatures)} signature(s) in {out or file}")


def _tally(tally: SignatureTally | None) -> dict[str, Any] | None:
    if tally is None:
        return None
    return {
        "threshold": tally.threshold,
        "met": tally.met,
        "valid": list(tally.valid),
        "invalid": list(tally.invalid),
        "missing": list(tally.missing),
        "unknown": list(tally.unknown),
    }


def _report(assessment: Assessment, *, now: int) -> dict[str, Any]:
    error = assessment.error
    return {
        "accepted": assessment.accepted,
        "error": None if error is None else {"error": error.code, "message": error.message},
        **describe(assessment.candidate, now=now),
        "signatures": {"new": _tally(assessment.new_keys), "trusted": _tally(assessment.trusted_keys)},
    }


def _report_text(report: dict[str, Any]) -> str:
    lines = [_describe_text(report)]
    for which, tally in report["signatures"].items():
        if tally is not None:
            lines.append(
                f"{which + ' keys':<12}{len(tally['valid'])} valid of {tally['threshold']} required"
                f" ({'met' if tally['met'] else 'NOT met'}); bad: {len(tally['invalid'])},"
                f" missing: {len(tally['missing'])}, not in set: {len(tally['unknown'])}"
            )
    error = report["error"]
    lines.append(
        "result      ACCEPTED"
        if error is None
        else f"result      REFUSED: {error['message']} [{error['error']}]"
    )
    return "\n".join(lines)


@directory_group.command("verify")
@click.argument("file", type=_FILE)
@click.option(
    "--trusted", type=_FILE, help="The directory trusted now (default: verify as a first directory)."
)
@click.option("--at", "at_time", help="Check expiry at this ISO 8601 time instead of now.")
@json_option
@click.pass_context
def verify_command(
    ctx: click.Context, file: Path, trusted: Path | None, at_time: str | None, as_json: bool
) -> None:
    """Say whether FILE would be accepted; exit 0 only if it would."""
    now = parse_time(at_time) if at_time else int(time.time())
    assessment = service.assess_document(
        file.read_bytes(), trusted=trusted.read_bytes() if trusted else None, now=now
    )
    emit(_report(assessment, now=now), as_json, _report_text)
    if not assessment.accepted:
        ctx.exit(1)


@directory_group.command("install")
@click.argument("file", type=_FILE)
@click.option("--initial", is_flag=True, help="Trust this first directory (compare its key ids out of band).")
@json_option
@click.pass_context
def install_command(ctx: click.Context, file: Path, initial: bool, as_json: bool) -> None:
    """Install FILE as this node's directory (an update must be signed by the installed keys)."""
    node = open_node_from_ctx(ctx)
    try:
        directory = service.install_directory(node, file.read_bytes(), initial=initial)
        info = {**describe(directory, now=node.clock(), own_id=node.node_id), "initial": initial}
    finally:
        node.close()
    head = "trusted on first use" if initial else "installed"
    keys = "\n".join(f"  {k}" for k in info["governance"]["keyids"])
    emit(
        info, as_json, f"{head}: {info['federation']} version {info['version']}\ngovernance key ids:\n{keys}"
    )
    if directory.member(node.node_id) is None:
        click.echo(f"warning: this node ({node.node_id}) is not a member of this directory", err=True)


@directory_group.command("show")
@json_option
@click.pass_context
def show_command(ctx: click.Context, as_json: bool) -> None:
    """Show the installed directory; this node's own entry is marked."""
    node = open_node_from_ctx(ctx)
    try:
        record = service.installed_record(node)
        now = node.clock()
    finally:
        node.close()
    if record is None:
        raise service.DirectoryUnavailableError("no directory is installed", code="no_directory")
    info = {
        **describe(record.directory, now=now, own_id=node.node_id),
        "installed_at": iso_time(record.installed_at),
        "trusted_on_first_use": record.initial,
        "versions_installed": record.history,
    }
    emit(info, as_json, _describe_text)
