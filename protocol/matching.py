"""Messages of a matching round and what follows a match (protocol/SPEC.md section 12).

A round between an initiator A and a responder B in direct mode (A compares):

    match.open         → match.opened      B agrees to the round, declares its record count
    psi.request        → psi.response      exact selectors (section 10)
    psi.result         → psi.handles       B names its row handle behind each matched position
    encodings.request  → encodings.batch   B's new and changed encodings, page by page
    match.candidates   → receipt           A's candidate pairs, by B's row handle, with a match_id

then, at any time after, ``match.decision`` (a focal point confirmed or rejected a match) and
``disclosure.request`` / ``disclosure.response`` (named fields of a confirmed match, approved by
their owner), each answered by a receipt. This module checks payload shapes only; the node checks
them against its state (known round, known match, approved fields).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from protocol.canonical import b64decode, require_fields
from protocol.envelope import NODE_ID_RE
from protocol.errors import MalformedError
from protocol.messages import MessageType, register

HEX32_RE = re.compile(r"[0-9a-f]{32}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
MAX_INT = 2**53 - 1
HANDLE_SIZE = 16
MAX_HANDLES = 200_000  # per message: removed handles, psi.handles
# A selector that more persons of one register hold is no evidence of who someone is (a shelter's
# phone, an agency's address): it is left out of PSI, on each side for its own register (SPEC 12.3).
MAX_SELECTOR_HOLDERS = 64
MAX_CANDIDATES = 20_000  # per match.candidates part
PPM = 1_000_000
PSI_POINTS_PER_SESSION = 200_000  # what one envelope carries comfortably under the 16 MiB body cap
PSI_SELECTORS_PER_RECORD = 8  # the planning figure for a bucket's size (a record averages about 3.5)
MODES = ("direct", "linkage-unit")
MAX_EXACT = 200_000  # exact pairs handed to a linkage unit in one round
BANDS = ("likely", "possible")
EVIDENCE = ("birth_date", "document", "email", "name", "name_dob", "phone")
DECISIONS = ("confirmed", "rejected")
DISCLOSURE_DECISIONS = ("approved", "refused")
HANDLING_CODES = ("H0", "H1", "H2", "H3")

# Fields a disclosure may name: a person's identity and the matched case's minimal context.
# Free text, contact details, addresses and agency identifiers are never disclosable.
IDENTITY_FIELDS = (
    "prs_FirstName",
    "prs_MiddleName",
    "prs_SecondName",
    "prs_Birthdate",
    "prs_Gender",
    "prs_Citizenship",
)
DOCUMENT_FIELDS = ("prs_IdentityNumber", "prs_IdentityCountry")
CASE_FIELDS = ("role", "cas_Status", "cas_RegistrationDate", "vic_TypeOfExploitation")
DISCLOSABLE_FIELDS = IDENTITY_FIELDS + DOCUMENT_FIELDS + CASE_FIELDS
ASKABLE_BY_HANDLING_CODE = {
    "H0": DISCLOSABLE_FIELDS,  # use only to fight crime: the whole minimal set
    "H1": DISCLOSABLE_FIELDS,  # not for court without permission: the answer carries H1
    "H2": IDENTITY_FIELDS,  # no onward sharing without permission: identity only, no documents
    "H3": (),  # other restrictions: nothing by envelope, the owner is contacted out of band
}

Check = Callable[[Any, str], Any]


def psi_buckets(records_a: int, records_b: int) -> int:
    """How many PSI sessions a round splits exact selectors into (SPEC 12.2): both sides know both counts."""
    planned = PSI_SELECTORS_PER_RECORD * max(records_a, records_b, 0)
    return max(1, -(-planned // PSI_POINTS_PER_SESSION))


def psi_session_id(round_id: str, bucket: int) -> bytes:
    """The PSI session id of one bucket of a round: 16 bytes of SHA-256 over the round id and bucket."""
    return hashlib.sha256(
        b"palermo/psi-session/v1" + bytes.fromhex(round_id) + bucket.to_bytes(4, "big")
    ).digest()[:16]


def _fail(what: str, expected: str) -> MalformedError:
    return MalformedError(f"{what}: expected {expected}", code="invalid_payload")


def hex32(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX32_RE.fullmatch(value):
        raise _fail(what, "32 lowercase hex digits")
    return value


def hex64(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX64_RE.fullmatch(value):
        raise _fail(what, "64 lowercase hex digits")
    return value


def integer(low: int, high: int = MAX_INT) -> Check:
    def check(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(what, f"an integer from {low} to {high}")
        return value

    return check


def boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(what, "true or false")
    return value


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any, what: str) -> str:
        if value not in choices:
            raise _fail(what, "one of " + ", ".join(choices))
        return str(value)

    return check


def handle(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 24:
        raise _fail(what, f"a {HANDLE_SIZE}-byte handle in base64")
    try:
        return b64decode(value, what=what, length=HANDLE_SIZE)
    except MalformedError as e:
        raise MalformedError(e.message, code="invalid_payload") from e


def list_of(item: Check, *, max_items: int, unique: bool = False, min_items: int = 0) -> Check:
    def check(value: Any, what: str) -> list[Any]:
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise _fail(what, f"a list of {min_items} to {max_items} items")
        out = [item(v, f"{what}[{i}]") for i, v in enumerate(value)]
        if unique and len({repr(v) for v in out}) != len(out):
            raise MalformedError(f"{what}: an item appears twice", code="invalid_payload")
        return out

    return check


def node_or_empty(value: Any, what: str) -> str:
    if value != "" and (not isinstance(value, str) or not NODE_ID_RE.match(value)):
        raise _fail(what, "a node id or an empty string")
    return str(value)


def tuple_of(items: tuple[Check, ...]) -> Check:
    def check(value: Any, what: str) -> list[Any]:
        if not isinstance(value, list) or len(value) != len(items):
            raise _fail(what, f"a list of {len(items)} items")
        return [fn(v, f"{what}[{i}]") for i, (fn, v) in enumerate(zip(items, value, strict=True))]

    return check


def any_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(what, "an object")
    return value


def record(fields: dict[str, Check]) -> Check:
    """A check for an object with exactly ``fields``, each checked by its function."""

    def check(value: Any, what: str) -> dict[str, Any]:
        obj = require_fields(value, what=what, required=set(fields))
        return {name: fn(obj[name], f"{what}.{name}") for name, fn in fields.items()}

    return check


def _payload(fields: dict[str, Check]) -> Callable[[Any, str], dict[str, Any]]:
    checked = record(fields)

    def check(payload: Any, what: str) -> dict[str, Any]:
        checked(payload, what)
        return dict(payload)

    return check


def disclosure_values(value: Any, what: str) -> dict[str, Any]:
    """Field name → a string, a list of strings, or null; only disclosable fields."""
    if not isinstance(value, dict) or len(value) > len(DISCLOSABLE_FIELDS):
        raise _fail(what, "an object of disclosable fields")
    for name, item in value.items():
        if name not in DISCLOSABLE_FIELDS:
            raise _fail(f"{what}.{name}", "a disclosable field")
        ok = item is None or (isinstance(item, str) and len(item) <= 400)
        ok = ok or (isinstance(item, list) and len(item) <= 20 and all(isinstance(v, str) for v in item))
        if not ok:
            raise _fail(f"{what}.{name}", "a string, a list of strings or null")
    return value


CANDIDATE = record(
    {
        "match_id": hex32,
        "handle": handle,
        "band": one_of(BANDS),
        "weight": integer(
            -(10**9), 10**9
        ),  # match weight in thousandths of a bit (canonical JSON has no floats)
        "probability": integer(0, PPM),  # posterior in millionths
        "evidence": list_of(one_of(EVIDENCE), max_items=len(EVIDENCE), unique=True),
    }
)

EXACT_PAIR = tuple_of((handle, handle, one_of(("document", "email", "name_dob", "phone"))))
UNIT_CANDIDATE = record(
    {
        "a": handle,  # the initiator's row handle
        "b": handle,  # the responder's row handle
        "band": one_of(BANDS),
        "weight": integer(-(10**9), 10**9),
        "probability": integer(0, PPM),
        "evidence": list_of(one_of(EVIDENCE), max_items=len(EVIDENCE), unique=True),
    }
)

PAYLOADS: dict[str, dict[str, Check]] = {
    "match.open": {
        "round_id": hex32,
        "number": integer(1),
        "mode": one_of(MODES),
        "unit": node_or_empty,  # the linkage unit's node id in linkage-unit mode, else ""
        "epoch": integer(0),
        "layout": any_object,  # checked against the node's own layout by protocol.encoding
        "record_count": integer(0),
    },
    "match.opened": {"round_id": hex32, "record_count": integer(0)},
    "psi.handles": {
        "session_id": hex32,
        # per matched position, in the result's order: the responder's handles of the persons holding it
        "handles": list_of(
            list_of(handle, max_items=MAX_SELECTOR_HOLDERS, min_items=1), max_items=MAX_HANDLES
        ),
    },
    "encodings.request": {
        "round_id": hex32,
        "epoch": integer(0),
        "page": integer(0, 100_000),
        "state": hex64,
    },
    "encodings.batch": {
        "round_id": hex32,
        "page": integer(0, 100_000),
        "last": boolean,
        "full": boolean,
        "removed": list_of(handle, max_items=MAX_HANDLES, unique=True),
        "encodings": any_object,  # checked by protocol.encoding.batch_from_payload
    },
    "match.candidates": {
        "round_id": hex32,
        "part": integer(0, 100_000),
        "last": boolean,
        "candidates": list_of(CANDIDATE, max_items=MAX_CANDIDATES),
    },
    "encodings.forward": {"round_id": hex32, "unit": node_or_empty},
    "encodings.forwarded": {"round_id": hex32, "rows": integer(0)},
    "linkage.open": {
        "round_id": hex32,
        "peer": node_or_empty,
        "epoch": integer(0),
        "layout": any_object,
        "exact": list_of(EXACT_PAIR, max_items=MAX_EXACT),
    },
    "linkage.opened": {"round_id": hex32},
    "linkage.encodings": {
        "round_id": hex32,
        "page": integer(0, 100_000),
        "last": boolean,
        "encodings": any_object,
    },
    "linkage.compare": {"round_id": hex32},
    "linkage.candidates": {
        "round_id": hex32,
        "candidates": list_of(UNIT_CANDIDATE, max_items=MAX_EXACT),
    },
    "match.decision": {"match_id": hex32, "decision": one_of(DECISIONS)},
    "disclosure.request": {
        "disclosure_id": hex32,
        "match_id": hex32,
        "fields": list_of(
            one_of(DISCLOSABLE_FIELDS), max_items=len(DISCLOSABLE_FIELDS), unique=True, min_items=1
        ),
    },
    "disclosure.response": {
        "disclosure_id": hex32,
        "decision": one_of(DISCLOSURE_DECISIONS),
        "handling_code": one_of(HANDLING_CODES),
        "values": disclosure_values,
    },
}

_KINDS = {
    "match.open": ("request", ("match.opened",)),
    "match.opened": ("reply", ()),
    "psi.handles": ("reply", ()),
    "encodings.request": ("request", ("encodings.batch",)),
    "encodings.batch": ("reply", ()),
    "match.candidates": ("request", ("receipt",)),
    "encodings.forward": ("request", ("encodings.forwarded",)),
    "encodings.forwarded": ("reply", ()),
    "linkage.open": ("request", ("linkage.opened",)),
    "linkage.opened": ("reply", ()),
    "linkage.encodings": ("request", ("receipt",)),
    "linkage.compare": ("request", ("linkage.candidates",)),
    "linkage.candidates": ("reply", ()),
    "match.decision": ("request", ("receipt",)),
    "disclosure.request": ("request", ("receipt",)),
    "disclosure.response": ("request", ("receipt",)),
}


def check(type_name: str, payload: Any) -> dict[str, Any]:
    """The checked, converted fields of a payload of ``type_name`` (handles as bytes, and so on)."""
    fields: dict[str, Any] = record(PAYLOADS[type_name])(payload, f"payload of {type_name}")
    return fields


for _name, (_kind, _replies) in _KINDS.items():
    register(MessageType(_name, _kind, _payload(PAYLOADS[_name]), reply_types=_replies))
