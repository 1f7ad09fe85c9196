"""The audit bundle format and the offline checks, on bundles built in memory with fixed keys.

Tables of bad input each assert the exact error (STYLE.md 18); reconcile and budget_audit are
driven with small synthetic logs so that each finding is produced on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import nacl.public
import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import b64encode, canonical_json
from protocol.directory import (
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    SignedDirectory,
    WitnessPolicy,
    sign_directory,
)
from protocol.refusal import sign_refusal
from protocol.translog import ZERO_HASH, Checkpoint, CompactRange, LogEntry, log_origin, sign_checkpoint
from protocol.translog.audit import verify_bundle
from protocol.translog.budget_audit import budget_audit
from protocol.translog.bundle import (
    MAX_LINE_BYTES,
    BudgetCaps,
    BundleError,
    BundleHeader,
    CheckpointLine,
    EndLine,
    EntryLine,
    compress,
    encode_bundle,
    entry_line,
    parse_header,
    parse_line,
    read_bundle,
    read_lines,
    rho_nano,
)
from protocol.translog.cosign import add_signatures, cosign, witness_name
from protocol.translog.reconcile import reconcile

T0 = 1767225600  # 2026-01-01 00:00:00 UTC
GOVERNANCE = [nacl.signing.SigningKey(bytes([0xA0 + i]) * 32) for i in range(3)]
NODES = {"nld-a": 1, "rou-b": 2, "ukr-c": 3}
CAPS = BudgetCaps(period="month", peer_rho="0.5", global_rho="1", query_rho="0.1", peer_caps={"rou-b": "0.2"})


def log_key(node_id: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes([NODES[node_id]]) * 32)


def signing_key(node_id: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes([0x10 + NODES[node_id]]) * 32)


def member(node_id: str, roles: tuple[str, ...] = ("analyst",)) -> Member:
    box = nacl.public.PrivateKey(bytes([0x20 + NODES[node_id]]) * 32)
    return Member(
        node_id=node_id,
        country=node_id[:3].upper(),
        url=f"https://{node_id}.example.org/",
        signing_key=bytes(signing_key(node_id).verify_key),
        encryption_key=bytes(box.public_key),
        log_key=bytes(log_key(node_id).verify_key),
        roles=roles,
    )


def directory(
    signers: Sequence[nacl.signing.SigningKey] = GOVERNANCE[:2],
    members: Iterable[str] = ("nld-a", "rou-b"),
    *,
    witnesses: Iterable[str] = (),
    policy: WitnessPolicy | None = None,
) -> dict[str, Any]:
    signed = Directory(
        federation="test",
        version=3,
        expires=T0 + 86400 * 365,
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(public=bytes(k.verify_key)) for k in GOVERNANCE), threshold=2
        ),
        members=tuple(
            member(n, ("analyst", "witness") if n in witnesses else ("analyst",)) for n in sorted(members)
        ),
        witness_policy=policy,
    )
    document = SignedDirectory(signed=signed)
    for key in signers:
        document = sign_directory(document, key)
    return document.to_dict()


def chain(specs: Sequence[dict[str, Any]]) -> list[LogEntry]:
    entries: list[LogEntry] = []
    for i, spec in enumerate(specs):
        prev = entries[-1].leaf_hash().hex() if entries else ZERO_HASH
        entries.append(LogEntry(**{"index": i, "time": T0 + i, "prev": prev, **spec}))
    return entries


def bundle(
    node_id: str,
    specs: Sequence[dict[str, Any]],
    *,
    checkpoints: Sequence[int] = (),
    header: dict[str, Any] | None = None,
    cosigners: Mapping[int, Sequence[str]] | None = None,
) -> list[bytes]:
    """The lines (without LF) of a correct bundle of ``specs``, checkpoints at the given sizes.

    ``cosigners``: checkpoint size -> the nodes whose cosignature (with their log key) it carries.
    """
    entries = chain(specs)
    notes = []
    for size in checkpoints:
        compact = CompactRange().extend(e.leaf_hash() for e in entries[:size])
        note = sign_checkpoint(
            Checkpoint(log_origin(node_id), size, compact.root()), signing_key=log_key(node_id)
        )
        lines = [
            cosign(note, name=witness_name(w), signing_key=log_key(w), timestamp=T0 + size)
            for w in (cosigners or {}).get(size, ())
        ]
        notes.append(add_signatures(note, lines).decode())
    fields = {
        "node_id": node_id,
        "country": member(node_id).country,
        "exported_at": T0 + 10**6,
        "log_public_key": bytes(log_key(node_id).verify_key),
        "signing_public_key": bytes(signing_key(node_id).verify_key),
        "directory": directory(),
        "budget_policy": CAPS,
        "entries": len(entries),
        "checkpoints": len(notes),
        **(header or {}),
    }
    signed = BundleHeader(**fields).signed_with(log_key(node_id))
    pairs = [(e.to_dict(), e.leaf_hash().hex()) for e in entries]
    return [line.rstrip(b"\n") for line in encode_bundle(signed, notes, pairs)]


def ping(
    direction: str,
    outcome: str,
    n: int,
    *,
    peer: str,
    code: str = "",
    reply_to: str = "",
    type_: str = "ping",
) -> dict[str, Any]:
    return {
        "kind": "envelope",
        "direction": direction,
        "peer": peer,
        "message_id": f"{n:032x}",
        "message_type": type_,
        "envelope_hash": f"{n:064x}",
        "size": 100,
        "outcome": outcome,
        "code": code,
        "detail": {"reply_to": f"{reply_to:0>64}"} if reply_to else {},
    }


def problems(lines: list[bytes], **options: Any) -> list[str]:
    return [p.message for p in verify_bundle(lines, **options).problems]


# --- the witness policy --------------------------------------------------------------------------

TRIO = ("nld-a", "rou-b", "ukr-c")


def witnessed(
    cosigners: Mapping[int, Sequence[str]], *, quorum: int = 2, exported_after: int = 10**6, entries: int = 6
) -> list[bytes]:
    """nld-a's bundle of ``entries`` entries (times T0, T0+1, ...), checkpoints at sizes 2, 4 and 6,
    under a directory in which all three nodes witness and the policy asks ``quorum`` within a day."""
    policy = WitnessPolicy(quorum=quorum, max_delay=86400)
    header = {
        "directory": directory(members=TRIO, witnesses=TRIO, policy=policy),
        "exported_at": T0 + exported_after,
    }
    specs = [ping("out", "sent", i, peer="rou-b") for i in range(entries)]
    return bundle("nld-a", specs, checkpoints=[2, 4, 6], header=header, cosigners=cosigners)


def test_a_quorum_on_the_newest_checkpoint_meets_the_policy() -> None:
    report = verify_bundle(witnessed({2: ["rou-b"], 6: ["rou-b", "ukr-c"]}))
    assert report.ok, report.problems
    assert report.cosigned == {2: ["rou-b"], 4: [], 6: ["rou-b", "ukr-c"]}
    assert report.witnessing == {
        "policy": {"quorum": 2, "max_delay": 86400},
        "witnessed_size": 6,
        "unwitnessed_entries": 0,
    }
    assert report.summary().endswith("; witnessed by a quorum of 2 up to size 6")


def test_entries_past_the_quorum_older_than_the_delay_are_named() -> None:
    report = verify_bundle(witnessed({4: ["rou-b", "ukr-c"], 6: ["rou-b"]}))
    assert not report.ok
    assert [(p.subject, p.position) for p in report.problems] == [("witness", 4)]
    assert report.problems[0].message == (
        "entry 4 (logged 2026-01-01T00:00:04Z) and 1 more are under no checkpoint cosigned by 2 witness(es) "
        "277.8 h later, at the export; the witness policy allows 24.0 h (checkpoints up to size 4 are witnessed)"
    )
    assert report.witnessing["witnessed_size"] == 4 and report.witnessing["unwitnessed_entries"] == 2


def test_entries_past_the_quorum_within_the_delay_are_pending_not_failing() -> None:
    report = verify_bundle(witnessed({4: ["rou-b", "ukr-c"]}, exported_after=3600))
    assert report.ok, report.problems
    assert report.summary().endswith(
        "; witnessed by a quorum of 2 up to size 4, 2 later entries within the policy's delay"
    )


@pytest.mark.parametrize(
    ("cosigners", "why"),
    [
        ({}, "nobody cosigned"),
        ({6: ["rou-b"]}, "one of two"),
        ({6: ["nld-a", "rou-b"]}, "the log's own cosignature does not count"),
        ({2: ["rou-b", "ukr-c"]}, "an old quorum leaves entries 2-5 unwitnessed"),
    ],
)
def test_a_missing_quorum_fails_the_bundle(cosigners: dict[int, list[str]], why: str) -> None:
    report = verify_bundle(witnessed(cosigners))
    assert [p.subject for p in report.problems] == ["witness"], why


def test_a_forged_cosignature_does_not_count_toward_the_quorum() -> None:
    header, *body = witnessed({6: ["rou-b", "ukr-c"]})
    checkpoint = json.loads(body[2])
    note = checkpoint["note"]
    cut = note.rindex("palermo-witness/ukr-c ") + len("palermo-witness/ukr-c ")
    payload = bytearray(base64.b64decode(note[cut:].split("\n")[0]))
    payload[-1] ^= 1
    checkpoint["note"] = note[:cut] + base64.b64encode(bytes(payload)).decode() + "\n"
    report = verify_bundle([header, *body[:2], canonical_json(checkpoint), *body[3:]])
    messages = [p.message for p in report.problems]
    assert messages[0].startswith("checkpoint at size 6: cosignature of ukr-c does not verify")
    assert [p.subject for p in report.problems] == ["checkpoint", "witness"]
    assert report.cosigned[6] == ["rou-b"]


# --- the format -----------------------------------------------------------------------------------


def test_a_bundle_round_trips_through_gzip_and_verifies() -> None:
    lines = bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 3, checkpoints=[1, 3])
    data = b"".join(compress(line + b"\n" for line in lines))
    assert data[:2] == b"\x1f\x8b" and zlib.decompress(data, 31).count(b"\n") == len(lines) == 7
    read = list(read_lines([data[i : i + 7] for i in range(0, len(data), 7)]))  # any chunking
    assert read == lines
    report = verify_bundle(read)
    assert (
        report.ok
        and report.summary()
        == "bundle OK: nld-a (NLD), 3 entries, 2 checkpoints, last checkpoint at size 3; the directory sets no witness policy"
    )
    records = list(read_bundle(read))
    assert isinstance(records[0], BundleHeader) and records[0].origin == "palermo/nld-a/exchange-log"
    assert [type(r) for r in records[1:]] == [
        CheckpointLine,
        CheckpointLine,
        EntryLine,
        EntryLine,
        EntryLine,
        EndLine,
    ]


def test_entries_after_the_last_checkpoint_are_pointed_out() -> None:
    report = verify_bundle(bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 3, checkpoints=[1]))
    assert report.summary() == (
        "bundle OK: nld-a (NLD), 3 entries, 1 checkpoints, last checkpoint at size 1 (2 entries are under no checkpoint); "
        "the directory sets no witness policy"
    )


def test_a_log_without_checkpoints_is_pointed_out() -> None:
    report = verify_bundle(bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 2))
    assert report.summary() == (
        "bundle OK: nld-a (NLD), 2 entries, 0 checkpoints, last checkpoint none (2 entries are under no checkpoint); "
        "the directory sets no witness policy"
    )


entry_specs = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["envelope", "budget_charge", "directory"]),
        "direction": st.sampled_from(["", "in", "out"]),
        "size": st.integers(0, 2**53 - 1),
        "outcome": st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True),
        "detail": st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
            st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=20), st.booleans(), st.none()),
            max_size=4,
        ),
    }
)


@given(st.lists(entry_specs, min_size=1, max_size=5))
def test_entry_lines_round_trip_in_canonical_form(specs: list[dict[str, Any]]) -> None:
    for entry in chain(specs):
        line = entry_line(entry.to_dict(), entry.leaf_hash().hex()).rstrip(b"\n")
        record = parse_line(line, number=2)
        assert (
            isinstance(record, EntryLine) and record.canonical and record.leaf_hash == entry.leaf_hash().hex()
        )
        detail = record.fields["detail"]
        rebuilt = LogEntry.from_dict(
            {**record.fields, "detail": json.loads(detail) if isinstance(detail, str) else detail}
        )
        assert rebuilt == entry and line == canonical_json(
            {**entry.to_dict(), "leaf_hash": record.leaf_hash, "type": "entry"}
        )


def _gzip(data: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflater.compress(data) + deflater.flush()


GOOD = _gzip(b"a\nb\n")
BAD_STREAMS = [
    ("not-gzip", b"plain text\n", "compressed data is corrupt after line 0"),
    ("cut", GOOD[:-6], "compressed data ends early after line 2 (the file was cut)"),
    ("trailing-bytes", GOOD + b"x", "bytes after the end of the compressed bundle"),
    ("second-member", GOOD + GOOD, "bytes after the end of the compressed bundle"),
    ("no-final-newline", _gzip(b"a\nb"), "line 2 has no end of line (the file was cut)"),
    (
        "long-line",
        _gzip(b"h\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n"),
        f"line 2: longer than {MAX_LINE_BYTES} bytes",
    ),
]


@pytest.mark.parametrize(
    ("data", "error"), [(d, e) for _, d, e in BAD_STREAMS], ids=[n for n, _, _ in BAD_STREAMS]
)
def test_bad_streams_are_refused(data: bytes, error: str) -> None:
    with pytest.raises(BundleError) as caught:
        list(read_lines([data]))
    assert caught.value.message == error and caught.value.code == "malformed_bundle"


def _header_with(**changes: Any) -> bytes:
    obj = json.loads(bundle("nld-a", [])[0])
    obj.update(changes)
    return canonical_json({k: v for k, v in obj.items() if v is not ...})


BAD_HEADERS = [
    ("not-json", b"{", "line 1 is not well-formed JSON (expected the bundle header)"),
    ("empty", b"", "line 1 is not well-formed JSON (expected the bundle header)"),
    ("duplicate-key", b'{"format":1,"format":2}', "JSON object has a duplicate key (expected the bundle header)"),
    ("missing", _header_with(entries=...), "header: missing field(s) entries"),
    ("unknown", _header_with(extra=1), "header: unknown field(s) extra"),
    ("format", _header_with(format="tar"), "header: expected format 'palermo-audit-bundle' version 1"),
    ("version", _header_with(version=2), "header: expected format 'palermo-audit-bundle' version 1"),
    ("origin", _header_with(origin="palermo/rou-b/exchange-log"), "header.origin: expected 'palermo/nld-a/exchange-log' for node 'nld-a'"),
    ("key", _header_with(log_public_key=b64encode(b"k" * 31)), "header.log_public_key: expected 32 bytes, got 31"),
    ("count", _header_with(entries=True), "header.entries: expected an integer of at least 0"),
    ("country", _header_with(country="nl"), "header.country: expected an ISO 3166-1 alpha-3 code"),
    ("directory", _header_with(directory=[]), "header.directory: expected a JSON object or null"),
    ("rho", _header_with(budget_policy={**CAPS.to_dict(), "peer_rho": "0.5000000001"}), "header.budget_policy.peer_rho: expected a decimal string with at most 9 decimals"),
    ("period", _header_with(budget_policy={**CAPS.to_dict(), "period": "week"}), "header.budget_policy.period: expected month, quarter or year"),
    ("peer-cap", _header_with(budget_policy={**CAPS.to_dict(), "peer_caps": {"X": "1"}}), "header.budget_policy.peer_caps key: expected a node id (a-z, 0-9, '-', 2-63 characters)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "error"), [(d, e) for _, d, e in BAD_HEADERS], ids=[n for n, _, _ in BAD_HEADERS]
)
def test_bad_headers_are_refused(line: bytes, error: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse_header(line)
    assert caught.value.message == error
    assert problems([line]) == [error]  # and verify names it, on line 1


BAD_LINES = [
    ("not-utf8", b"\xff", "line 5: not UTF-8"),
    ("not-json", b"{x", "line 5 is not well-formed JSON"),
    ("float", b'{"type":"end","entries":1.5,"checkpoints":0}', "JSON constant float is not allowed"),
    ("unknown-type", b'{"type":"receipt"}', "line 5: expected an object with type entry, checkpoint or end"),
    ("array", b"[]", "line 5: expected an object with type entry, checkpoint or end"),
    ("checkpoint-without-note", b'{"type":"checkpoint"}', "line 5 (checkpoint): missing field(s) note"),
    (
        "end-with-bool",
        b'{"type":"end","entries":true,"checkpoints":0}',
        "line 5: end.entries: expected int, got bool",
    ),
    ("too-long", b"x" * (MAX_LINE_BYTES + 1), f"line 5: longer than {MAX_LINE_BYTES} bytes"),
]


@pytest.mark.parametrize(
    ("line", "error"), [(d, e) for _, d, e in BAD_LINES], ids=[n for n, _, _ in BAD_LINES]
)
def test_bad_lines_are_refused(line: bytes, error: str) -> None:
    with pytest.raises(BundleError) as caught:
        parse_line(line, number=5)
    assert caught.value.message == error


def test_an_entry_line_out_of_canonical_form_is_named_and_still_checked() -> None:
    lines = bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 2, checkpoints=[2])
    lines[3] = json.dumps(json.loads(lines[3])).encode()  # with spaces
    assert problems(lines) == ["entry 1: line 4 is not in canonical form"]
    with pytest.raises(BundleError, match=r"^line 4: entry line is not in canonical form$"):
        list(read_bundle(lines))


def test_lines_out_of_place_are_named() -> None:
    lines = bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 2, checkpoints=[1, 2])
    moved = [lines[0], lines[1], lines[3], lines[2], *lines[4:], lines[-1]]
    assert problems(moved) == [
        "line 4: checkpoint after the entries (checkpoints come first)",
        "line 7: data after the end line (line 6)",
    ]  # the misplaced checkpoint is not used: the one at size 1 is checked


@pytest.mark.parametrize(
    ("text", "nano"),
    [("0", 0), ("1", 10**9), ("0.5", 5 * 10**8), ("0.000000001", 1), ("12.25", 12_250_000_000)],
)
def test_rho_decimals_are_exact(text: str, nano: int) -> None:
    assert rho_nano(text, what="rho") == nano


@pytest.mark.parametrize("text", ["01", "-1", "1e-3", "0.5000000001", ".5", "1.", "", " 1"])
def test_bad_rho_decimals_are_refused(text: str) -> None:
    with pytest.raises(BundleError, match=r"^rho: expected a decimal string with at most 9 decimals$"):
        rho_nano(text, what="rho")


# --- header, keys and directory -------------------------------------------------------------------

DIRECTORY_CASES = [
    ("one-signature", {"directory": directory(signers=GOVERNANCE[:1])}, ["directory version 3: signed by 1 of its governance keys, it needs 2"]),
    ("not-a-member", {"directory": directory(members=["rou-b"])}, ["directory version 3 does not list node nld-a"]),
    ("no-directory", {"directory": None}, ["directory: none in the bundle, so the log key cannot be checked"]),
    ("malformed", {"directory": {"signed": {}}}, ["directory: directory: missing field(s) signatures"]),
    ("signing-key", {"signing_public_key": bytes(signing_key("rou-b").verify_key)}, ["header: the signing key is not the one directory version 3 lists for nld-a"]),
    ("country", {"country": "DEU"}, ["header: country DEU, directory version 3 lists NLD"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "expected"), [(h, e) for _, h, e in DIRECTORY_CASES], ids=[n for n, _, _ in DIRECTORY_CASES]
)
def test_header_and_directory_findings(header: dict[str, Any], expected: list[str]) -> None:
    assert problems(bundle("nld-a", [], header=header)) == expected


def test_governance_keys_given_by_the_auditor() -> None:
    lines = bundle("nld-a", [])
    directory = verify_bundle(lines).directory
    assert directory is not None
    ids = directory.governance_keys
    assert verify_bundle(lines, governance_keys=[*ids, "ab" * 32]).ok
    assert problems(lines, governance_keys=ids[1:]) == [
        f"directory version 3: governance key {ids[0]} is not one of the keys given"
    ]
    assert problems(lines, governance_keys=[]) == [
        f"directory version 3: governance key {k} is not one of the keys given" for k in ids
    ]


def test_a_header_re_signed_with_another_key_is_caught_by_the_directory() -> None:
    lines = bundle("nld-a", [])
    header = replace(parse_header(lines[0]), log_public_key=bytes(log_key("rou-b").verify_key)).signed_with(
        log_key("rou-b")
    )
    assert problems([canonical_json(header.to_dict()), *lines[1:]]) == [
        "header: the log key is not the one directory version 3 lists for nld-a"
    ]


def test_checkpoint_sizes_must_increase() -> None:
    lines = bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")] * 2, checkpoints=[2, 1])
    assert problems(lines) == ["checkpoint at size 1: sizes do not increase (after size 2)"]


def test_a_malformed_checkpoint_note_is_named_by_its_line() -> None:
    lines = bundle("nld-a", [ping("out", "sent", 1, peer="rou-b")], checkpoints=[1])
    lines[1] = canonical_json({"type": "checkpoint", "note": "palermo/nld-a/exchange-log\n1\n"})
    assert problems(lines) == [
        "checkpoint on line 2: malformed note (note has no blank line before its signatures)"
    ]


# --- reconcile ------------------------------------------------------------------------------------

A, B = "nld-a", "rou-b"


def reconciled(a_specs: list[dict[str, Any]], b_specs: list[dict[str, Any]]) -> Any:
    return reconcile(bundle(A, a_specs), bundle(B, b_specs))


def test_reconcile_pairs_requests_and_replies() -> None:
    a = [ping("out", "sent", 1, peer=B), ping("in", "accepted", 2, peer=B, reply_to="1", type_="pong")]
    b = [ping("in", "accepted", 1, peer=A), ping("out", "sent", 2, peer=A, reply_to="1", type_="pong")]
    report = reconciled(a, b)
    assert report.ok and report.paired == 2 and report.mismatches == ()
    assert report.to_dict()["mismatch_count"] == 0 and report.summary().startswith(
        "logs agree: nld-a and rou-b, 2 "
    )


def test_reconcile_lists_refusals_and_undelivered_without_failing() -> None:
    a = [
        ping("out", "sent", 1, peer=B),
        ping("out", "refused_by_peer", 1, peer=B, code="replayed_message"),
        ping("out", "sent", 3, peer=B),
        ping("out", "failed", 3, peer=B, code="transport_error"),
    ]
    b = [{**ping("in", "refused", 1, peer=A, code="replayed_message"), "message_id": ""}]
    report = reconciled(a, b)
    assert report.ok, report.problems
    h1, h3 = f"{1:064x}", f"{3:064x}"
    assert [p.message for p in report.refusals] == [
        f"{A} entry 0: ping {1:032x} (envelope {h1}) sent to {B}: refused by {B}: replayed_message ({B} entry 0)"
    ]
    assert [p.message for p in report.undelivered] == [
        f"{A} entry 2: ping {3:032x} (envelope {h3}) sent to {B}: never delivered (failed at {A}); {B} has no entry"
    ]
    assert report.notes == tuple(
        f"{y}'s log links no reply to its request (detail.reply_to): replies to {x} not checked"
        for x, y in ((A, B), (B, A))
    )


def test_reconcile_lists_what_was_logged_after_the_other_export() -> None:
    a = [ping("out", "sent", 1, peer=B), ping("out", "sent", 2, peer=B)]  # at T0 and T0 + 1
    b = [ping("in", "accepted", 1, peer=A), ping("in", "accepted", 3, peer=A)]
    report = reconcile(bundle(A, a, header={"exported_at": T0}), bundle(B, b, header={"exported_at": T0 + 1}))
    assert report.ok and report.mismatches == ()
    assert [p.message for p in report.after_export] == [
        f"{A} entry 1: ping {2:032x} (envelope {2:064x}) sent to {B} at {T0 + 1}, after {B} exported its bundle",
        f"{B} entry 1: accepted ping {3:032x} (envelope {3:064x}) from {A} at {T0 + 1}, after {A} exported its bundle",
    ]
    assert report.summary().endswith("2 after the other's export")


RECONCILE_CASES = [
    (
        "message-id-differs",
        [ping("out", "sent", 1, peer=B)],
        [{**ping("in", "accepted", 1, peer=A), "message_id": "ff" * 16}],
        [f"{A} entry 0: ping {1:032x} (envelope {1:064x}) sent to {B}; {B} entry 0 logged it as message {'ff' * 16}"],
    ),
    (
        "unexpected-outcome",
        [ping("out", "sent", 1, peer=B)],
        [ping("in", "queued", 1, peer=A)],
        [f"{A} entry 0: ping {1:032x} (envelope {1:064x}) sent to {B}; {B} entry 0 logged it as queued, expected accepted or refused"],
    ),
    (
        "accepted-but-never-sent",
        [],
        [ping("in", "accepted", 5, peer=A)],
        [f"{B} entry 0: accepted ping {5:032x} (envelope {5:064x}) from {A}; {A} has no entry for sending it"],
    ),
    (
        "missing-receipt-of-a-reply",
        [ping("out", "sent", 1, peer=B)],
        [ping("in", "accepted", 1, peer=A), ping("out", "sent", 2, peer=A, reply_to="1", type_="pong")],
        [f"{B} entry 1: pong {2:032x} (envelope {2:064x}) sent to {A} in reply to {1:064x}: missing receipt, {A} has no entry for it"],
    ),
    (
        "reply-linked-to-another-request",
        [ping("out", "sent", 1, peer=B), ping("in", "accepted", 2, peer=B, reply_to="9", type_="pong")],
        [ping("in", "accepted", 1, peer=A), ping("out", "sent", 2, peer=A, reply_to="1", type_="pong")],
        [f"{A} entry 1: logged reply {2:064x} as the answer to {9:064x}; {B} entry 1 sent it in reply to {1:064x}"],
    ),
    (
        "request-without-reply",
        [ping("out", "sent", 1, peer=B), ping("out", "sent", 3, peer=B), ping("in", "accepted", 2, peer=B, reply_to="1", type_="pong")],
        [ping("in", "accepted", 1, peer=A), ping("out", "sent", 2, peer=A, reply_to="1", type_="pong"), ping("in", "accepted", 3, peer=A)],
        [f"{B} entry 2: accepted request ping {3:032x} (envelope {3:064x}) from {A} but logged no reply"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "expected"), [c[1:] for c in RECONCILE_CASES], ids=[c[0] for c in RECONCILE_CASES]
)
def test_reconcile_names_each_mismatch(
    a: list[dict[str, Any]], b: list[dict[str, Any]], expected: list[str]
) -> None:
    report = reconciled(a, b)
    assert [p.message for p in report.mismatches] == expected
    assert not report.ok and report.a.ok and report.b.ok


def test_reconcile_refuses_two_bundles_of_one_node() -> None:
    report = reconcile(bundle(A, []), bundle(A, []))
    assert [p.message for p in report.problems] == [f"both bundles are from {A}"]


def test_reconcile_reports_an_unreadable_bundle() -> None:
    report = reconcile([b"{"], bundle(B, []))
    assert not report.ok and report.notes == ("a bundle header cannot be read: nothing was paired",)
    assert (
        report.problems[0].message == "bundle A: line 1 is not well-formed JSON (expected the bundle header)"
    )


# --- budget ---------------------------------------------------------------------------------------


def charge(
    peer: str, rho: int, query: int, *, kind: str = "budget_charge", period: str = "2026-01"
) -> dict[str, Any]:
    return {
        "kind": kind,
        "peer": peer,
        "message_type": "query.request",
        "outcome": "charged" if kind == "budget_charge" else "cached",
        "detail": {"period": period, "rho_nano": rho, "query_hash": f"{query:064x}"},
    }


def test_budget_sums_per_period_and_peer() -> None:
    specs = [
        charge("nld-a", 100_000_000, 1),
        charge("rou-b", 50_000_000, 2),
        charge("rou-b", 0, 2, kind="budget_release"),
    ]
    report = budget_audit(bundle(A, specs))
    assert report.ok, report.problems
    assert [p.to_dict() for p in report.peers] == [
        {
            "period": "2026-01",
            "peer": "nld-a",
            "spent": "0.1",
            "cap": "0.5",
            "left": "0.4",
            "charges": 1,
            "over": False,
        },
        {
            "period": "2026-01",
            "peer": "rou-b",
            "spent": "0.05",
            "cap": "0.2",
            "left": "0.15",
            "charges": 1,
            "over": False,
        },
    ]
    assert [p.to_dict() for p in report.periods] == [
        {"period": "2026-01", "spent": "0.15", "cap": "1", "left": "0.85", "charges": 2, "over": False}
    ]
    assert report.releases == 1 and "caps are the node's settings" in report.to_dict()["caps_note"]


BUDGET_CASES = [
    ("over-peer-cap", [charge("rou-b", 100_000_000, 1), charge("rou-b", 100_000_000, 2), charge("rou-b", 100_000_000, 3)],
     ["entry 2: charge of rho 0.1 to rou-b in 2026-01: rou-b has spent 0.3, over its cap 0.2"]),
    ("over-query-limit", [charge("nld-a", 200_000_000, 1)], ["entry 0: charge of rho 0.2 to nld-a in 2026-01: over the per-query limit 0.1"]),
    ("over-global-cap", [charge(f"p{i}-x", 100_000_000, i) for i in range(11)],
     ["entry 10: charge of rho 0.1 to p10-x in 2026-01: all peers have spent 1.1, over the global cap 1"]),
    ("charged-twice", [charge("nld-a", 10, 1), charge("nld-a", 10, 1)],
     [f"entry 1: charge of rho 0.00000001 to nld-a in 2026-01: query {1:064x} was charged already (entry 0); a repeat is cached"]),
    ("zero-charge", [charge("nld-a", 0, 1)], ["entry 0: charge of rho 0 to nld-a in 2026-01: a charge must be above 0"]),
    ("release-that-charged", [charge("nld-a", 10, 1), charge("nld-a", 5, 1, kind="budget_release")],
     ["entry 1: cached answer to nld-a charged rho 0.000000005, expected 0"]),
    ("release-without-charge", [charge("nld-a", 0, 4, kind="budget_release")],
     [f"entry 0: cached answer to nld-a for query {4:064x} in 2026-01, but no earlier charge"]),
    ("outside-its-period", [charge("nld-a", 10, 1, period="2025-Q4")], [f"entry 0: budget_charge in period 2025-Q4 logged at {T0}, outside it"]),
    ("malformed-detail", [{**charge("nld-a", 10, 1), "detail": {"period": "2026-01"}}], ["entry 0: budget_charge without period, rho_nano and query_hash"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("specs", "expected"), [c[1:] for c in BUDGET_CASES], ids=[c[0] for c in BUDGET_CASES]
)
def test_budget_findings(specs: list[dict[str, Any]], expected: list[str]) -> None:
    report = budget_audit(bundle(A, specs))
    assert [p.message for p in report.problems] == expected
    assert report.log.ok and not report.ok


def test_budget_of_a_broken_log_is_not_ok() -> None:
    lines = bundle(A, [charge("nld-a", 10, 1)])
    lines[1] = lines[1].replace(b'"rho_nano":10', b'"rho_nano":1')
    report = budget_audit(lines)
    assert not report.ok and report.budget_problems == ()
    assert [p.message for p in report.problems] == ["entry 0: contents changed (leaf hash differs)"]


# --- refusal receipts ------------------------------------------------------------------------------


def refused_by_rou(n: int, **receipt: Any) -> dict[str, Any]:
    """nld-a's entry for an envelope rou-b refused, with rou-b's signed receipt (changed by ``receipt``)."""
    envelope_hash = f"{n:064x}"
    signed = sign_refusal("rou-b", envelope_hash, "invalid_query", T0 + n, signing_key=signing_key("rou-b"))
    detail = {
        "receipt_time": signed.time,
        "receipt_signature": b64encode(signed.signature),
        "receipt_key": hashlib.sha256(bytes(signing_key("rou-b").verify_key)).hexdigest(),
        **receipt,
    }
    return {**ping("out", "refused_by_peer", n, peer="rou-b", code="invalid_query"), "detail": detail}


def test_refusal_receipts_are_checked_against_the_directory() -> None:
    report = verify_bundle(bundle("nld-a", [refused_by_rou(1), refused_by_rou(2, receipt_key="ab" * 32)]))
    assert report.ok, report.problems
    assert report.receipts == {"verified": 1, "unchecked": 1}  # the second names a key rou-b no longer has
    assert report.to_dict()["refusal_receipts"] == {"verified": 1, "unchecked": 1}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"receipt_time": T0 + 99}, "signature does not verify"),
        ({"receipt_signature": b64encode(bytes(64))}, "signature does not verify"),
        ({"receipt_time": "soon"}, "receipt.time"),
    ],
)
def test_a_receipt_the_peer_did_not_sign_is_named(change: dict[str, Any], why: str) -> None:
    report = verify_bundle(bundle("nld-a", [refused_by_rou(1, **change)]))
    assert [(p.subject, p.position) for p in report.problems] == [("entry", 0)]
    assert report.problems[0].message.startswith("entry 0: the refusal receipt of rou-b does not verify")
    assert why in report.problems[0].message


def test_reconcile_names_a_peer_whose_log_omits_a_refusal_it_signed() -> None:
    sent = ping("out", "sent", 1, peer="rou-b", type_="query.request")
    a = bundle("nld-a", [sent, refused_by_rou(1)])
    honest = bundle(
        "rou-b", [ping("in", "refused", 1, peer="nld-a", code="invalid_query", type_="query.request")]
    )
    assert reconcile(a, honest).ok
    report = reconcile(a, bundle("rou-b", []))
    assert [p.message for p in report.mismatches] == [
        f"nld-a entry 0: query.request {1:032x} (envelope {1:064x}) sent to rou-b: rou-b signed a refusal "
        "receipt for it, but rou-b's log has no entry for it"
    ]
