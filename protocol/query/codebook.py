"""The public codebooks of joint queries: every dimension, its categories and where its values come from.

Categories are public and fixed (HTCDS 2.0 value lists, ISO 3166 codes, CTDC age bands), so a
release never depends on which values a node happens to hold: no key-release threshold is needed
and no category is hidden because it is small. Every dimension has a category ``unknown`` for a
missing value, except the year of registration, which a query bounds with a year range.

Roll-ups (sex, age bands, groups of exploitation types) are defined here once, so that every node
counts the same way; docs/queries.md lists them for analysts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from protocol.htcds_values import (
    CITIZENSHIPS,
    CONTROL,
    COUNTRIES,
    EXPLOITATION,
    GENDER,
    INDUSTRY,
    RECRUITMENT,
    RELATIONSHIP,
    ROLE_IN_PROCESS,
)

MEASURES = ("victims", "perpetrators", "cases")
UNKNOWN = "unknown"

SEX = ("female", "male", "other_unknown")
# HTCDS records gender; the roll-up to sex keeps female and male and puts everything else (including
# transgender identities, which CTDC also keeps apart from female and male) with unknown.
SEX_OF_GENDER: Mapping[str, str] = {"Feminine": "female", "Masculine": "male"} | {
    g: "other_unknown" for g in GENDER if g not in ("Feminine", "Masculine")
}

AGE_GROUPS = ("child", "adult", UNKNOWN)
# CTDC's age bands (Counter Trafficking Data Collaborative), inclusive bounds; the last is open.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-8", 0, 8), ("9-17", 9, 17), ("18-20", 18, 20), ("21-23", 21, 23), ("24-26", 24, 26),
    ("27-29", 27, 29), ("30-38", 30, 38), ("39-47", 39, 47), ("48+", 48, None),
)  # fmt: skip
ADULT_AGE = 18

EXPLOITATION_GROUPS = ("sexual_exploitation", "forced_labour", "forced_criminality", "other", UNKNOWN)
EXPLOITATION_GROUP_OF: Mapping[str, str] = {
    "SexualExploitation": "sexual_exploitation",
    "ForcedLabour": "forced_labour",
    "ChildLabour": "forced_labour",
    "Servitude": "forced_labour",
    "ForcedCriminality": "forced_criminality",
    **{t: "other" for t in ("ForcedMarriage", "ForcedMilitaryByNonStateActors", "OrganRemoval", "ForcedBegging",
                            "ForcedAdoption", "Surrogacy", "Other")},
}  # fmt: skip

VICTIMS_ONLY = frozenset({"victims", "cases"})
PERPETRATORS_ONLY = frozenset({"perpetrators", "cases"})
EVERY_MEASURE = frozenset(MEASURES)


@dataclass(frozen=True)
class Dimension:
    """One dimension a query may break counts down by, or filter on."""

    name: str
    categories: tuple[str, ...]  # in release order; empty for "year" (the query's year range gives them)
    measures: frozenset[str]  # the measures it applies to
    multi: bool  # whether one person (or case) may hold several values
    source: str  # where the values come from, for people (docs/queries.md)


def _with_unknown(values: tuple[str, ...] | frozenset[str], *, sort: bool = False) -> tuple[str, ...]:
    return (*(sorted(values) if sort else values), UNKNOWN)


_DIMENSIONS = (
    Dimension("year", (), EVERY_MEASURE, False, "year of the case's registration (cas_RegistrationDate)"),
    Dimension("sex", SEX, EVERY_MEASURE, False, "prs_Gender rolled up to female / male / other_unknown"),
    Dimension("age_group", AGE_GROUPS, VICTIMS_ONLY, False, "vic_AgeWhenTrafficked: child under 18, adult"),
    Dimension("age_band", _with_unknown(tuple(b[0] for b in AGE_BANDS)), VICTIMS_ONLY, False,
              "vic_AgeWhenTrafficked in CTDC bands"),
    Dimension("citizenship", _with_unknown(CITIZENSHIPS, sort=True), EVERY_MEASURE, True,
              "prs_Citizenship (ISO 3166-1 alpha-3; XXA-XXX as in ICAO 9303)"),
    Dimension("recruitment_country", _with_unknown(COUNTRIES, sort=True), EVERY_MEASURE, True,
              "country of the Recruitment events (hte_RecruitmentCountry)"),
    Dimension("transit_country", _with_unknown(COUNTRIES, sort=True), EVERY_MEASURE, True,
              "countries of the Transit events (hte_TransitCountry)"),
    Dimension("exploitation_country", _with_unknown(COUNTRIES, sort=True), EVERY_MEASURE, True,
              "country of the Exploitation events (hte_ExploitationCountry)"),
    Dimension("exploitation_type", _with_unknown(EXPLOITATION), VICTIMS_ONLY, True, "vic_TypeOfExploitation"),
    Dimension("exploitation_group", EXPLOITATION_GROUPS, VICTIMS_ONLY, True,
              "vic_TypeOfExploitation rolled up to sexual exploitation / forced labour / forced criminality / other"),
    Dimension("sector", _with_unknown(INDUSTRY), VICTIMS_ONLY, False,
              "vic_ForcedLabourIndustry (ISIC rev. 4 sections A-U)"),
    Dimension("means_of_control", _with_unknown(CONTROL), VICTIMS_ONLY, True, "vic_MethodsOfControl"),
    Dimension("recruitment_method", _with_unknown(RECRUITMENT), VICTIMS_ONLY, True, "vic_MethodOfRecruitment"),
    Dimension("recruiter_relationship", _with_unknown(RELATIONSHIP), VICTIMS_ONLY, False,
              "vic_RelationshipToTrafficker"),
    Dimension("perpetrator_role", _with_unknown(ROLE_IN_PROCESS), PERPETRATORS_ONLY, True, "per_RoleInProcess"),
)  # fmt: skip
DIMENSIONS: Mapping[str, Dimension] = {d.name: d for d in _DIMENSIONS}


def sex_of(gender: str | None) -> str:
    """The sex category of an HTCDS gender value (None: other_unknown)."""
    return SEX_OF_GENDER.get(gender or "", "other_unknown")


def age_group_of(age: int | None) -> str:
    if age is None or age < 0:
        return UNKNOWN
    return "child" if age < ADULT_AGE else "adult"


def age_band_of(age: int | None) -> str:
    if age is None or age < 0:
        return UNKNOWN
    for name, low, high in AGE_BANDS:
        if low <= age and (high is None or age <= high):
            return name
    return UNKNOWN  # pragma: no cover - the last band is open


def exploitation_group_of(exploitation_type: str) -> str:
    return EXPLOITATION_GROUP_OF.get(exploitation_type, "other")
