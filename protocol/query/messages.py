"""Messages of a joint query (protocol/SPEC.md section 13) and the requester's check of an answer.

    query.request  → query.answer   the analyst's node asks; a data-owning node answers with its
                                    own differentially private release, or refuses

The reply envelope is signed by the answering node and names the request it answers, so an
answer is bound to the question and to its sender. This module checks payload shapes; the node
parses the specification itself (refusals with code ``invalid_query``) and checks an answer
against the query it sent with :func:`verify_answer`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from protocol.canonical import require_fields
from protocol.errors import MalformedError
from protocol.messages import MessageType, register
from protocol.query.privacy import NANO, format_rho, gaussian_scale
from protocol.query.spec import MAX_CELLS, QuerySpec

HEX32_RE = re.compile(r"[0-9a-f]{32}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
DECIMAL_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,20})?")
PERIOD_RE = re.compile(r"[0-9]{4}(-[0-9]{2}|-Q[1-4])?")
MECHANISM = "discrete_gaussian"
MAX_COUNT = 2**31 - 1  # OpenDP draws 32-bit integers
SCALE_TOLERANCE = 1e-6  # relative: a scale further from the loss charged is a mismatch


class AnswerMismatch(MalformedError):
    """An answer that does not fit the query asked: wrong query, loss or noise scale, or shape."""

    code = "answer_mismatch"


def _fail(what: str, message: str) -> MalformedError:
    return MalformedError(f"{what}.{message}", code="invalid_payload")


def _check_request(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required={"query_id", "spec"})
    if not isinstance(payload["query_id"], str) or not HEX32_RE.fullmatch(payload["query_id"]):
        raise _fail(what, "query_id: expected 32 lowercase hex digits")
    if not isinstance(payload["spec"], dict):
        raise _fail(what, "spec: expected a query specification object")
    return dict(payload)


_ANSWER_FIELDS = {"query_id", "spec_hash", "period", "mechanism", "rho", "scale", "l2_sensitivity", "cells"}
_ANSWER_FIELDS |= {"cached", "released_at"}


def _check_answer(payload: Any, what: str) -> dict[str, Any]:
    require_fields(payload, what=what, required=_ANSWER_FIELDS)
    if not isinstance(payload["query_id"], str) or not HEX32_RE.fullmatch(payload["query_id"]):
        raise _fail(what, "query_id: expected 32 lowercase hex digits")
    if not isinstance(payload["spec_hash"], str) or not HEX64_RE.fullmatch(payload["spec_hash"]):
        raise _fail(what, "spec_hash: expected 64 lowercase hex digits")
    if not isinstance(payload["period"], str) or not PERIOD_RE.fullmatch(payload["period"]):
        raise _fail(what, "period: expected YYYY, YYYY-MM or YYYY-Qn")
    if payload["mechanism"] != MECHANISM:
        raise _fail(what, f"mechanism: expected {MECHANISM}")
    for name in ("rho", "scale", "l2_sensitivity"):
        if not isinstance(payload[name], str) or not DECIMAL_RE.fullmatch(payload[name]):
            raise _fail(what, f"{name}: expected a decimal string")
    cells = payload["cells"]
    if not isinstance(cells, list) or not 1 <= len(cells) <= MAX_CELLS:
        raise _fail(what, f"cells: expected a list of 1 to {MAX_CELLS} integers")
    if not all(type(c) is int and -MAX_COUNT <= c <= MAX_COUNT for c in cells):
        raise _fail(what, "cells: expected integers")
    if not isinstance(payload["cached"], bool):
        raise _fail(what, "cached: expected true or false")
    if type(payload["released_at"]) is not int or payload["released_at"] < 0:
        raise _fail(what, "released_at: expected Unix seconds")
    return dict(payload)


register(MessageType("query.request", "request", _check_request, reply_types=("query.answer",)))
register(MessageType("query.answer", "reply", _check_answer))


def scale_text(scale: float) -> str:
    """A scale as the decimal string an answer carries (enough digits to round-trip a float)."""
    text = f"{scale:.15f}".rstrip("0").rstrip(".")
    return text or "0"


def verify_answer(spec: QuerySpec, query_id: str, answer: dict[str, Any]) -> None:
    """Check that ``answer`` (a checked query.answer payload) answers ``spec`` as asked.

    The query id and the specification's hash must be ours, the loss charged the loss asked,
    the L2 sensitivity the one the specification implies, the noise scale the one that loss and
    sensitivity give (so a node cannot claim one loss and add less noise, or charge more than
    asked), and the table the specification's shape. Raises AnswerMismatch naming what differs.
    """
    if answer["query_id"] != query_id:
        raise AnswerMismatch("the answer names another query")
    if answer["spec_hash"] != spec.hash:
        raise AnswerMismatch("the answer is for another specification")
    if answer["rho"] != format_rho(spec.rho_nano):
        raise AnswerMismatch(f"the answer charged rho {answer['rho'][:24]}, the query asked {spec.rho}")
    l2 = float(answer["l2_sensitivity"])
    if not math.isclose(l2, spec.l2_sensitivity, rel_tol=1e-9):
        raise AnswerMismatch("the answer's sensitivity is not the one the contribution bounds give")
    expected = gaussian_scale(spec.l2_sensitivity, spec.rho_nano)
    scale = float(answer["scale"])
    if not math.isclose(scale, expected, rel_tol=SCALE_TOLERANCE):
        raise AnswerMismatch(
            f"the answer's noise scale {scale:.6g} does not match the loss charged (expected {expected:.6g})"
        )
    if len(answer["cells"]) != spec.cells:
        raise AnswerMismatch(f"the answer has {len(answer['cells'])} cells, the query's table {spec.cells}")


def rho_of_scale(l2_sensitivity: float, scale: float) -> float:
    """The rho a discrete Gaussian at ``scale`` spends at this sensitivity (for reports)."""
    return l2_sensitivity**2 / (2 * scale * scale) if scale > 0 else math.inf


__all__ = ["MECHANISM", "NANO", "AnswerMismatch", "rho_of_scale", "scale_text", "verify_answer"]
