"""The persons this node may match, read once per round.

A person may be matched only if every case it appears in allows matching (``shr_Matchable``):
when two cases disagree, the stricter one wins. A person who appears in several cases is one
person (``prs_PersonId``), so one candidate. Its handling code for disclosures is the strictest of
its cases' codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.storage.models.records import Case, CasePerson, Person
from protocol.canonical import sha256_hex
from protocol.htcds import FIELDS

# Bumped whenever what a person's features are made of changes, so peers get fresh encodings.
FEATURES_VERSION = "2"  # 2: one name_dob selector a person
PERSON_COLUMNS = {spec.attr: spec.name for spec in FIELDS.values() if spec.group == "person"}
_CHUNK = 500


@dataclass(frozen=True)
class Eligible:
    """A person that may be matched: its reference and the hash of what its features are made of."""

    person_ref: str
    content_hash: str


def eligible(session: Session) -> list[Eligible]:
    """Every person whose every case allows matching, ordered by ``prs_PersonId``."""
    forbidden = select(CasePerson.person_id).where(CasePerson.matchable.is_(False)).scalar_subquery()
    linked = select(CasePerson.person_id).scalar_subquery()
    rows = session.execute(
        select(Person.person_id, Person.content_hash)
        .where(Person.id.in_(linked), Person.id.not_in(forbidden))
        .order_by(Person.person_id)
    )
    return [Eligible(ref, versioned(digest)) for ref, digest in rows]


def versioned(content_hash: str) -> str:
    """A person's content hash bound to the features version: either changing means re-encoding."""
    return sha256_hex(f"{FEATURES_VERSION}:{content_hash}".encode())


def content_hashes(session: Session, refs: Sequence[str]) -> dict[str, str]:
    """The versioned content hash of each person in ``refs`` still held."""
    out: dict[str, str] = {}
    for start in range(0, len(refs), _CHUNK):
        query = select(Person.person_id, Person.content_hash).where(
            Person.person_id.in_(refs[start : start + _CHUNK])
        )
        out.update({ref: versioned(digest) for ref, digest in session.execute(query)})
    return out


def person_rows(session: Session, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The HTCDS person fields (``prs_*`` names) of ``refs``, by ``prs_PersonId``."""
    attrs = list(PERSON_COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(refs), _CHUNK):
        chunk = refs[start : start + _CHUNK]
        columns = [getattr(Person, a) for a in attrs]
        for row in session.execute(select(Person.person_id, *columns).where(Person.person_id.in_(chunk))):
            out[row[0]] = {PERSON_COLUMNS[a]: v for a, v in zip(attrs, row[1:], strict=True)}
    return out


@dataclass(frozen=True)
class Context:
    """What a match shows about its own side: the person's cases, roles and strictest handling code."""

    case_ids: tuple[str, ...]
    roles: tuple[str, ...]
    handling_code: str


def contexts(session: Session, refs: Iterable[str]) -> dict[str, Context]:
    """Cases, roles and strictest handling code of each person in ``refs`` (absent if no longer held)."""
    wanted = sorted(set(refs))
    found: dict[str, tuple[set[str], set[str], str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = (
            select(Person.person_id, Case.case_id, CasePerson.role, CasePerson.handling_code)
            .join(CasePerson, CasePerson.person_id == Person.id)
            .join(Case, Case.id == CasePerson.case_id)
            .where(Person.person_id.in_(wanted[start : start + _CHUNK]))
        )
        for ref, case_id, role, code in session.execute(query):
            cases, roles, strictest = found.setdefault(ref, (set(), set(), "H0"))
            cases.add(case_id)
            roles.add(role)
            found[ref] = (cases, roles, max(strictest, code))
    return {ref: Context(tuple(sorted(c)), tuple(sorted(r)), h) for ref, (c, r, h) in found.items()}


def count_eligible(session: Session) -> int:
    forbidden = select(CasePerson.person_id).where(CasePerson.matchable.is_(False)).scalar_subquery()
    linked = select(CasePerson.person_id).scalar_subquery()
    query = select(func.count()).select_from(Person).where(Person.id.in_(linked), Person.id.not_in(forbidden))
    return int(session.execute(query).scalar_one())
