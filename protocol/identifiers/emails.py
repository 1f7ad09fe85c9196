"""E-mail addresses to one comparable form.

Lower case throughout: RFC 5321 lets the local part be case-sensitive, but no large provider
treats it so, and clerks retype addresses in any case. Only Gmail's documented rules are applied
beyond that (dots in the local part and a "+tag" are ignored, googlemail.com is gmail.com):
other providers differ, and a wrong merge would join two people.
"""

from __future__ import annotations

import re
import unicodedata

_DISPLAY = re.compile(r"<([^<>]*)>")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_GMAIL = frozenset({"gmail.com", "googlemail.com"})


def _domain(text: str) -> str | None:
    try:
        ascii_domain = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return None
    return ascii_domain


def normalise_email(text: str | None) -> str | None:
    """The comparable form of one e-mail address, or None if it is not shaped like one.

    Accepts "Name <a@b.c>" and "mailto:a@b.c"; lower-cases; an internationalised domain becomes
    its IDNA (punycode) form; for gmail.com and googlemail.com the local part loses its dots and
    any "+tag", and the domain becomes gmail.com. The local part must be RFC 5322 dot-atom text
    of at most 64 characters; the domain needs at least two labels and a letter TLD.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    bracketed = _DISPLAY.search(text)
    if bracketed:
        text = bracketed.group(1).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    local, at, domain_text = text.strip().rpartition("@")
    local = local.lower()
    if not at or not local or len(local) > 64 or not _LOCAL.match(local) or len(domain_text) > 253:
        return None
    domain = _domain(domain_text.rstrip("."))
    if domain is None:
        return None
    if domain in _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
        if not local:
            return None
    return f"{local}@{domain}"
