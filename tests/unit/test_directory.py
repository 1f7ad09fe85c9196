"""The federation directory (protocol/directory.py): parsing, signatures, TUF-style updates."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.directory import (
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    Signature,
    SignedDirectory,
    WitnessPolicy,
    assess_update,
    check_not_expired,
    sign_directory,
    tally_signatures,
    verify_initial,
    verify_update,
)
from protocol.errors import (
    ExpiredError,
    InvalidRequestError,
    MalformedError,
    ProtocolError,
    RollbackError,
    VerificationError,
)

NOW = 1_800_000_000
GOV = [nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(6)]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def keyid(key: nacl.signing.SigningKey) -> str:
    return hashlib.sha256(bytes(key.verify_key)).hexdigest()


def member(node_id: str, seed: int, roles: tuple[str, ...] = ("analyst", "data-owner")) -> Member:
    return Member(
        node_id=node_id,
        country=node_id[:3].upper(),
        url=f"https://{node_id}.example.org/palermo",
        signing_key=bytes(nacl.signing.SigningKey(bytes([seed]) * 32).verify_key),
        encryption_key=bytes([seed + 100]) * 32,
        log_key=bytes([seed + 200]) * 32,
        roles=roles,
    )


MEMBERS = (member("nld-fp", 40), member("rou-fp", 41, ("witness",)), member("ukr-fp", 42))


def make(
    *,
    version: int = 1,
    keys: list[nacl.signing.SigningKey] | None = None,
    threshold: int = 2,
    expires: int = NOW + 86400,
    federation: str = "europe",
) -> Directory:
    keys = GOV[:3] if keys is None else keys
    return Directory(
        federation=federation,
        version=version,
        expires=expires,
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(bytes(k.verify_key)) for k in keys), threshold=threshold
        ),
        members=MEMBERS,
    )


def signed_by(directory: Directory, *keys: nacl.signing.SigningKey) -> SignedDirectory:
    document = SignedDirectory(signed=directory)
    for key in keys:
        document = sign_directory(document, key)
    return document


def good_dict() -> dict[str, Any]:
    return signed_by(make(), GOV[0], GOV[1]).to_dict()


def code_of(action: Callable[[], Any]) -> tuple[type[ProtocolError], str]:
    with pytest.raises(ProtocolError) as info:
        action()
    return type(info.value), info.value.code


# ---- parsing: a table of bad documents, each with its exact error --------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = d
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        target[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = d
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[last]

    return change


def _first_key(d: dict[str, Any]) -> dict[str, Any]:
    keys: dict[str, dict[str, Any]] = d["signed"]["governance"]["keys"]
    return keys[sorted(keys)[0]]


def _swap_members(d: dict[str, Any]) -> None:
    d["signed"]["members"].reverse()


def _duplicate_member(d: dict[str, Any]) -> None:
    d["signed"]["members"][1]["node_id"] = "nld-fp"


def _shared_key(d: dict[str, Any]) -> None:
    d["signed"]["members"][1]["log_key"] = d["signed"]["members"][0]["signing_key"]


def _keyid_mismatch(d: dict[str, Any]) -> None:
    keys = d["signed"]["governance"]["keys"]
    first = sorted(keys)[0]
    keys[first]["public"] = b64(bytes(GOV[5].verify_key))


def _uppercase_keyid(d: dict[str, Any]) -> None:
    keys = d["signed"]["governance"]["keys"]
    first = sorted(keys)[0]
    keys[first.upper()] = keys.pop(first)


M = "directory_malformed"
BAD_DOCUMENTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown field, top level", _set("extra", 1), M),
    ("unknown field, signed", _set("signed.created", NOW), M),
    ("unknown field, governance", _set("signed.governance.name", "x"), M),
    ("unknown field, governance key", lambda d: _first_key(d).update(comment="x"), M),
    ("unknown field, member", _set("signed.members.0.email", "a@b.c"), M),
    ("unknown field, signature", _set("signatures.0.method", "ed25519"), M),
    ("missing field, signed", _delete("signed.expires"), M),
    ("missing field, member", _delete("signed.members.1.roles"), M),
    ("missing field, governance", _delete("signed.governance.threshold"), M),
    ("missing field, signature", _delete("signatures.0.sig"), M),
    ("missing signatures list", _delete("signatures"), M),
    ("bool as int, version", _set("signed.version", True), M),
    ("bool as int, threshold", _set("signed.governance.threshold", True), M),
    ("string as int, expires", _set("signed.expires", "1800000000"), M),
    ("version zero", _set("signed.version", 0), M),
    ("negative expiry", _set("signed.expires", -1), M),
    ("version above 2**53-1", _set("signed.version", 2**53), M),
    ("members not a list", _set("signed.members", {}), M),
    ("signatures not a list", _set("signatures", {}), M),
    ("keys not an object", _set("signed.governance.keys", []), M),
    ("bad base64, governance key", lambda d: _first_key(d).update(public="not base64!"), M),
    ("short governance key", lambda d: _first_key(d).update(public=b64(b"k" * 31)), M),
    ("bad base64, member key", _set("signed.members.0.encryption_key", "%%%"), M),
    ("long member key", _set("signed.members.0.signing_key", b64(b"k" * 33)), M),
    ("non-canonical base64", _set("signed.members.0.log_key", b64(b"\xcb" * 32)[:-2] + "z="), M),
    ("short signature", _set("signatures.0.sig", b64(b"s" * 63)), M),
    (
        "uppercase signature keyid",
        lambda d: d["signatures"][0].update(keyid=d["signatures"][0]["keyid"].upper()),
        M,
    ),
    ("uppercase governance keyid", _uppercase_keyid, M),
    ("node id with upper case", _set("signed.members.0.node_id", "NLD-fp"), M),
    ("country not alpha-3", _set("signed.members.0.country", "NL"), M),
    ("url not http(s)", _set("signed.members.0.url", "ftp://nld.example.org"), M),
    ("url with credentials", _set("signed.members.0.url", "https://u:p@nld.example.org"), M),
    ("url with a newline", _set("signed.members.0.url", "https://nld.example.org\n"), M),
    ("unknown role", _set("signed.members.0.roles", ["analyst", "owner"]), M),
    ("no roles", _set("signed.members.0.roles", []), M),
    ("federation name", _set("signed.federation", "Europe Wide"), M),
    ("unsorted roles", _set("signed.members.0.roles", ["data-owner", "analyst"]), "directory_unsorted"),
    ("repeated role", _set("signed.members.0.roles", ["analyst", "analyst"]), "directory_unsorted"),
    ("unsorted members", _swap_members, "directory_unsorted"),
    ("duplicate member ids", _duplicate_member, "directory_duplicate_member"),
    ("one key for two members", _shared_key, "directory_duplicate_key"),
    ("key id not the key's hash", _keyid_mismatch, "directory_keyid_mismatch"),
    ("threshold 0", _set("signed.governance.threshold", 0), "directory_bad_threshold"),
    ("threshold above key count", _set("signed.governance.threshold", 4), "directory_bad_threshold"),
    ("empty key set", _set("signed.governance.keys", {}), "directory_no_keys"),
    ("wrong _type", _set("signed._type", "tuf-root"), "directory_unsupported"),
    ("spec_version 2", _set("signed.spec_version", 2), "directory_unsupported"),
    ("key scheme", lambda d: _first_key(d).update(scheme="rsa"), "directory_unsupported"),
]


@pytest.mark.parametrize(
    ("change", "code"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_document_is_refused_with_its_code(change: Callable[[dict[str, Any]], None], code: str) -> None:
    d = good_dict()
    change(d)
    data = json.dumps(d).encode()
    assert code_of(lambda: SignedDirectory.from_bytes(data)) == (MalformedError, code)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "directory_malformed"),
        (b'{"signed": {}, "signed": {}, "signatures": []}', "directory_malformed"),
        (b"\xff\xfe", "directory_malformed"),
        (b"[]", "directory_malformed"),
        (b" " * (1024 * 1024 + 1), "directory_too_large"),
    ],
    ids=["not json", "duplicate json key", "not utf-8", "not an object", "too large"],
)
def test_bad_bytes_are_refused(data: bytes, code: str) -> None:
    assert code_of(lambda: SignedDirectory.from_bytes(data)) == (MalformedError, code)


def test_float_is_refused() -> None:
    text = json.dumps(good_dict()).replace('"version": 1,', '"version": 1.0,')
    assert '"version": 1.0' in text
    assert code_of(lambda: SignedDirectory.from_bytes(text.encode())) == (
        MalformedError,
        "directory_malformed",
    )


def test_good_document_parses_and_round_trips() -> None:
    document = SignedDirectory.from_bytes(json.dumps(good_dict(), indent=2).encode())
    assert document.to_dict() == good_dict()
    assert SignedDirectory.from_bytes(document.to_bytes()) == document


def test_building_in_python_validates_too() -> None:
    with pytest.raises(MalformedError) as info:
        GovernanceKeys(keys=(), threshold=1)
    assert info.value.code == "directory_no_keys"
    with pytest.raises(MalformedError) as info:
        make(threshold=0)
    assert info.value.code == "directory_bad_threshold"
    with pytest.raises(MalformedError) as info:
        Directory(federation="e", version=1, expires=NOW, governance=make().governance, members=MEMBERS[::-1])
    assert info.value.code == "directory_unsorted"


def test_canonical_signing_bytes_vector() -> None:
    """The exact bytes governance keys sign (protocol/SPEC.md section 6), written out by hand."""
    gov = bytes(GOV[0].verify_key)
    m = MEMBERS[1]
    directory = Directory(
        federation="europe",
        version=7,
        expires=1_800_000_000,
        governance=GovernanceKeys(keys=(GovernanceKey(gov),), threshold=1),
        members=(m,),
    )
    expected = (
        b"palermo/directory/v1\n"
        b'{"_type":"palermo-directory","expires":1800000000,"federation":"europe","governance":{"keys":{"'
        + hashlib.sha256(gov).hexdigest().encode()
        + b'":{"public":"'
        + b64(gov).encode()
        + b'","scheme":"ed25519"}},"threshold":1},"members":[{"country":"ROU","encryption_key":"'
        + b64(m.encryption_key).encode()
        + b'","log_key":"'
        + b64(m.log_key).encode()
        + b'","node_id":"rou-fp","roles":["witness"],"signing_key":"'
        + b64(m.signing_key).encode()
        + b'","url":"https://rou-fp.example.org/palermo"}],"spec_version":1,"version":7}'
    )
    assert directory.signing_bytes() == expected
    assert directory.digest == hashlib.sha256(expected[len(b"palermo/directory/v1\n") :]).hexdigest()
    assert directory.governance.keyids == (keyid(GOV[0]),)
    signature = signed_by(directory, GOV[0]).signatures[0]
    GOV[0].verify_key.verify(expected, signature.sig)


# ---- initial directories: signatures and expiry ---------------------------------------------


def test_initial_directory_with_threshold_is_trusted() -> None:
    document = signed_by(make(), GOV[0], GOV[2])
    assert verify_initial(document, now=NOW) is document.signed


def test_flipped_byte_in_signed_part_breaks_the_signatures() -> None:
    data = signed_by(make(), GOV[0], GOV[1]).to_bytes()
    tampered = SignedDirectory.from_bytes(data.replace(b'"federation":"europe"', b'"federation":"europf"'))
    assert code_of(lambda: verify_initial(tampered, now=NOW)) == (VerificationError, "directory_threshold")
    tally = tally_signatures(tampered, tampered.signed.governance)
    assert tally.valid == () and set(tally.invalid) == {keyid(GOV[0]), keyid(GOV[1])}


def test_signature_by_the_wrong_key_is_reported_and_not_counted() -> None:
    directory = make()
    forged = Signature(keyid=keyid(GOV[1]), sig=GOV[5].sign(directory.signing_bytes()).signature)
    document = SignedDirectory(
        signed=directory, signatures=(*signed_by(directory, GOV[0]).signatures, forged)
    )
    assert code_of(lambda: verify_initial(document, now=NOW)) == (VerificationError, "directory_threshold")
    tally = tally_signatures(document, directory.governance)
    assert (tally.valid, tally.invalid, tally.missing) == (
        (keyid(GOV[0]),),
        (keyid(GOV[1]),),
        (keyid(GOV[2]),),
    )


def test_signature_by_a_key_outside_the_set_is_ignored() -> None:
    document = signed_by(make(), GOV[0], GOV[5])
    assert code_of(lambda: verify_initial(document, now=NOW)) == (VerificationError, "directory_threshold")
    assert tally_signatures(document, document.signed.governance).unknown == (keyid(GOV[5]),)


def test_duplicate_signature_counts_once() -> None:
    once = signed_by(make(), GOV[0])
    document = SignedDirectory(signed=once.signed, signatures=once.signatures * 3)
    assert code_of(lambda: verify_initial(document, now=NOW)) == (VerificationError, "directory_threshold")
    assert tally_signatures(document, document.signed.governance).valid == (keyid(GOV[0]),)


def test_good_and_bad_signature_by_one_key_count_it_once_as_valid() -> None:
    directory = make()
    bad = Signature(keyid=keyid(GOV[0]), sig=GOV[5].sign(directory.signing_bytes()).signature)
    good = signed_by(directory, GOV[0], GOV[1]).signatures
    for signatures in ((bad, *good), (*good, bad)):
        document = SignedDirectory(signed=directory, signatures=signatures)
        tally = tally_signatures(document, directory.governance)
        assert (tally.valid, tally.invalid) == (tuple(sorted([keyid(GOV[0]), keyid(GOV[1])])), ())
        assert verify_initial(document, now=NOW) is directory


def test_threshold_not_met() -> None:
    document = signed_by(make(threshold=3), GOV[0], GOV[1])
    assert code_of(lambda: verify_initial(document, now=NOW)) == (VerificationError, "directory_threshold")


def test_signing_twice_with_one_key_keeps_one_signature() -> None:
    document = signed_by(make(), GOV[1], GOV[0], GOV[1])
    assert [s.keyid for s in document.signatures] == sorted([keyid(GOV[0]), keyid(GOV[1])])


def test_unsigned_document_is_refused() -> None:
    assert code_of(lambda: verify_initial(signed_by(make()), now=NOW)) == (
        VerificationError,
        "directory_threshold",
    )


def test_expiry_boundary() -> None:
    document = signed_by(make(expires=NOW), GOV[0], GOV[1])
    assert verify_initial(document, now=NOW - 1) is document.signed
    assert code_of(lambda: verify_initial(document, now=NOW)) == (ExpiredError, "directory_expired")
    assert document.signed.is_expired(NOW) and not document.signed.is_expired(NOW - 1)
    assert code_of(lambda: check_not_expired(document.signed, now=NOW)) == (ExpiredError, "directory_expired")


# ---- updates: TUF root rotation ---------------------------------------------------------------

TRUSTED = make(version=3)  # keys 0, 1, 2; threshold 2
ROTATED = make(version=4, keys=[GOV[2], GOV[3], GOV[4]])  # keys 0 and 1 replaced by 3 and 4


def test_update_signed_by_old_and_new_thresholds_is_accepted() -> None:
    document = signed_by(ROTATED, GOV[0], GOV[1], GOV[3], GOV[4])
    assert verify_update(TRUSTED, document, now=NOW) is document.signed


def test_update_key_in_both_sets_counts_for_both() -> None:
    document = signed_by(ROTATED, GOV[0], GOV[2], GOV[3])
    assessment = assess_update(TRUSTED, document, now=NOW)
    assert assessment.accepted
    assert assessment.trusted_keys is not None and len(assessment.trusted_keys.valid) == 2
    assert len(assessment.new_keys.valid) == 2


@pytest.mark.parametrize(
    ("keys", "which"),
    [((GOV[0], GOV[1]), "new"), ((GOV[3], GOV[4]), "trusted")],
    ids=["only old keys", "only new keys"],
)
def test_update_needs_both_thresholds(keys: tuple[nacl.signing.SigningKey, ...], which: str) -> None:
    document = signed_by(ROTATED, *keys)
    assert code_of(lambda: verify_update(TRUSTED, document, now=NOW)) == (
        VerificationError,
        "directory_threshold",
    )
    assert which in str(assess_update(TRUSTED, document, now=NOW).error)


@pytest.mark.parametrize(
    ("version", "code"), [(3, "directory_not_newer"), (2, "directory_rollback")], ids=["equal", "lower"]
)
def test_version_must_go_up(version: int, code: str) -> None:
    document = signed_by(make(version=version), GOV[0], GOV[1], GOV[2])
    assert code_of(lambda: verify_update(TRUSTED, document, now=NOW)) == (RollbackError, code)


def test_update_of_another_federation_is_refused() -> None:
    document = signed_by(make(version=4, federation="asia"), GOV[0], GOV[1])
    kind, code = code_of(lambda: verify_update(TRUSTED, document, now=NOW))
    assert (kind, code) == (VerificationError, "directory_federation_mismatch")


def test_expired_update_is_refused_but_an_expired_trusted_one_can_be_replaced() -> None:
    stale = signed_by(make(version=4, expires=NOW), GOV[0], GOV[1])
    assert code_of(lambda: verify_update(TRUSTED, stale, now=NOW)) == (ExpiredError, "directory_expired")
    expired_trusted = make(version=3, expires=NOW - 10)
    fresh = signed_by(make(version=4), GOV[0], GOV[1])
    assert verify_update(expired_trusted, fresh, now=NOW) is fresh.signed


# ---- the directory object -------------------------------------------------------------------


def test_member_lookup_and_peers() -> None:
    directory = make()
    assert directory.member("rou-fp") == MEMBERS[1]
    assert directory.member("deu-fp") is None
    assert [m.node_id for m in directory.peers_of("nld-fp")] == ["rou-fp", "ukr-fp"]
    assert code_of(lambda: directory.peers_of("deu-fp")) == (InvalidRequestError, "directory_not_member")
    assert MEMBERS[1].has_role("witness") and not MEMBERS[1].has_role("analyst")
    assert bytes(MEMBERS[0].verify_key) == MEMBERS[0].signing_key


def test_error_messages_say_what_was_expected_and_what_came() -> None:
    document = signed_by(make(threshold=3), GOV[0])
    message = str(assess_update(make(version=5), document, now=NOW).error)
    assert "older than the trusted version 5" in message
    with pytest.raises(VerificationError) as info:
        verify_initial(document, now=NOW)
    assert "expected signatures by 3" in info.value.message and "got 1 valid" in info.value.message


# ---- round trip --------------------------------------------------------------------------------

ROLE_SETS = st.sets(st.sampled_from(["analyst", "data-owner", "linkage-unit", "witness"]), min_size=1)
NODE_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)
URLS = st.sampled_from(["http://127.0.0.1:8400", "https://node.example.org/palermo", "https://[::1]:9/x?y=1"])


@st.composite
def documents(draw: st.DrawFn) -> SignedDirectory:
    ids = draw(st.lists(NODE_IDS, unique=True, max_size=5))
    raw = draw(
        st.lists(
            st.binary(min_size=32, max_size=32), min_size=3 * len(ids), max_size=3 * len(ids), unique=True
        )
    )
    members = tuple(
        Member(
            node_id=node_id,
            country=draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
            url=draw(URLS),
            signing_key=raw[3 * i],
            encryption_key=raw[3 * i + 1],
            log_key=raw[3 * i + 2],
            roles=tuple(sorted(draw(ROLE_SETS))),
        )
        for i, node_id in enumerate(sorted(ids))
    )
    keys = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5, unique=True))
    directory = Directory(
        federation=draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)),
        version=draw(st.integers(1, 2**53 - 1)),
        expires=draw(st.integers(0, 2**53 - 1)),
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(k) for k in keys), threshold=draw(st.integers(1, len(keys)))
        ),
        members=members,
    )
    signatures = draw(
        st.lists(
            st.builds(
                Signature,
                keyid=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
                sig=st.binary(min_size=64, max_size=64),
            ),
            max_size=4,
        )
    )
    return SignedDirectory(signed=directory, signatures=tuple(signatures))


@settings(max_examples=150, deadline=None)
@given(documents())
def test_to_bytes_from_bytes_round_trips(document: SignedDirectory) -> None:
    data = document.to_bytes()
    parsed = SignedDirectory.from_bytes(data)
    assert parsed == document
    assert parsed.to_bytes() == data
    assert parsed.signed.digest == document.signed.digest


def test_parsed_document_is_independent_of_the_input_dict() -> None:
    d = good_dict()
    document = SignedDirectory.from_dict(copy.deepcopy(d))
    d["signed"]["members"][0]["roles"].append("witness")
    assert document.signed.members[0].roles == ("analyst", "data-owner")


# ---- witness policy -----------------------------------------------------------------------------

WITNESSES = (
    member("nld-fp", 40, ("analyst", "witness")),
    member("rou-fp", 41, ("witness",)),
    member("ukr-fp", 42, ("witness",)),
)


def with_policy(policy: Any, members: tuple[Member, ...] = WITNESSES) -> dict[str, Any]:
    signed = make().to_dict()
    signed["members"] = [m.to_dict() for m in members]
    signed["witness_policy"] = policy
    return signed


def test_witness_policy_round_trips_and_is_signed() -> None:
    directory = Directory.from_dict(with_policy({"quorum": 2, "max_delay": 3600}))
    assert directory.witness_policy == WitnessPolicy(quorum=2, max_delay=3600)
    assert Directory.from_dict(directory.to_dict()) == directory
    assert b'"witness_policy":{"max_delay":3600,"quorum":2}' in directory.signing_bytes()
    without = Directory.from_dict({k: v for k, v in directory.to_dict().items() if k != "witness_policy"})
    assert without.witness_policy is None
    assert "witness_policy" not in without.to_dict()  # absent, never null
    assert without.digest != directory.digest  # the policy is part of what governance signs


def test_witnesses_of_leaves_out_the_log_owner() -> None:
    directory = Directory.from_dict(with_policy({"quorum": 2, "max_delay": 60}))
    assert [m.node_id for m in directory.witnesses_of("nld-fp")] == ["rou-fp", "ukr-fp"]
    assert [m.node_id for m in directory.witnesses_of("rou-fp")] == ["nld-fp", "ukr-fp"]


@pytest.mark.parametrize(
    ("policy", "members", "code"),
    [
        ({"quorum": 3, "max_delay": 60}, WITNESSES, "directory_bad_quorum"),  # a witness has 2 others
        (
            {"quorum": 1, "max_delay": 60},
            MEMBERS,
            "directory_bad_quorum",
        ),  # one witness: none for its own log
        ({"quorum": 0, "max_delay": 60}, WITNESSES, "directory_malformed"),
        ({"quorum": 1, "max_delay": 0}, WITNESSES, "directory_malformed"),
        ({"quorum": True, "max_delay": 60}, WITNESSES, "directory_malformed"),
        ({"quorum": 1}, WITNESSES, "directory_malformed"),
        ({"quorum": 1, "max_delay": 60, "extra": 1}, WITNESSES, "directory_malformed"),
        (None, WITNESSES, "directory_malformed"),
        ([1, 60], WITNESSES, "directory_malformed"),
    ],
)
def test_bad_witness_policies_are_refused(policy: Any, members: tuple[Member, ...], code: str) -> None:
    assert code_of(lambda: Directory.from_dict(with_policy(policy, members))) == (MalformedError, code)
