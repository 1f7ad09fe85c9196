"""Tables for the case records an agency loads (HTCDS 2.0): persons, cases, who is in which case, routes.

Direct identifiers live in ``persons`` only. Multi-valued fields are JSON arrays of HTCDS value
names, in the order written; free text is one JSON object per person in a case, never indexed. Dates keep the precision given: ISO ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
Times are Unix seconds, as elsewhere in the node.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.storage.models import Base

# JSON arrays/objects; SQL NULL (not JSON null) when a field is empty.
JsonValue = JSON(none_as_null=True)

TEXT = 200  # names, cities and other short text
ENUM = 64  # the longest HTCDS value name is 47 characters
DATE = 10  # ISO 8601 date at the precision given


class Person(Base):
    """One person as the agency knows them (``prs_*``), keyed by the agency's person id."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(128), unique=True)  # prs_PersonId, local only
    first_name: Mapped[str | None] = mapped_column(String(TEXT))
    middle_name: Mapped[str | None] = mapped_column(String(TEXT))
    second_name: Mapped[str | None] = mapped_column(String(TEXT))
    birthdate: Mapped[str | None] = mapped_column(String(DATE))
    gender: Mapped[str | None] = mapped_column(String(ENUM))
    citizenship: Mapped[list[str] | None] = mapped_column(JsonValue)
    identity_number: Mapped[str | None] = mapped_column(String(64))
    identity_country: Mapped[str | None] = mapped_column(String(3))
    email: Mapped[str | None] = mapped_column(String(254))
    home_phone: Mapped[str | None] = mapped_column(String(32))
    mobile_phone: Mapped[str | None] = mapped_column(String(32))
    mailing_street: Mapped[str | None] = mapped_column(String(TEXT))
    mailing_postal_code: Mapped[str | None] = mapped_column(String(TEXT))
    mailing_city: Mapped[str | None] = mapped_column(String(TEXT))
    mailing_state: Mapped[str | None] = mapped_column(String(TEXT))
    mailing_country: Mapped[str | None] = mapped_column(String(3))
    marital_status: Mapped[str | None] = mapped_column(String(ENUM))
    number_of_children: Mapped[int | None] = mapped_column(Integer)
    primary_language: Mapped[str | None] = mapped_column(String(3))
    secondary_language: Mapped[str | None] = mapped_column(String(3))
    highest_level_of_education: Mapped[str | None] = mapped_column(String(ENUM))
    deceased: Mapped[bool | None] = mapped_column(Boolean)
    # SHA-256 of the canonical person fields (protocol.htcds.content_hash): incremental matching
    # sends a person again only when this changes; updated_at says when it last did.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger, index=True)


class Case(Base):
    """One case (``cas_*``), keyed by the agency's case id."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(128), unique=True)  # cas_CaseId, local only
    status: Mapped[str | None] = mapped_column(String(ENUM))
    registration_date: Mapped[str | None] = mapped_column(String(DATE))
    registration_year: Mapped[int | None] = mapped_column(Integer)  # from registration_date, for queries
    incoming_referral_date: Mapped[str | None] = mapped_column(String(DATE))
    outgoing_referral_date: Mapped[str | None] = mapped_column(String(DATE))
    reason_for_incoming_referral: Mapped[str | None] = mapped_column(String(ENUM))
    reason_for_outgoing_referral: Mapped[str | None] = mapped_column(String(ENUM))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class CasePerson(Base):
    """A person in a case: role, victim or perpetrator context, sharing controls and free text."""

    __tablename__ = "case_persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(12))  # victim | perpetrator
    # victim context (vic_*), empty on perpetrator rows
    trafficking_status: Mapped[str | None] = mapped_column(String(ENUM))
    status_decision_org: Mapped[str | None] = mapped_column(String(ENUM))
    relationship_to_trafficker: Mapped[str | None] = mapped_column(String(ENUM))
    age_when_trafficked: Mapped[int | None] = mapped_column(Integer)
    type_of_exploitation: Mapped[list[str] | None] = mapped_column(JsonValue)
    type_of_sex_exploitation: Mapped[list[str] | None] = mapped_column(JsonValue)
    forced_labour_industry: Mapped[str | None] = mapped_column(String(ENUM))
    method_of_recruitment: Mapped[list[str] | None] = mapped_column(JsonValue)
    recruitment_websites_and_apps: Mapped[list[str] | None] = mapped_column(JsonValue)
    exploitation_websites_and_apps: Mapped[list[str] | None] = mapped_column(JsonValue)
    methods_of_control: Mapped[list[str] | None] = mapped_column(JsonValue)
    # perpetrator context (per_*), empty on victim rows
    role_in_process: Mapped[list[str] | None] = mapped_column(JsonValue)
    # sharing controls
    matchable: Mapped[bool] = mapped_column(Boolean)
    handling_code: Mapped[str] = mapped_column(String(2))  # H0..H3
    grading: Mapped[str | None] = mapped_column(String(2))  # source A/B/C/X + information 1-4
    free_text: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)  # column name -> text
    synth_true_id: Mapped[str | None] = mapped_column(String(128))  # synthetic ground truth, benchmarks only
    load_id: Mapped[int] = mapped_column(ForeignKey("ingest_loads.id"))

    __table_args__ = (UniqueConstraint("case_id", "person_id", name="uq_case_persons_case_person"),)


class TraffickingEvent(Base):
    """One step of a person's trafficking route in a case (``hte_*``)."""

    __tablename__ = "trafficking_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_person_id: Mapped[int] = mapped_column(ForeignKey("case_persons.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order within the case-person's route
    type: Mapped[str] = mapped_column(String(16))  # Recruitment | Transit | Exploitation
    country: Mapped[str | None] = mapped_column(String(3))
    city: Mapped[str | None] = mapped_column(String(TEXT))
    date: Mapped[str | None] = mapped_column(String(DATE))

    __table_args__ = (Index("ix_trafficking_events_type_country", "type", "country"),)


class IngestLoad(Base):
    """One run of ``palermo ingest``: when, and what it did (counts only)."""

    __tablename__ = "ingest_loads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    file_format: Mapped[str] = mapped_column(String(8))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    cases_created: Mapped[int] = mapped_column(Integer, default=0)
    cases_updated: Mapped[int] = mapped_column(Integer, default=0)
    persons_created: Mapped[int] = mapped_column(Integer, default=0)
    persons_updated: Mapped[int] = mapped_column(Integer, default=0)
    persons_removed: Mapped[int] = mapped_column(Integer, default=0)
