"""Birth dates as clerks record them: full, year and month, year only, or a placeholder.

Migration and refugee documents give people with an unknown birthday the 1st of January of the
year they believe they were born in (UNHCR and many civil registries do this), so the 1st of
January is read as "year known, day and month unknown". A clerk may also put day and month the
wrong way round (07/03 against 03/07), which :func:`date_agreement` reports as ``"swap"``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

EARLIEST_YEAR = 1900  # earlier years are sentinels ("0001-01-01", "1800-01-01"), not births
_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

LEVELS = ("exact", "swap", "year_month", "year", "year_close", "none", "missing")


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A birth date at the precision it is known: ``month`` and ``day`` are None when unknown.

    ``placeholder`` is True when the record said 1 January, which is then kept as year only.
    """

    year: int
    month: int | None = None
    day: int | None = None
    placeholder: bool = False

    def __post_init__(self) -> None:
        if not EARLIEST_YEAR <= self.year <= 9999:
            raise ValueError(f"expected a year from {EARLIEST_YEAR} to 9999, got {self.year}")
        if self.month is None and self.day is not None:
            raise ValueError("a day needs a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"expected a month from 1 to 12, got {self.month}")
        if self.day is not None and self.month is not None:
            last = calendar.monthrange(self.year, self.month)[1]
            if not 1 <= self.day <= last:
                raise ValueError(f"expected a day from 1 to {last}, got {self.day}")
        if self.placeholder and (self.month is not None or self.day is not None):
            raise ValueError("a placeholder date keeps only its year")

    @property
    def is_full(self) -> bool:
        """True when year, month and day are all known (a placeholder is not)."""
        return self.day is not None

    def iso(self) -> str:
        """The date as known: "1998-03-07", "1998-03" or "1998"."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def swapped(self) -> BirthDate | None:
        """The date with day and month exchanged, if that is another valid date; else None."""
        if self.day is None or self.month is None or self.day == self.month or self.day > 12:
            return None
        return BirthDate(self.year, self.day, self.month)


def parse_birthdate(text: str | None) -> BirthDate | None:
    """Read "YYYY-MM-DD", "YYYY-MM" or "YYYY" (surrounding spaces allowed; "00" for an unknown
    month or day, as some registers write). Returns None for an empty, malformed or impossible date,
    or a year before 1900; 1 January becomes a year-only placeholder. Never raises."""
    if not text:
        return None
    match = _ISO.match(text.strip())
    if not match:
        return None
    year, month, day = (int(g) if g and int(g) else None for g in match.groups())
    if year is None or year < EARLIEST_YEAR:
        return None
    if month is None:
        day = None
    if month == 1 and day == 1:
        return BirthDate(year, placeholder=True)
    try:
        return BirthDate(year, month, day)
    except ValueError:
        return None


def date_agreement(a: BirthDate | None, b: BirthDate | None) -> str:
    """How far two birth dates agree, the best level both precisions allow:

    ``"exact"`` (same full date), ``"swap"`` (same year, day and month exchanged), ``"year_month"``,
    ``"year"``, ``"year_close"`` (years one apart), ``"none"``, or ``"missing"`` (either is None).
    """
    if a is None or b is None:
        return "missing"
    if a.year == b.year:
        if a.month is not None and a.month == b.month:
            return "exact" if a.day is not None and a.day == b.day else "year_month"
        if a.day is not None and b.day is not None and (a.day, a.month) == (b.month, b.day):
            return "swap"
        return "year"
    return "year_close" if abs(a.year - b.year) == 1 else "none"


def birth_year_window(bd: BirthDate | None, *, slack: int = 1) -> range | None:
    """The birth years a matching record may carry, for blocking: ``year ± slack``; None when the
    date is unknown (such a record must then be compared with every block)."""
    if bd is None:
        return None
    return range(bd.year - slack, bd.year + slack + 1)
