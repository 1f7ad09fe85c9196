"""Phone numbers as clerks type them, to E.164 with the phonenumbers library (libphonenumber's data).

A national number ("067 123 45 67") is read in the region of the node that holds the record; an
international one ("+380...", "00380...", "(+31) (0)6...") in its own. Numbers that phonenumbers
does not consider valid for their region come out as None: a wrong digit count or an unassigned
range is more likely a typing error than a real number, and would only add noise to matching.
Both nodes must run the same phonenumbers metadata for identical selectors; pin its version.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from ..errors import InvalidRequestError
from ._tables import pair_table

# ISO 3166-1 alpha-3 -> alpha-2 for every region phonenumbers knows (states and territories).
_ISO3_TO_ISO2 = pair_table("""
ABW:AW AFG:AF AGO:AO AIA:AI ALA:AX ALB:AL AND:AD ARE:AE ARG:AR ARM:AM ASM:AS ATG:AG AUS:AU AUT:AT
AZE:AZ BDI:BI BEL:BE BEN:BJ BES:BQ BFA:BF BGD:BD BGR:BG BHR:BH BHS:BS BIH:BA BLM:BL BLR:BY BLZ:BZ
BMU:BM BOL:BO BRA:BR BRB:BB BRN:BN BTN:BT BWA:BW CAF:CF CAN:CA CCK:CC CHE:CH CHL:CL CHN:CN CIV:CI
CMR:CM COD:CD COG:CG COK:CK COL:CO COM:KM CPV:CV CRI:CR CUB:CU CUW:CW CXR:CX CYM:KY CYP:CY CZE:CZ
DEU:DE DJI:DJ DMA:DM DNK:DK DOM:DO DZA:DZ ECU:EC EGY:EG ERI:ER ESH:EH ESP:ES EST:EE ETH:ET FIN:FI
FJI:FJ FLK:FK FRA:FR FRO:FO FSM:FM GAB:GA GBR:GB GEO:GE GGY:GG GHA:GH GIB:GI GIN:GN GLP:GP GMB:GM
GNB:GW GNQ:GQ GRC:GR GRD:GD GRL:GL GTM:GT GUF:GF GUM:GU GUY:GY HKG:HK HND:HN HRV:HR HTI:HT HUN:HU
IDN:ID IMN:IM IND:IN IOT:IO IRL:IE IRN:IR IRQ:IQ ISL:IS ISR:IL ITA:IT JAM:JM JEY:JE JOR:JO JPN:JP
KAZ:KZ KEN:KE KGZ:KG KHM:KH KIR:KI KNA:KN KOR:KR KWT:KW LAO:LA LBN:LB LBR:LR LBY:LY LCA:LC LIE:LI
LKA:LK LSO:LS LTU:LT LUX:LU LVA:LV MAC:MO MAF:MF MAR:MA MCO:MC MDA:MD MDG:MG MDV:MV MEX:MX MHL:MH
MKD:MK MLI:ML MLT:MT MMR:MM MNE:ME MNG:MN MNP:MP MOZ:MZ MRT:MR MSR:MS MTQ:MQ MUS:MU MWI:MW MYS:MY
MYT:YT NAM:NA NCL:NC NER:NE NFK:NF NGA:NG NIC:NI NIU:NU NLD:NL NOR:NO NPL:NP NRU:NR NZL:NZ OMN:OM
PAK:PK PAN:PA PER:PE PHL:PH PLW:PW PNG:PG POL:PL PRI:PR PRK:KP PRT:PT PRY:PY PSE:PS PYF:PF QAT:QA
REU:RE ROU:RO RUS:RU RWA:RW SAU:SA SDN:SD SEN:SN SGP:SG SHN:SH SJM:SJ SLB:SB SLE:SL SLV:SV SMR:SM
SOM:SO SPM:PM SRB:RS SSD:SS STP:ST SUR:SR SVK:SK SVN:SI SWE:SE SWZ:SZ SXM:SX SYC:SC SYR:SY TCA:TC
TCD:TD TGO:TG THA:TH TJK:TJ TKL:TK TKM:TM TLS:TL TON:TO TTO:TT TUN:TN TUR:TR TUV:TV TWN:TW TZA:TZ
UGA:UG UKR:UA URY:UY USA:US UZB:UZ VAT:VA VCT:VC VEN:VE VGB:VG VIR:VI VNM:VN VUT:VU WLF:WF WSM:WS
XKX:XK YEM:YE ZAF:ZA ZMB:ZM ZWE:ZW""")
_LABEL = re.compile(r"^(?:tel|phone|mob|mobile|cell|gsm|whatsapp|viber|telegram)\s*[.:]?\s*", re.IGNORECASE)
_SEVERAL = re.compile(r"\s*(?:[;,/|]|\bor\b|\bи\b|\bчи\b|\bou\b|\boder\b|\bof\b)\s*", re.IGNORECASE)
_NOT_DIALLED = re.compile(r"[^\d+]")


def iso2_region(country: str) -> str:
    """The ISO 3166-1 alpha-2 code of an alpha-3 (or alpha-2) country code.

    Raises :class:`~protocol.errors.InvalidRequestError` for a code phonenumbers does not know.
    """
    code = (country or "").strip().upper()
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    if code in _ISO3_TO_ISO2:
        return _ISO3_TO_ISO2[code]
    raise InvalidRequestError(
        f"unknown region {country!r}: expected an ISO 3166-1 alpha-3 country code such as NLD",
        code="unknown_region",
    )


def _dialled(text: str) -> str:
    """The text with an international 00 prefix written as + (00 starts no national number)."""
    text = _LABEL.sub("", unicodedata.normalize("NFKC", text).strip())
    digits = _NOT_DIALLED.sub("", text)
    if digits.startswith("00") and not digits.startswith("000"):
        return "+" + digits[2:]
    if digits.startswith("+00"):
        return "+" + digits[3:]
    return text


@lru_cache(maxsize=1 << 16)
def normalise_phone(text: str | None, *, default_region: str | None) -> str | None:
    """One phone number in E.164 form ("+31612345678"), or None if empty, unreadable or invalid.

    ``default_region`` (ISO alpha-3, the country of the node or of the record) reads national
    numbers; a number with +, 00 or another international prefix carries its own country; with
    None only such international numbers are read. Raises
    :class:`~protocol.errors.InvalidRequestError` only for an unknown ``default_region``.
    """
    region = iso2_region(default_region) if default_region is not None else "ZZ"
    if not text or not text.strip():
        return None
    try:
        number = phonenumbers.parse(_dialled(text), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phones(text: str | None, *, default_region: str | None) -> list[str]:
    """Every valid number in a field that may hold several ("0612345678 / 0687654321"), in E.164,
    without repeats, in written order."""
    if not text:
        return []
    found: list[str] = []
    for part in _SEVERAL.split(text):
        number = normalise_phone(part, default_region=default_region)
        if number and number not in found:
            found.append(number)
    return found
