"""The exchange log in protocol/translog.py: entry bytes, RFC 6962 Merkle roots, C2SP notes, chain checks.

Vectors come from outside this code where they can: the canonical bytes are written out by hand
and hashed with hashlib; the Merkle roots are those of the Certificate Transparency test suite
and of a recursive RFC 6962 implementation written here; the note format is checked against the
example in golang.org/x/mod/sumdb/note. Every refusal asserts its exact code or message.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import canonical_json
from protocol.envelope import TYPE_RE
from protocol.errors import MalformedError, ProtocolError, VerificationError
from protocol.translog import (
    EMPTY_ROOT,
    ZERO_HASH,
    Checkpoint,
    CompactRange,
    LogEntry,
    LogVerifier,
    log_origin,
    merkle_root,
    note_key_id,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)
from protocol.translog.entry import ROW_FIELDS, row_canonical_bytes

ORIGIN = "palermo/nld-police/exchange-log"
LOG_KEY = nacl.signing.SigningKey(bytes(range(32)))
OTHER_KEY = nacl.signing.SigningKey(bytes(range(1, 33)))
T0 = 1767225600


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- entries: canonical bytes and leaf hashes ------------------------------------------------------

ENTRY0 = LogEntry(
    index=0,
    time=T0,
    kind="envelope",
    direction="out",
    peer="rou-anitp",
    message_id="0123456789abcdef0123456789abcdef",
    message_type="psi.request",
    envelope_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    size=2048,
    outcome="sent",
    detail={"set_size": 1200, "epsilon": "0.5"},
    prev=ZERO_HASH,
)
ENTRY0_BYTES = (
    b'{"code":"","detail":{"epsilon":"0.5","set_size":1200},"direction":"out",'
    b'"envelope_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","index":0,'
    b'"kind":"envelope","message_id":"0123456789abcdef0123456789abcdef","message_type":"psi.request",'
    b'"outcome":"sent","peer":"rou-anitp",'
    b'"prev":"0000000000000000000000000000000000000000000000000000000000000000","size":2048,"time":1767225600}'
)
ENTRY0_LEAF = "1711f9d81e6962c9be5e4c6cf1ca5107cf3087ef50b15d6072dd7ff7ef2d3423"
ENTRY1 = LogEntry(
    index=1,
    time=T0 + 1,
    kind="envelope",
    direction="in",
    peer="ukr-npu",
    envelope_hash="60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
    size=512,
    outcome="refused",
    code="replayed_message",
    prev=ENTRY0_LEAF,
)
ENTRY1_BYTES = (
    b'{"code":"replayed_message","detail":{},"direction":"in",'
    b'"envelope_hash":"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752","index":1,'
    b'"kind":"envelope","message_id":"","message_type":"","outcome":"refused","peer":"ukr-npu",'
    b'"prev":"1711f9d81e6962c9be5e4c6cf1ca5107cf3087ef50b15d6072dd7ff7ef2d3423","size":512,"time":1767225601}'
)
ENTRY1_LEAF = "fdafda91a94e5031d322e7c150bba7fdcde988f94eb74758a019d6ae645774db"
# The two-entry log of protocol/SPEC.md, "Exchange log": its root and checkpoint (key = bytes 0..31).
ROOT2 = "e4cc9038465ef7f105047c7f5f17525597274384c85fff4000d4e4e08bb7a649"
CHECKPOINT2 = (
    "palermo/nld-police/exchange-log\n2\n5MyQOEZe9/EFBHx/XxdSVZcnQ4TIX/9AANTk4Iu3pkk=\n\n"
    "— palermo/nld-police/exchange-log "
    "rcttaGI/CDj0YsbPycJYzjYf+B5NjxRlBpOJlQjdeVJ4R8XqoLBVVO5BMBMsqzEN/Bj6vXfhxrZsEGY7pOjNKZxK8wg=\n"
).encode()


def test_canonical_bytes_and_leaf_hash_vectors() -> None:
    assert ENTRY0.canonical_bytes() == ENTRY0_BYTES
    assert ENTRY1.canonical_bytes() == ENTRY1_BYTES
    assert hashlib.sha256(b"\x00" + ENTRY0_BYTES).hexdigest() == ENTRY0_LEAF
    assert ENTRY0.leaf_hash().hex() == ENTRY0_LEAF
    assert ENTRY1.leaf_hash().hex() == ENTRY1_LEAF
    assert ENTRY0.canonical_bytes() == canonical_json(ENTRY0.to_dict())
    assert LogEntry.from_canonical(ENTRY1_BYTES) == ENTRY1


def test_two_entry_log_root_and_checkpoint_vector() -> None:
    leaves = [bytes.fromhex(ENTRY0_LEAF), bytes.fromhex(ENTRY1_LEAF)]
    assert merkle_root(leaves).hex() == ROOT2 == sha(b"\x01" + leaves[0] + leaves[1]).hex()
    checkpoint = Checkpoint(origin=ORIGIN, size=2, root=bytes.fromhex(ROOT2))
    assert sign_checkpoint(checkpoint, signing_key=LOG_KEY) == CHECKPOINT2
    assert verify_checkpoint(CHECKPOINT2, origin=ORIGIN, public_key=LOG_KEY.verify_key) == checkpoint


GOOD = ENTRY0.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"index": -1}, "entry.index: expected an integer from 0 to 9007199254740991"),
        ({"time": True}, "entry.time: expected an integer from 0 to 9007199254740991"),
        ({"size": 2**53}, "entry.size: expected an integer from 0 to 9007199254740991"),
        ({"kind": ""}, "entry.kind: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)"),
        (
            {"kind": "Envelope"},
            "entry.kind: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)",
        ),
        (
            {"kind": "envelope\n"},
            "entry.kind: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)",
        ),
        ({"direction": "both"}, 'entry.direction: expected "in", "out" or ""'),
        ({"peer": "Not A Node"}, 'entry.peer: expected a node id or ""'),
        ({"message_id": "ABC"}, 'entry.message_id: expected 32 lowercase hex digits or ""'),
        ({"message_type": "x" * 65}, 'entry.message_type: expected a message type name or ""'),
        ({"envelope_hash": "ab" * 31}, 'entry.envelope_hash: expected 64 lowercase hex digits or ""'),
        (
            {"outcome": ""},
            "entry.outcome: expected a name (a-z first, then a-z, 0-9, '_', '.', '-'; at most 64)",
        ),
        ({"code": "Bad Code"}, 'entry.code: expected an error code name or ""'),
        ({"prev": ""}, "entry.prev: expected 64 lowercase hex digits"),
        ({"detail": []}, "entry.detail: expected a JSON object, got list"),
        (
            {"detail": {"Name": 1}},
            "entry.detail: keys must be names (a-z first, then a-z, 0-9, '_'; at most 64)",
        ),
        (
            {"detail": {"n": 1.5}},
            "entry.detail.n: expected a string, integer, boolean or null (detail is flat)",
        ),
        (
            {"detail": {"n": {"a": 1}}},
            "entry.detail.n: expected a string, integer, boolean or null (detail is flat)",
        ),
        ({"detail": {"n": "x" * 257}}, "entry.detail.n: text longer than 256 characters"),
        ({"detail": {"n": 2**60}}, "entry.detail: integer outside ±(2**53 - 1)"),
        (
            {"detail": {f"k{i}": "x" * 200 for i in range(6)}},
            "entry.detail: 1249 bytes of canonical JSON (at most 1024)",
        ),
    ],
)
def test_invalid_entry_fields_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedError) as info:
        LogEntry(**{**GOOD, **change})
    assert info.value.code == "malformed_log_entry"
    assert info.value.message == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ENTRY0_BYTES.replace(b'"code":"",', b""), "log entry: missing field(s) code"),
        (ENTRY0_BYTES.replace(b'"code":""', b'"code":"","extra":1'), "log entry: unknown field(s) extra"),
        (ENTRY0_BYTES.replace(b'"index":0,', b'"index": 0,'), "log entry: bytes are not in canonical form"),
        (b"[]", "log entry: expected a JSON object, got list"),
    ],
)
def test_from_canonical_refuses_other_bytes(data: bytes, message: str) -> None:
    with pytest.raises(MalformedError) as info:
        LogEntry.from_canonical(data)
    assert info.value.message == message


names = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)
entries = st.builds(
    LogEntry,
    index=st.integers(0, 2**53 - 1),
    time=st.integers(0, 2**53 - 1),
    kind=names,
    outcome=names,
    prev=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    direction=st.sampled_from(["in", "out", ""]),
    peer=st.one_of(st.just(""), st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)),
    message_type=st.one_of(st.just(""), st.from_regex(TYPE_RE, fullmatch=True)),
    code=st.one_of(st.just(""), names),
    detail=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=20)),
        max_size=5,
    ),
)


@settings(max_examples=300, deadline=None)
@given(entries)
def test_canonical_bytes_are_canonical_json_and_round_trip(entry: LogEntry) -> None:
    assert entry.canonical_bytes() == canonical_json(entry.to_dict())
    assert LogEntry.from_canonical(entry.canonical_bytes()) == entry


# --- RFC 6962 Merkle tree hash ---------------------------------------------------------------------

# Certificate Transparency's test leaves and the roots of their first 1..8 (RFC 6962 test suite).
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_LEAF_HASHES = [sha(b"\x00" + bytes.fromhex(leaf)) for leaf in CT_LEAVES]


def reference_root(hashes: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally: split at the largest power of two smaller than n."""
    if not hashes:
        return sha(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return sha(b"\x01" + reference_root(hashes[:k]) + reference_root(hashes[k:]))


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert CompactRange().root() == EMPTY_ROOT == merkle_root([])


@pytest.mark.parametrize("size", range(9))
def test_merkle_roots_of_sizes_0_to_8(size: int) -> None:
    hashes = CT_LEAF_HASHES[:size]
    assert merkle_root(hashes) == reference_root(hashes)
    assert CompactRange().extend(hashes).root() == reference_root(hashes)
    if size:
        assert merkle_root(hashes).hex() == CT_ROOTS[size - 1]


def test_merkle_root_refuses_hashes_of_the_wrong_size() -> None:
    with pytest.raises(MalformedError, match="every hash must be 32 bytes"):
        merkle_root([b"\x00" * 31])


leaf_lists = st.lists(st.binary(min_size=32, max_size=32), max_size=300)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.lists(st.integers(1, 40), max_size=20))
def test_incremental_compact_root_equals_full_root(leaves: list[bytes], chunks: list[int]) -> None:
    compact, start = CompactRange(), 0
    for chunk in [*chunks, len(leaves)]:  # appended in arbitrary chunks, root checked after each
        compact = compact.extend(leaves[start : start + chunk])
        start = min(start + chunk, len(leaves))
        assert compact.size == start
        assert compact.root() == merkle_root(leaves[:start]) == reference_root(leaves[:start])
    assert CompactRange.from_hex(compact.size, compact.to_hex()) == compact


@pytest.mark.parametrize(
    ("size", "text", "message"),
    [
        (3, "ab" * 32, "compact range: size 3 needs 2 hashes"),
        (1, "AB" * 32, "compact range: expected lowercase hex, 64 digits per hash"),
        (1, "ab" * 31, "compact range: expected lowercase hex, 64 digits per hash"),
        (-1, "", "compact range size: expected an integer from 0 to 9223372036854775807"),
    ],
)
def test_compact_range_refuses_bad_state(size: int, text: str, message: str) -> None:
    with pytest.raises(MalformedError) as info:
        CompactRange.from_hex(size, text)
    assert info.value.message == message


# --- C2SP signed notes and checkpoints -------------------------------------------------------------

# golang.org/x/mod/sumdb/note: the example key "PeterNeumann" and its signed note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + (
        "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
)


def test_note_format_matches_the_go_reference() -> None:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])[1:]
    public = base64.b64decode(GO_VERIFIER.split("+", 2)[2])[1:]
    key = nacl.signing.SigningKey(seed)
    assert bytes(key.verify_key) == public
    assert note_key_id("PeterNeumann", public).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, name="PeterNeumann", signing_key=key) == GO_NOTE
    assert verify_note(GO_NOTE, name="PeterNeumann", public_key=key.verify_key) == GO_TEXT


def test_checkpoint_round_trip_and_origin() -> None:
    assert log_origin("nld-police") == ORIGIN
    checkpoint = Checkpoint(origin=ORIGIN, size=123, root=sha(b"x"))
    note = sign_checkpoint(checkpoint, signing_key=LOG_KEY)
    assert note.startswith(checkpoint.body() + b"\n\xe2\x80\x94 " + ORIGIN.encode() + b" ")
    verified = verify_checkpoint(note, origin=ORIGIN, public_key=bytes(LOG_KEY.verify_key))
    assert verified == checkpoint and verified.note == note
    cosigned = (
        note
        + sign_note(checkpoint.body(), name="witness.example/w1", signing_key=OTHER_KEY).split(b"\n\n")[1]
    )
    assert (
        verify_checkpoint(cosigned, origin=ORIGIN, public_key=LOG_KEY.verify_key) == checkpoint
    )  # others ignored


def _signed(text: bytes, key: nacl.signing.SigningKey = LOG_KEY, name: str = ORIGIN) -> bytes:
    return sign_note(text, name=name, signing_key=key)


NOTE = sign_checkpoint(Checkpoint(origin=ORIGIN, size=40, root=sha(b"root")), signing_key=LOG_KEY)
BODY, SIGNATURES = NOTE.split(b"\n\n")
ROOT_B64 = base64.b64encode(sha(b"root"))
LOG_KEY_ID = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + bytes(LOG_KEY.verify_key)).digest()[:4]
RAW_SIG = base64.b64decode(SIGNATURES.split(b" ")[2])
UNSIGNED = f"note carries no signature by {ORIGIN} (key id {LOG_KEY_ID.hex()})"


def _sig_line(raw: bytes) -> bytes:
    return f"— {ORIGIN} ".encode() + base64.b64encode(raw) + b"\n"


@pytest.mark.parametrize(
    ("note", "code", "message"),
    [
        (_signed(BODY + b"\n", OTHER_KEY), "unsigned_note", UNSIGNED),  # wrong key: another key id
        (
            BODY + b"\n\n" + _sig_line(LOG_KEY_ID + OTHER_KEY.sign(BODY + b"\n").signature),
            "bad_signature",
            f"the signature by {ORIGIN} does not verify",
        ),  # wrong key claiming the log key's id
        (NOTE.replace(b"\n40\n", b"\n41\n"), "bad_signature", f"the signature by {ORIGIN} does not verify"),
        (
            NOTE.replace(ROOT_B64, base64.b64encode(sha(b"other"))),
            "bad_signature",
            f"the signature by {ORIGIN} does not verify",
        ),
        (
            NOTE.replace(b"=\n\n", b"=\nextra\n\n"),
            "bad_signature",
            f"the signature by {ORIGIN} does not verify",
        ),
        (
            BODY + b"\n\n" + _sig_line(b"\x00\x00\x00\x00" + RAW_SIG[4:]),
            "unsigned_note",
            UNSIGNED,
        ),  # bad key id
        (
            BODY + b"\n\n" + _sig_line(RAW_SIG[:-1]),
            "bad_signature",
            f"the signature by {ORIGIN} does not verify",
        ),
        (NOTE + b"extra text\n", "malformed_note", "note signature line is not '— <name> <base64>'"),
        (NOTE + b"trailing", "malformed_note", "note text does not end with a newline"),
        (NOTE.replace(b"\n\n", b"\n"), "malformed_note", "note has no blank line before its signatures"),
        (BODY + b"\n\n", "malformed_note", "note has no signature lines"),
        (
            NOTE.replace(b"\n40\n", b"\n4\t0\n"),
            "malformed_note",
            "note contains a control character other than newline",
        ),
        (b"\xff" + NOTE, "malformed_note", "note is not UTF-8"),
        (
            NOTE.replace(b"\xe2\x80\x94", b"-"),
            "malformed_note",
            "note signature line is not '— <name> <base64>'",
        ),
        (
            BODY + b"\n\n" + _sig_line(RAW_SIG).replace(b"=\n", b"\n"),
            "malformed_note",
            "note signature: not valid base64",
        ),
        (
            BODY + b"\n\n" + _sig_line(b"abcd"),
            "malformed_note",
            "note signature is shorter than a key id and a signature",
        ),
        (NOTE + _sig_line(RAW_SIG) * 64, "malformed_note", "note has more than 64 signatures"),
        (
            _signed(BODY + b"\nextension\n"),
            "malformed_checkpoint",
            "checkpoint has extension lines (Palermo uses none)",
        ),
        (
            _signed(f"{ORIGIN}\n040\n".encode() + ROOT_B64 + b"\n"),
            "malformed_checkpoint",
            "checkpoint size is not a decimal without leading zeros",
        ),
        (
            _signed(f"{ORIGIN}\n40\n".encode()),
            "malformed_checkpoint",
            "checkpoint has fewer than three lines",
        ),
        (
            _signed(f"{ORIGIN}\n40\n".encode() + base64.b64encode(b"short") + b"\n"),
            "malformed_checkpoint",
            "checkpoint root: expected 32 bytes, got 5",
        ),
        (
            _signed(b"example.org/log\n40\n" + ROOT_B64 + b"\n"),
            "wrong_origin",
            "checkpoint is for another log (origin differs)",
        ),
    ],
)
def test_tampered_checkpoint_notes_are_refused(note: bytes, code: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_checkpoint(note, origin=ORIGIN, public_key=LOG_KEY.verify_key)
    assert (info.value.code, info.value.message) == (code, message)
    assert isinstance(info.value, VerificationError | MalformedError)


def test_a_log_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(MalformedError) as info:
        verify_checkpoint(NOTE, origin=ORIGIN, public_key=bytes(31))
    assert (info.value.code, info.value.message) == ("malformed_key", "log public key: expected 32 bytes")


def test_another_logs_origin_finds_no_signature() -> None:
    with pytest.raises(VerificationError) as info:
        verify_checkpoint(NOTE, origin="palermo/rou-anitp/exchange-log", public_key=LOG_KEY.verify_key)
    assert info.value.code == "unsigned_note"


# --- verifying a chain -----------------------------------------------------------------------------


def build_log(n: int) -> list[LogEntry]:
    out: list[LogEntry] = []
    for i in range(n):
        prev = out[-1].leaf_hash().hex() if out else ZERO_HASH
        out.append(
            LogEntry(
                index=i,
                time=T0 + i,
                kind="envelope",
                direction="out" if i % 2 else "in",
                peer="rou-anitp",
                message_id=f"{i:032x}",
                message_type="ping",
                envelope_hash=hashlib.sha256(str(i).encode()).hexdigest(),
                size=100 + i,
                outcome="sent" if i % 2 else "accepted",
                detail={"n": i} if i % 3 == 0 else {},
                prev=prev,
            )
        )
    return out


Row = tuple[dict[str, Any], str]


def stored(entries: list[LogEntry]) -> list[Row]:
    """Entries as a database holds them: fields (detail as canonical JSON text) and leaf hash."""
    return [({**e.to_dict(), "detail": e.detail_json.decode()}, e.leaf_hash().hex()) for e in entries]


def rehashed(fields: dict[str, Any]) -> Row:
    """A row as a tamperer who knows the format writes it: fields changed, leaf hash recomputed."""
    entry = LogEntry.from_dict({**fields, "detail": json.loads(fields["detail"])})
    return {**entry.to_dict(), "detail": entry.detail_json.decode()}, entry.leaf_hash().hex()


def as_row(fields: dict[str, Any], leaf: str) -> tuple[Any, ...]:
    """A stored entry as LogVerifier.add_rows takes it: the members in ROW_FIELDS order, leaf hash."""
    return (*(fields[name] for name in ROW_FIELDS), leaf)


def _found(verifier: LogVerifier) -> list[str]:
    return [p.message for p in verifier.finish()]


def problems(rows: list[Row], notes: list[tuple[int, bytes]] | None = None) -> list[str]:
    """What the verifier reports, checked to be the same through ``add``, through ``add_rows``
    and through the general path alone (``_add_checked``: every entry rebuilt as a LogEntry,
    as before the fast path), so the fast path changes no finding."""
    verifiers = [LogVerifier(origin=ORIGIN, public_key=LOG_KEY.verify_key) for _ in range(3)]
    for verifier in verifiers:
        for size, note in notes or []:
            verifier.add_checkpoint(size, note)
    by_add, by_rows, general = verifiers
    for fields, leaf in rows:
        by_add.add(fields, leaf)
        general._add_checked(fields, leaf)
    by_rows.add_rows([as_row(fields, leaf) for fields, leaf in rows])
    found = _found(general)
    assert _found(by_add) == found and _found(by_rows) == found
    assert by_rows.compact() == general.compact() and by_rows.last_leaf_hash == general.last_leaf_hash
    return found


def checkpoint_of(rows: list[Row], size: int, key: nacl.signing.SigningKey = LOG_KEY) -> tuple[int, bytes]:
    root = merkle_root([bytes.fromhex(leaf) for _, leaf in rows[:size]])
    return size, sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root=root), signing_key=key)


LOG = stored(build_log(8))


def _changed(i: int, **change: Any) -> list[Row]:
    rows = list(LOG)
    rows[i] = ({**rows[i][0], **change}, rows[i][1])
    return rows


def _smart_swap(rows: list[Row], i: int, j: int) -> list[Row]:
    out = list(rows)
    out[i], out[j] = rehashed({**rows[j][0], "index": i}), rehashed({**rows[i][0], "index": j})
    return out


def _forged(index: int, prev: str) -> Row:
    return rehashed({**LOG[0][0], "index": index, "prev": prev, "peer": "forged-node"})


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (LOG, []),
        ([], []),
        (_changed(3, peer="ukr-npu"), ["entry 3: contents changed (leaf hash differs)"]),
        (
            _changed(3, detail='{"n": 3}'),
            ["entry 3: contents changed (stored fields are not an entry: detail is not canonical JSON)"],
        ),
        (
            _changed(3, detail="{"),
            ["entry 3: contents changed (stored fields are not an entry: detail is not JSON)"],
        ),
        (
            _changed(3, direction="sideways"),
            [
                'entry 3: contents changed (stored fields are not an entry: entry.direction: expected "in", "out" or "")'
            ],
        ),
        (
            [*LOG[:3], rehashed({**LOG[3][0], "size": 1}), *LOG[4:]],
            ["entry 4: inserted or reordered (prev does not match entry 3)"],
        ),
        (
            [*LOG[:3], (LOG[3][0], "ab" * 32), *LOG[4:]],
            [
                "entry 3: contents changed (leaf hash differs)",
                "entry 4: inserted or reordered (prev does not match entry 3)",
            ],
        ),
        (LOG[:3] + LOG[4:], ["entry 3: missing (index jumps from 2 to 4)"]),
        (LOG[:3] + LOG[5:], ["entries 3 to 4: missing (index jumps from 2 to 5)"]),
        (LOG[1:], ["entry 0: missing (log starts at index 1)"]),
        (
            LOG[:3]
            + [_forged(3, LOG[2][1])]
            + [rehashed({**r[0], "index": r[0]["index"] + 1}) for r in LOG[3:]],
            [f"entry {i}: inserted or reordered (prev does not match entry {i - 1})" for i in range(4, 9)],
        ),
        ([*LOG, _forged(8, "cd" * 32)], ["entry 8: inserted or reordered (prev does not match entry 7)"]),
        (
            [_forged(0, "cd" * 32)],
            ["entry 0: inserted or reordered (prev does not match 64 zeros for a first entry)"],
        ),
        (
            _smart_swap(LOG, 3, 5),
            [f"entry {i}: inserted or reordered (prev does not match entry {i - 1})" for i in (3, 4, 5, 6)],
        ),
        ([*LOG[:4], LOG[3], *LOG[4:]], ["entry 3: duplicate or out of order (after entry 3)"]),
    ],
    ids=[
        "intact",
        "empty",
        "changed",
        "detail-reformatted",
        "detail-garbled",
        "invalid-field",
        "changed-rehashed",
        "leaf-hash-changed",
        "deleted",
        "deleted-two",
        "deleted-first",
        "inserted",
        "appended-forged",
        "forged-first",
        "reordered",
        "duplicate",
    ],
)
def test_chain_tamper_table(rows: list[Row], expected: list[str]) -> None:
    assert problems(rows) == expected


def test_checkpoints_are_checked_against_the_entries() -> None:
    good = [checkpoint_of(LOG, 0), checkpoint_of(LOG, 5), checkpoint_of(LOG, 8)]
    assert problems(LOG, good) == []
    wrong_root = (5, sign_checkpoint(Checkpoint(origin=ORIGIN, size=5, root=sha(b"x")), signing_key=LOG_KEY))
    assert problems(LOG, [wrong_root]) == ["checkpoint at size 5: root does not match entries"]
    assert problems(_changed(3, peer="ukr-npu"), good) == [
        "entry 3: contents changed (leaf hash differs)",
        "checkpoint at size 5: root does not match entries",
        "checkpoint at size 8: root does not match entries",
    ]
    rewritten = [*LOG[:3], rehashed({**LOG[3][0], "size": 1})]
    for fields, _ in LOG[4:]:  # the whole tail re-chained: the chain holds, only the checkpoint sees it
        rewritten.append(rehashed({**fields, "prev": rewritten[-1][1]}))
    assert problems(rewritten, good) == [
        "checkpoint at size 5: root does not match entries",
        "checkpoint at size 8: root does not match entries",
    ]
    assert problems(LOG[:7], good) == [
        "checkpoint at size 8: root does not match entries (the log holds only 7)"
    ]


def test_checkpoint_notes_are_checked() -> None:
    _size, note = checkpoint_of(LOG, 8)
    flipped = note[:-10] + (b"A" if note[-10:-9] != b"A" else b"B") + note[-9:]
    assert problems(LOG, [(8, flipped)]) == ["checkpoint at size 8: bad signature"]
    _, by_other_key = checkpoint_of(LOG, 8, OTHER_KEY)
    assert problems(LOG, [(8, by_other_key)]) == [f"checkpoint at size 8: bad signature ({UNSIGNED})"]
    assert problems(LOG, [(7, note)]) == ["checkpoint at size 7: its note is for size 8"]
    assert problems(LOG, [(8, note.replace(b"\n\n", b"\n"))]) == [
        "checkpoint at size 8: malformed note (note has no blank line before its signatures)"
    ]


def test_problems_are_capped_but_counted() -> None:
    verifier = LogVerifier(origin=ORIGIN, public_key=LOG_KEY.verify_key, max_problems=2)
    for fields, _ in LOG:
        verifier.add(fields, "ab" * 32)
    verifier.finish()
    assert len(verifier.problems) == 2
    assert verifier.problem_count == 8 + 7  # every leaf hash differs, every prev then differs


# --- the fast path: stored rows checked without building entries -----------------------------------

hex_text = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
full_entries = st.builds(
    LogEntry,
    index=st.integers(0, 2**53 - 1),
    time=st.integers(0, 2**53 - 1),
    kind=names,
    outcome=names,
    prev=hex_text,
    direction=st.sampled_from(["in", "out", ""]),
    peer=st.one_of(st.just(""), st.from_regex(r"[a-z0-9][a-z0-9-]{1,62}", fullmatch=True)),
    message_id=st.one_of(st.just(""), st.from_regex(r"[0-9a-f]{32}", fullmatch=True)),
    message_type=st.one_of(st.just(""), st.from_regex(TYPE_RE, fullmatch=True)),
    envelope_hash=st.one_of(st.just(""), hex_text),
    size=st.integers(0, 2**53 - 1),
    code=st.one_of(st.just(""), names),
    detail=st.dictionaries(  # any Unicode, quotes and controls included
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=40)),
        max_size=5,
    ),
)
# Values a tampered or damaged row may hold in any column: wrong types, near misses of each
# member's rule, and detail texts that parse but are not canonical, or do not parse.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.integers(-5, 2**54),
    st.binary(max_size=4),
    st.text(max_size=70),
    st.sampled_from(
        [
            *("", "in", "out", "nan", "Envelope", "envelope ", 'a"b', "a\\b", "é", "x" * 65, "ab" * 32),
            *("AB" * 32, "ab" * 31, "0" * 64 + "\n", "ab" * 16, "-1", "1", "01", "1.5", "1e3"),
            *("{}", " {}", "{ }", '{"n": 1}', '{"b":1,"a":2}', '{"a":1.0}', '{"a":NaN}', "[]", "{", "null"),
            *('{"A":1}', '{"a":{"b":1}}', '{"a":"\\ud800"}', '{"a":"\\u00e9"}', '{"a":"é"}', '{"a":1}'),
            *('{"a":1,"a":1}', '{"a":' + '"' + "x" * 300 + '"}', "{}" + " " * 2000),
            *('in","envelope_hash":"', 'x","kind":"envelope', '{},"direction":"in"'),  # injections
        ]
    ),
)


def stored_row(entry: LogEntry) -> tuple[Any, ...]:
    return as_row({**entry.to_dict(), "detail": entry.detail_json.decode()}, "")[:13]


def general_path_bytes(row: tuple[Any, ...]) -> bytes | None:
    """What the general path makes of a stored row (verify.py before the fast path): ``detail``
    parsed with json.loads, a LogEntry built, and ``detail`` required to be canonical."""
    fields = dict(zip(ROW_FIELDS, row, strict=True))
    text = fields["detail"]
    if not isinstance(text, str):
        return None
    try:
        entry = LogEntry.from_dict({**fields, "detail": json.loads(text)})
        canonical = entry.detail_json == text.encode()
    except (ValueError, RecursionError, MalformedError):
        return None
    return entry.canonical_bytes() if canonical else None


@settings(max_examples=400, deadline=None)
@given(full_entries)
def test_row_bytes_are_the_entrys_canonical_bytes(entry: LogEntry) -> None:
    data = row_canonical_bytes(stored_row(entry))
    assert data == entry.canonical_bytes() == canonical_json(entry.to_dict())
    assert row_canonical_bytes((*stored_row(entry), "leaf hash and anything after it")) == data


@settings(max_examples=600, deadline=None)
@given(full_entries, st.lists(st.tuples(st.sampled_from(ROW_FIELDS), junk), min_size=1, max_size=2))
def test_row_bytes_refuse_exactly_what_an_entry_refuses(
    entry: LogEntry, changes: list[tuple[str, Any]]
) -> None:
    fields = dict(zip(ROW_FIELDS, stored_row(entry), strict=True))
    fields.update(changes)
    row = tuple(fields[name] for name in ROW_FIELDS)
    assert row_canonical_bytes(row) == general_path_bytes(row)


def test_row_bytes_of_the_spec_vectors() -> None:
    assert row_canonical_bytes(stored_row(ENTRY0)) == ENTRY0_BYTES
    assert row_canonical_bytes(stored_row(ENTRY1)) == ENTRY1_BYTES
    assert row_canonical_bytes((True, *stored_row(ENTRY1)[1:])) is None  # a bool is not an index
    assert row_canonical_bytes((*stored_row(ENTRY1)[:12], ENTRY0_LEAF.upper())) is None


TAMPERS = st.sampled_from(["change", "rehash", "leaf", "delete", "duplicate", "swap", "rechain"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TAMPERS, st.integers(0, 29), st.sampled_from(ROW_FIELDS), junk), max_size=3))
def test_fast_path_findings_equal_the_general_paths(tampers: list[tuple[str, int, str, Any]]) -> None:
    rows = stored(build_log(30))
    for how, at, name, value in tampers:
        at = min(at, len(rows) - 1)
        if how == "change":
            rows[at] = ({**rows[at][0], name: value}, rows[at][1])
        elif how == "leaf":
            rows[at] = (rows[at][0], value if isinstance(value, str) else "ab" * 32)
        elif how == "delete":
            del rows[at]
        elif how == "duplicate":
            rows.insert(at, rows[at])
        elif how == "swap":
            rows[at], rows[-1] = rows[-1], rows[at]
        elif how in ("rehash", "rechain"):  # a tamperer who rewrites hashes (of a valid entry)
            changed = {"kind": "receipt", "peer": "ukr-npu", "size": 1, "detail": '{"n":-1}'}
            change = {"prev": rows[at - 1][1]} if how == "rechain" else {name: changed.get(name, value)}
            with contextlib.suppress(ValueError, TypeError, MalformedError):
                rows[at] = rehashed({**rows[at][0], **change})
    notes = [checkpoint_of(stored(build_log(30)), size) for size in (0, 7, 16, 30)]
    problems(rows, notes)  # asserts that the three paths agree


def test_a_changed_entry_in_a_large_log_is_found() -> None:
    rows = stored(build_log(20_000))
    notes = [checkpoint_of(rows, 10_000), checkpoint_of(rows, 20_000)]
    assert problems(rows, notes) == []
    changed = list(rows)
    changed[12_345] = ({**rows[12_345][0], "size": 99}, rows[12_345][1])
    assert problems(changed, notes) == [
        "entry 12345: contents changed (leaf hash differs)",
        "checkpoint at size 20000: root does not match entries",
    ]
    changed[12_345] = rehashed(changed[12_345][0])  # the hash rewritten too: the chain breaks
    assert problems(changed, notes) == [
        "entry 12346: inserted or reordered (prev does not match entry 12345)",
        "checkpoint at size 20000: root does not match entries",
    ]
    changed[5] = ({**rows[5][0], "detail": '{"n": 5}'}, rows[5][1])
    assert problems(changed, notes)[0] == (
        "entry 5: contents changed (stored fields are not an entry: detail is not canonical JSON)"
    )
