"""C2SP witness cosignatures in protocol/translog/cosign.py.

The signed message and the line are rebuilt here by hand from https://c2sp.org/tlog-cosignature
(hashlib and PyNaCl only); the payload layout is checked against the example in that
specification and a vector of transparency-dev/formats; the golden lines (fixed keys) are those
printed in protocol/SPEC.md. Every refusal asserts its exact code and message.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import MalformedError
from protocol.translog import (
    Checkpoint,
    note_key_id,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from protocol.translog.cosign import (
    COSIGNATURE_TYPE,
    MAX_TIMESTAMP,
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

ORIGIN = "palermo/nld-police/exchange-log"
LOG_KEY = nacl.signing.SigningKey(bytes(range(32)))  # the log key of SPEC section 7.6
W1 = nacl.signing.SigningKey(bytes(range(32, 64)))
W2 = nacl.signing.SigningKey(bytes(range(64, 96)))
NAME1, NAME2 = "palermo-witness/rou-anitp", "palermo-witness/ukr-npu"
T1, T2 = 1767225660, 1767225661

# The two-entry checkpoint of SPEC section 7.6.
CHECKPOINT = Checkpoint(
    origin=ORIGIN,
    size=2,
    root=bytes.fromhex("e4cc9038465ef7f105047c7f5f17525597274384c85fff4000d4e4e08bb7a649"),
)
NOTE = sign_checkpoint(CHECKPOINT, signing_key=LOG_KEY)
TEXT = CHECKPOINT.body()
LINE1 = cosign(NOTE, name=NAME1, signing_key=W1, timestamp=T1)
LINE2 = cosign(NOTE, name=NAME2, signing_key=W2, timestamp=T2)
COSIGNED = add_signatures(NOTE, [LINE1, LINE2])
KEY_ID1 = hashlib.sha256(NAME1.encode() + b"\n\x04" + bytes(W1.verify_key)).digest()[:4]


def line(name: str, payload: bytes) -> bytes:
    return f"— {name} ".encode() + base64.b64encode(payload) + b"\n"


def by_hand(text: bytes, key: nacl.signing.SigningKey, name: str, timestamp: int) -> bytes:
    """A cosignature line built from the C2SP text alone."""
    key_id = hashlib.sha256(name.encode() + b"\n" + b"\x04" + bytes(key.verify_key)).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + text
    return line(name, key_id + timestamp.to_bytes(8, "big") + key.sign(message).signature)


# --- formats -------------------------------------------------------------------------------------


def test_names_and_key_ids() -> None:
    assert COSIGNATURE_TYPE == 0x04
    assert witness_name("rou-anitp") == NAME1
    assert cosignature_key_id(NAME1, bytes(W1.verify_key)) == KEY_ID1
    assert KEY_ID1.hex() == "c2a73730"
    assert cosignature_key_id(NAME1, bytes(W1.verify_key)) != note_key_id(NAME1, bytes(W1.verify_key))


@pytest.mark.parametrize("node_id", ["", "Has Space", "a+b", "x" * 300])
def test_witness_name_refuses_a_bad_node_id(node_id: str) -> None:
    with pytest.raises(MalformedError):
        witness_name(node_id)


def test_the_signed_message_and_the_line_follow_c2sp() -> None:
    assert cosignature_message(TEXT, T1) == (
        b"cosignature/v1\ntime 1767225660\npalermo/nld-police/exchange-log\n2\n"
        b"5MyQOEZe9/EFBHx/XxdSVZcnQ4TIX/9AANTk4Iu3pkk=\n"
    )
    assert cosignature_message(TEXT, 0).startswith(b"cosignature/v1\ntime 0\n")
    assert by_hand(TEXT, W1, NAME1, T1) == LINE1
    assert by_hand(TEXT, W2, NAME2, T2) == LINE2


# Golden vector, printed in protocol/SPEC.md: the checkpoint of section 7.6 cosigned by the
# witness keys with seeds 0x20..0x3f and 0x40..0x5f.
GOLDEN = (
    "palermo/nld-police/exchange-log\n"
    "2\n"
    "5MyQOEZe9/EFBHx/XxdSVZcnQ4TIX/9AANTk4Iu3pkk=\n"
    "\n"
    "— palermo/nld-police/exchange-log rcttaGI/CDj0YsbPycJYzjYf+B5NjxRlBpOJlQjdeVJ4R8XqoLBVVO5BMBMsqzEN/Bj6vXfhxrZsEGY7pOjNKZxK8wg=\n"
    "— palermo-witness/rou-anitp wqc3MAAAAABpVbk8THh4WRav5eZC7TxXqjNaLpSdXJSGC9uoHHW0j09mIcHgeHQEZIa/ZWUpJpBiYm+MezAXlqEoFWgrP7CLHefPCA==\n"
    "— palermo-witness/ukr-npu 0W2RKgAAAABpVbk9uic8gWIdU24rUaSpBf937xFyzIJmQc5o4/rfDR7tFeKhQDSM+QXFFsLI8E+20NWbKACpOwl3itufgQYeQCOTDw==\n"
).encode()


def test_golden_cosigned_checkpoint() -> None:
    assert COSIGNED == GOLDEN
    assert base64.b64encode(bytes(W1.verify_key)) == b"Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc="
    assert base64.b64encode(bytes(W2.verify_key)) == b"JUO5L/EJVRFHatyDadtt3JM2ZaEZeN2hQE7hBmypVZ0="


# The example of https://c2sp.org/tlog-cosignature: its witness line carries the timestamp of the
# signed message shown there ("time 1679315147"); the log's own line is 4 + 64 bytes, not listed.
C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
).encode()
# transparency-dev/formats note/note_cosigv1_test.go, TestCosignatureTimestamp: 1727964367.
FORMATS_SIG = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)


def test_published_payload_layouts() -> None:
    [listed] = cosignatures(C2SP_EXAMPLE)
    assert (listed.name, listed.key_id.hex(), listed.timestamp) == (
        "witness.example.com/w1",
        "8d66cf3f",
        1679315147,
    )
    [other] = cosignatures(C2SP_EXAMPLE + f"— w2 {FORMATS_SIG}\n".encode())[1:]
    assert (other.key_id.hex(), other.timestamp) == ("646846b9", 1727964367)


# --- verifying -----------------------------------------------------------------------------------


def test_round_trip_and_a_note_with_three_signatures() -> None:
    assert verify_cosignature(COSIGNED, name=NAME1, public_key=W1.verify_key) == Cosignature(
        name=NAME1, key_id=KEY_ID1, timestamp=T1, signature=base64.b64decode(LINE1.split(b" ")[2])[12:]
    )
    assert verify_cosignature(COSIGNED, name=NAME2, public_key=bytes(W2.verify_key)).timestamp == T2
    assert verify_checkpoint(COSIGNED, origin=ORIGIN, public_key=LOG_KEY.verify_key) == CHECKPOINT
    assert parse_note(COSIGNED)[0] == TEXT
    assert [(c.name, c.timestamp) for c in cosignatures(COSIGNED)] == [(NAME1, T1), (NAME2, T2)]
    assert cosignatures(NOTE) == []


def _payload(raw_line: bytes) -> bytes:
    return base64.b64decode(raw_line.split(b" ")[2])


PAYLOAD1 = _payload(LINE1)
NO_COSIGNATURE = f"note carries no cosignature by {NAME1} (key id {KEY_ID1.hex()})"
DOES_NOT_VERIFY = f"the cosignature by {NAME1} does not verify"
CHANGED_BODY = NOTE.replace(b"\n2\n", b"\n3\n")

REFUSALS: list[tuple[str, bytes, str, Any, str]] = [
    ("log-signature-only", NOTE, NAME1, W1.verify_key, NO_COSIGNATURE),
    (
        "wrong-key",
        COSIGNED,
        NAME1,
        W2.verify_key,
        f"note carries no cosignature by {NAME1} "
        f"(key id {cosignature_key_id(NAME1, bytes(W2.verify_key)).hex()})",
    ),
    (
        "wrong-name",
        COSIGNED,
        "palermo-witness/nld-kmar",
        W1.verify_key,
        "note carries no cosignature by palermo-witness/nld-kmar (key id "
        + cosignature_key_id("palermo-witness/nld-kmar", bytes(W1.verify_key)).hex()
        + ")",
    ),
    (
        "wrong-key-claiming-the-id",
        NOTE
        + line(NAME1, KEY_ID1 + T1.to_bytes(8, "big") + W2.sign(cosignature_message(TEXT, T1)).signature),
        NAME1,
        W1.verify_key,
        DOES_NOT_VERIFY,
    ),
    (
        "changed-timestamp",
        NOTE + line(NAME1, KEY_ID1 + (T1 + 1).to_bytes(8, "big") + PAYLOAD1[12:]),
        NAME1,
        W1.verify_key,
        DOES_NOT_VERIFY,
    ),
    ("changed-size", add_signatures(CHANGED_BODY, [LINE1]), NAME1, W1.verify_key, DOES_NOT_VERIFY),
    (
        "changed-root",
        add_signatures(
            sign_checkpoint(Checkpoint(origin=ORIGIN, size=2, root=bytes(32)), signing_key=LOG_KEY), [LINE1]
        ),
        NAME1,
        W1.verify_key,
        DOES_NOT_VERIFY,
    ),
    (
        "extension-line",
        NOTE.replace(b"=\n\n", b"=\nextra\n\n") + LINE1,
        NAME1,
        W1.verify_key,
        DOES_NOT_VERIFY,
    ),
    (
        "flipped-signature",
        NOTE + line(NAME1, PAYLOAD1[:-1] + bytes([PAYLOAD1[-1] ^ 1])),
        NAME1,
        W1.verify_key,
        DOES_NOT_VERIFY,
    ),
    (
        "truncated",
        NOTE + line(NAME1, PAYLOAD1[:-1]),
        NAME1,
        W1.verify_key,
        f"the cosignature by {NAME1} is 71 bytes, not 8 + 64",
    ),
    (
        "plain-ed25519-line",  # 4 + 64 bytes under the cosignature key id: not a timestamped signature
        NOTE + line(NAME1, KEY_ID1 + W1.sign(TEXT).signature),
        NAME1,
        W1.verify_key,
        f"the cosignature by {NAME1} is 64 bytes, not 8 + 64",
    ),
    (
        "type-0x01-by-the-witness-key",  # another key id (type byte 0x01): ignored
        add_signatures(NOTE, [sign_note(TEXT, name=NAME1, signing_key=W1).split(b"\n\n")[1]]),
        NAME1,
        W1.verify_key,
        NO_COSIGNATURE,
    ),
    (
        "timestamp-above-2^63-1",
        NOTE + line(NAME1, KEY_ID1 + (2**63).to_bytes(8, "big") + PAYLOAD1[12:]),
        NAME1,
        W1.verify_key,
        f"the cosignature by {NAME1} has a timestamp above 2^63 - 1",
    ),
    (
        "two-lines-by-one-key",
        COSIGNED + cosign(NOTE, name=NAME1, signing_key=W1, timestamp=T1 + 60),
        NAME1,
        W1.verify_key,
        f"note carries 2 signatures by {NAME1} (key id {KEY_ID1.hex()})",
    ),
    ("not-a-note", TEXT, NAME1, W1.verify_key, "note has no blank line before its signatures"),
    ("not-utf8", b"\xff" + COSIGNED, NAME1, W1.verify_key, "note is not UTF-8"),
]


@pytest.mark.parametrize(
    ("note", "name", "key", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_cosignature_refusals(note: bytes, name: str, key: Any, message: str) -> None:
    with pytest.raises(CosignatureError) as info:
        verify_cosignature(note, name=name, public_key=key)
    assert (info.value.code, info.value.message) == ("bad_cosignature", message)
    assert isinstance(info.value, MalformedError)


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"name": NAME1, "public_key": bytes(31)}, "malformed_key", "witness public key: expected 32 bytes"),
        ({"name": NAME1, "public_key": "key"}, "malformed_key", "witness public key: expected 32 bytes"),
        (
            {"name": "has space", "public_key": W1.verify_key},
            "malformed_note",
            "note key name must be non-empty, without spaces or '+'",
        ),
    ],
)
def test_bad_verifier_arguments(kwargs: dict[str, Any], code: str, message: str) -> None:
    with pytest.raises(MalformedError) as info:
        verify_cosignature(COSIGNED, **kwargs)
    assert (info.value.code, info.value.message) == (code, message)


# --- cosigning -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "name", "timestamp", "code", "message"),
    [
        (TEXT, NAME1, T1, "malformed_note", "note has no blank line before its signatures"),
        (
            sign_note(TEXT + b"extension\n", name=ORIGIN, signing_key=LOG_KEY),
            NAME1,
            T1,
            "malformed_checkpoint",
            "checkpoint has extension lines (Palermo uses none)",
        ),
        (
            NOTE,
            NAME1,
            -1,
            "malformed",
            f"cosignature timestamp: expected an integer from 0 to {MAX_TIMESTAMP}",
        ),
        (
            NOTE,
            NAME1,
            2**63,
            "malformed",
            f"cosignature timestamp: expected an integer from 0 to {MAX_TIMESTAMP}",
        ),
        (
            NOTE,
            NAME1,
            True,
            "malformed",
            f"cosignature timestamp: expected an integer from 0 to {MAX_TIMESTAMP}",
        ),
        (NOTE, "a+b", T1, "malformed_note", "note key name must be non-empty, without spaces or '+'"),
    ],
)
def test_cosign_refusals(note: bytes, name: str, timestamp: Any, code: str, message: str) -> None:
    with pytest.raises(MalformedError) as info:
        cosign(note, name=name, signing_key=W1, timestamp=timestamp)
    assert (info.value.code, info.value.message) == (code, message)


def test_a_cosigned_note_can_be_cosigned_again() -> None:
    # A witness given the note with other cosignatures signs the same text.
    assert cosign(COSIGNED, name=NAME1, signing_key=W1, timestamp=T1) == LINE1


# --- adding lines --------------------------------------------------------------------------------


def test_add_signatures_appends_deduplicates_and_replaces() -> None:
    assert add_signatures(NOTE, []) == NOTE
    assert add_signatures(NOTE, [LINE1, LINE1]) == NOTE + LINE1
    assert add_signatures(COSIGNED, [LINE2, LINE1]) == COSIGNED
    newer = cosign(NOTE, name=NAME1, signing_key=W1, timestamp=T1 + 3600)
    replaced = add_signatures(COSIGNED, [newer])
    assert replaced == NOTE + newer + LINE2  # in place: one line per key name and key id
    assert verify_cosignature(replaced, name=NAME1, public_key=W1.verify_key).timestamp == T1 + 3600
    assert verify_checkpoint(replaced, origin=ORIGIN, public_key=LOG_KEY.verify_key) == CHECKPOINT


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([LINE1[:-1]], "signature line: expected one line ending in a newline"),
        ([LINE1 + LINE2], "signature line: expected one line ending in a newline"),
        ([LINE1.decode()], "signature line: expected one line ending in a newline"),
        ([b"not a signature\n"], "note signature line is not '— <name> <base64>'"),
        ([b"\xe2\x80\x94 w \xff\n"], "signature line is not UTF-8"),
        ([line("w", b"abcd")], "note signature is shorter than a key id and a signature"),
        (
            [line(f"w{i}", bytes(76)) for i in range(64)],
            "note has more than 64 signatures",
        ),
    ],
)
def test_add_signatures_refusals(lines: list[Any], message: str) -> None:
    with pytest.raises(MalformedError) as info:
        add_signatures(NOTE, lines)
    assert (info.value.code, info.value.message) == ("malformed_note", message)


def test_listing_skips_other_shapes() -> None:
    odd = add_signatures(
        COSIGNED,
        [line("w-big", KEY_ID1 + (2**63).to_bytes(8, "big") + bytes(64)), line("w-short", bytes(40))],
    )
    assert [c.name for c in cosignatures(odd)] == [NAME1, NAME2]
    with pytest.raises(MalformedError) as info:
        cosignatures(TEXT)
    assert info.value.code == "malformed_note"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key_id": b"abc"}, "cosignature key id: expected 4 bytes"),
        ({"signature": bytes(63)}, "cosignature signature: expected 64 bytes"),
        ({"timestamp": -1}, f"cosignature timestamp: expected an integer from 0 to {MAX_TIMESTAMP}"),
        ({"name": ""}, "note key name must be non-empty, without spaces or '+'"),
    ],
)
def test_cosignature_fields_are_checked(fields: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"name": NAME1, "key_id": KEY_ID1, "timestamp": T1, "signature": bytes(64)}
    with pytest.raises(MalformedError) as info:
        Cosignature(**{**base, **fields})
    assert info.value.message == message


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, MAX_TIMESTAMP),
    st.integers(0, 2**63 - 1),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(timestamp: int, size: int, root: bytes, seed: bytes) -> None:
    witness = nacl.signing.SigningKey(seed)
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root=root), signing_key=LOG_KEY)
    cosigned = add_signatures(note, [cosign(note, name=NAME2, signing_key=witness, timestamp=timestamp)])
    found = verify_cosignature(cosigned, name=NAME2, public_key=bytes(witness.verify_key))
    assert found.timestamp == timestamp and cosignatures(cosigned) == [found]
    assert verify_checkpoint(cosigned, origin=ORIGIN, public_key=LOG_KEY.verify_key).size == size
