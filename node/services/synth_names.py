"""Country facts, names, spelling variants and identifiers for the synthetic case-record generator.

Everything here is invented or comes from Faker: common given names and surnames, national
romanisation rules (Ukrainian 2010 passport, Russian ICAO 2013, Bulgarian 2009, ELOT 743) and the
way a German, Polish, French, Romanian or English clerk spells a Cyrillic name by ear
(Kowalenko / Kovalenko / Covalenco; Jewgeni / Yevgeniy / Evgenii).
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from anyascii import anyascii


@dataclass(frozen=True)
class CountryFacts:
    """How a country's agencies write names and what its people's identifiers look like."""

    locale: str  # Faker locale for names of its citizens
    script: str  # script its clerks write names in: Latn, Cyrl, Grek, Arab, Hani, Thai
    lang: str  # ISO 639-2/T primary language
    style: str  # how its clerks romanise Cyrillic by ear: en, de, pl, fr, ro
    dial: str  # country calling code (E.164)
    mobile: str  # mobile prefixes after the calling code
    home: str  # landline area codes
    digits: int  # subscriber digits after a prefix
    cities: str  # "native=Latin|Latin;..." (the native form alone when it is Latin already)
    mail: str  # common e-mail domains
    source: int  # weight as the citizenship of a victim registered abroad (0 = seldom)


C = CountryFacts
COUNTRIES: dict[str, CountryFacts] = {
    "NLD": C("nl_NL", "Latn", "nld", "en", "31", "6", "10 20 30 70", 8,
             "Amsterdam;Rotterdam;Den Haag=The Hague;Utrecht;Eindhoven", "hotmail.nl ziggo.nl gmail.com", 1),
    "ROU": C("ro_RO", "Latn", "ron", "ro", "40", "72 73 74 75 76 77 78", "21 31 232 241 251", 7,
             "București=Bucuresti|Bucharest;Iași=Iasi;Constanța=Constanta;Craiova;Bacău=Bacau",
             "yahoo.ro yahoo.com gmail.com", 12),
    "UKR": C("uk_UA", "Cyrl", "ukr", "en", "380", "50 63 66 67 68 73 93 95 96 97 98 99", "44 48 57 32", 7,
             "Київ=Kyiv|Kiev;Одеса=Odesa|Odessa;Харків=Kharkiv;Львів=Lviv;Чернівці=Chernivtsi",
             "ukr.net i.ua gmail.com", 10),
    "DEU": C("de_DE", "Latn", "deu", "de", "49", "151 160 170 171 172 176 177 179", "30 40 69 89 221", 7,
             "Berlin;Hamburg;München=Muenchen|Munich;Köln=Koeln|Cologne;Frankfurt am Main", "gmx.de web.de", 1),
    "POL": C("pl_PL", "Latn", "pol", "pl", "48", "50 51 53 57 60 66 69 72 73 78 79 88", "22 12 42 71", 7,
             "Warszawa=Warsaw;Kraków=Krakow;Łódź=Lodz;Wrocław=Wroclaw;Gdańsk=Gdansk", "wp.pl onet.pl o2.pl", 4),
    "FRA": C("fr_FR", "Latn", "fra", "fr", "33", "6 7", "1 2 3 4 5", 8,
             "Paris;Marseille;Lyon;Lille;Nice", "orange.fr free.fr gmail.com", 1),
    "GBR": C("en_GB", "Latn", "eng", "en", "44", "74 75 77 78 79", "20 121 161 113", 8,
             "London;Birmingham;Manchester;Leeds;Glasgow", "gmail.com hotmail.co.uk", 1),
    "ITA": C("it_IT", "Latn", "ita", "en", "39", "320 328 333 338 340 347 348 349 366 388", "06 02 081 011", 7,
             "Roma=Rome;Milano=Milan;Napoli=Naples;Torino=Turin;Palermo", "libero.it gmail.com", 1),
    "ESP": C("es_ES", "Latn", "spa", "en", "34", "6 7", "91 93 96 95", 8,
             "Madrid;Barcelona;Valencia;Sevilla=Seville;Málaga=Malaga", "gmail.com hotmail.es", 1),
    "GRC": C("el_GR", "Grek", "ell", "en", "30", "69", "21 231 261", 8,
             "Αθήνα=Athina|Athens;Θεσσαλονίκη=Thessaloniki;Πάτρα=Patra;Ηράκλειο=Irakleio|Heraklion",
             "gmail.com yahoo.gr", 1),
    "BGR": C("bg_BG", "Cyrl", "bul", "en", "359", "87 88 89", "2 32 52 56", 7,
             "София=Sofia;Пловдив=Plovdiv;Варна=Varna;Бургас=Burgas;Сливен=Sliven", "abv.bg mail.bg", 8),
    "MDA": C("ro_RO", "Latn", "ron", "ro", "373", "60 67 68 69 78 79", "22 231 299", 6,
             "Chișinău=Chisinau|Kishinev;Bălți=Balti;Cahul;Ungheni;Orhei", "mail.ru gmail.com yahoo.com", 6),
    "RUS": C("ru_RU", "Cyrl", "rus", "en", "7", "9", "495 812 863", 7,
             "Москва=Moskva|Moscow;Санкт-Петербург=Sankt-Peterburg|Saint Petersburg;Краснодар=Krasnodar",
             "mail.ru yandex.ru", 3),
    "NGA": C("en_NG", "Latn", "eng", "en", "234", "803 806 703 706 813 816 810 903 802 808 812", "1 9 52", 7,
             "Lagos;Benin City;Abuja;Kano;Ibadan", "gmail.com yahoo.com", 10),
    "EGY": C("ar_EG", "Arab", "ara", "en", "20", "10 11 12 15", "2 3 88", 8,
             "القاهرة=Cairo|Al-Qahira;الإسكندرية=Alexandria;الجيزة=Giza;أسيوط=Asyut|Assiut", "gmail.com yahoo.com", 3),
    "SYR": C("ar_SA", "Arab", "ara", "en", "963", "93 94 95 96 98 99", "11 21 31", 7,
             "دمشق=Damascus|Dimashq;حلب=Aleppo|Halab;حمص=Homs;اللاذقية=Latakia", "gmail.com hotmail.com", 3),
    "MAR": C("ar_SA", "Arab", "ara", "fr", "212", "6 7", "522 537", 8,
             "الدار البيضاء=Casablanca;الرباط=Rabat;مراكش=Marrakech|Marrakesh;طنجة=Tanger|Tangier",
             "gmail.com menara.ma", 3),
    "CHN": C("zh_CN", "Hani", "zho", "en", "86", "13 15 17 18", "10 21 591", 9,
             "北京=Beijing;上海=Shanghai;广州=Guangzhou;福州=Fuzhou;温州=Wenzhou", "qq.com 163.com", 5),
    "THA": C("th_TH", "Thai", "tha", "en", "66", "6 8 9", "2 53 42", 8,
             "กรุงเทพมหานคร=Bangkok|Krung Thep;เชียงใหม่=Chiang Mai;อุดรธานี=Udon Thani;ขอนแก่น=Khon Kaen",
             "gmail.com hotmail.com", 4),
    "VNM": C("vi_VN", "Latn", "vie", "en", "84", "3 7 8 9", "24 28", 8,
             "Hà Nội=Ha Noi|Hanoi;Hải Phòng=Hai Phong;Nghệ An=Nghe An;Hà Tĩnh=Ha Tinh", "gmail.com yahoo.com.vn", 6),
    "PHL": C("en_PH", "Latn", "fil", "en", "63", "9", "2 32 82", 9,
             "Manila;Quezon City;Cebu City;Davao City", "gmail.com yahoo.com", 4),
    "IND": C("en_IN", "Latn", "hin", "en", "91", "6 7 8 9", "11 22 33 44", 9,
             "Mumbai;Delhi;Kolkata;Chennai;Hyderabad", "gmail.com rediffmail.com", 4),
    "BRA": C("pt_BR", "Latn", "por", "en", "55", "119 219 319 719 859", "11 21 31", 8,
             "São Paulo=Sao Paulo;Rio de Janeiro;Salvador;Fortaleza;Belo Horizonte", "gmail.com uol.com.br", 3),
    "COL": C("es_CO", "Latn", "spa", "en", "57", "300 301 310 311 313 315 316 317 320", "601 604", 7,
             "Bogotá=Bogota;Medellín=Medellin;Cali;Barranquilla;Pereira", "gmail.com hotmail.com", 3),
    "USA": C("en_US", "Latn", "eng", "en", "1", "201 212 305 415 617 702 713 917", "202 312 503", 7,
             "New York;Los Angeles;Houston;Chicago;Miami", "gmail.com yahoo.com outlook.com", 1),
}  # fmt: skip
CYRILLIC_LANG = {"UKR": "uk", "RUS": "ru", "BGR": "bg"}
PASSPORT_STYLE = {"uk": "ua", "ru": "ru", "bg": "bg"}


def variant_table(spec: str) -> list[tuple[str, tuple[str, ...]]]:
    """Parse ``native=Latin|Latin;...`` into (native, Latin spellings); a bare entry is its own spelling."""
    out = []
    for item in spec.split(";"):
        native, _, latin = item.partition("=")
        out.append((native, tuple(latin.split("|")) if latin else (native,)))
    return out


# Given names and surnames written in Arabic and Thai script, with their usual Latin spellings
# (the first is the passport form). anyascii alone would drop the Arabic vowels ("mhmd").
ARABIC = {
    "f": "مريم=Maryam|Mariam|Meryem;فاطمة=Fatima|Fatma|Fatimah;عائشة=Aisha|Aicha|Ayesha;خديجة=Khadija|Khadidja;"
    "نور=Nour|Noor|Nur;سارة=Sara|Sarah;ليلى=Layla|Leila|Laila;هدى=Huda|Houda|Hoda;أمينة=Amina|Aminah;"
    "زينب=Zainab|Zeinab|Zaynab;ياسمين=Yasmin|Yasmine|Jasmin;سلمى=Salma|Selma;هبة=Heba|Hiba;إيمان=Iman|Eman|Imane",
    "m": "محمد=Mohammed|Muhammad|Mohamed|Mohamad;أحمد=Ahmed|Ahmad;علي=Ali;عمر=Omar|Umar;يوسف=Youssef|Yusuf|Yousef;"
    "إبراهيم=Ibrahim|Ebrahim|Brahim;حسن=Hassan|Hasan;حسين=Hussein|Hussain;خالد=Khaled|Khalid;محمود=Mahmoud|Mahmud;"
    "مصطفى=Mustafa|Moustafa|Mostafa;عبدالله=Abdullah|Abdallah;كريم=Karim|Kareem;طارق=Tarek|Tariq;رشيد=Rachid|Rashid",
    "s": "الأحمد=Al-Ahmad|Alahmad|El Ahmad;حداد=Haddad|Hadad;المصري=Al-Masri|El-Masry|Elmasri;خليل=Khalil;"
    "عبدالرحمن=Abdelrahman|Abdul Rahman;الشامي=Al-Shami|Alshami|El Chami;بنعلي=Benali|Ben Ali;العلوي=Alaoui|Al-Alawi;"
    "السيد=El-Sayed|Elsayed|Al-Sayyid;منصور=Mansour|Mansur;سليمان=Suleiman|Sulaiman|Slimane;عثمان=Othman|Osman;"
    "الزين=El Zein|Al-Zein;نصر=Nasr|Nasser;الحسيني=Al-Husseini|El Husseini",
}
THAI = {
    "f": "สมหญิง=Somying;มาลี=Mali|Malee;สุดา=Suda;วิไล=Wilai|Vilai;พรทิพย์=Pornthip|Phonthip;อรุณี=Arunee|Aruni;"
    "กาญจนา=Kanchana|Kanjana;ศิริพร=Siriporn|Siriphon;ปราณี=Pranee|Prani;นิภา=Nipha|Nipa",
    "m": "สมชาย=Somchai|Somchay;สมศักดิ์=Somsak;ประเสริฐ=Prasert|Prasoet;สุรชัย=Surachai;วิชัย=Wichai|Vichai;"
    "ชัยวัฒน์=Chaiwat|Chaiwatt;บุญมี=Boonmee|Bunmi;อนันต์=Anan|Anant;ธนากร=Thanakorn|Tanakorn",
    "s": "ใจดี=Jaidee|Chaidi;แสงทอง=Saengthong|Sangthong;ศรีสุข=Srisuk|Sisuk;บุญมา=Boonma|Bunma;ทองดี=Thongdee|Tongdee;"
    "สุขสวัสดิ์=Suksawat|Sooksawad;วงศ์ใหญ่=Wongyai|Vongyai;พรหมมา=Promma|Phromma;รัตนวงศ์=Rattanawong|Ratanavong",
}
TABLE_NAMES = {"Arab": ARABIC, "Thai": THAI}
TABLE_SPELLINGS = {n: v for t in (ARABIC, THAI) for s in t.values() for n, v in variant_table(s)}

# Ukrainian given names and the Russian form a clerk who knows Russian may write instead (Olena -> Elena).
UK_TO_RU = {
    "Олена": "Елена", "Олександр": "Александр", "Олександра": "Александра", "Дмитро": "Дмитрий",
    "Сергій": "Сергей", "Микола": "Николай", "Андрій": "Андрей", "Володимир": "Владимир", "Євген": "Евгений",
    "Ганна": "Анна", "Катерина": "Екатерина", "Юлія": "Юлия", "Марія": "Мария", "Вікторія": "Виктория",
    "Світлана": "Светлана", "Наталія": "Наталья", "Тетяна": "Татьяна", "Ірина": "Ирина", "Іван": "Иван",
    "Петро": "Пётр", "Павло": "Павел", "Михайло": "Михаил", "Василь": "Василий", "Юрій": "Юрий",
    "Віталій": "Виталий", "Надія": "Надежда", "Софія": "София", "Олексій": "Алексей", "Григорій": "Григорий",
}  # fmt: skip

# Cyrillic romanisation: the English-ear base, then each style's changes. "a|b" is a at the start
# of a word or after a vowel, b elsewhere; "-" writes nothing.
_CYR_BASE = (
    "а:a б:b в:v г:g ґ:g д:d е:e ё:yo ж:zh з:z и:i і:i ї:yi й:y к:k л:l м:m н:n о:o п:p р:r с:s т:t у:u ф:f "
    "х:kh ц:ts ч:ch ш:sh щ:shch ъ:- ы:y ь:- э:e ю:yu я:ya є:ye ':- ʼ:- ’:-"
)
_CYR_STYLE = {
    "en": "е:ye|e",
    "de": "в:w е:je|e ё:jo ж:sch з:s й:j х:ch ц:z ч:tsch ш:sch щ:schtsch ю:ju я:ja є:je ї:ji",
    "pl": "в:w е:je|e ё:jo ж:ż й:j х:ch ц:c ч:cz ш:sz щ:szcz ю:ju я:ja є:je ї:ji",
    "fr": "ж:j й:i у:ou ч:tch ш:ch щ:chtch ю:iou я:ia ё:io є:ie ї:ii",
    "ro": "ж:j й:i х:h ц:ț ч:ci ш:ș щ:șci ю:iu я:ia ё:io ы:î є:ie ї:ii к:c",
    "ua": "г:h и:y є:ye|ie ї:yi|i й:y|i ю:yu|iu я:ya|ia",
    "ru": "ё:e й:i ю:iu я:ia ъ:ie",
    "bg": "х:h щ:sht ъ:a ь:y",
}
_CYR_LANG = {"uk": "г:h и:y е:e", "bg": "ъ:a", "ru": ""}
_CYR_SUFFIX = {"en": {"ий": "iy", "ій": "iy"}, "de": {"ий": "i", "ій": "ij"}, "pl": {"ий": "ij", "ій": "ij"}}
_CYR_BEFORE = {"ro": {"ке": "che", "ки": "chi", "ге": "ghe", "ги": "ghi"}}
_VOWELS = set("аеёиіїоуыэюяєьъ'aeiou")
_START_ONLY = {"ua"}  # the Ukrainian passport rule writes ye/yi/y/yu/ya only at the start of a word


def _pairs(spec: str) -> dict[str, tuple[str, str]]:
    out = {}
    for pair in spec.split():
        letter, _, latin = pair.partition(":")
        start, _, mid = latin.replace("-", "").partition("|")
        out[letter] = (start, mid or start)
    return out


@lru_cache(maxsize=64)
def _cyrillic_table(style: str, lang: str) -> dict[str, tuple[str, str]]:
    table = _pairs(_CYR_BASE)
    if style not in PASSPORT_STYLE.values():
        table.update(_pairs(_CYR_LANG.get(lang, "")))
    table.update(_pairs(_CYR_STYLE.get(style, "")))
    return table


def _title(text: str) -> str:
    """Capitalise each part of a name split by spaces or hyphens, lowering the rest."""
    return " ".join("-".join(p[:1].upper() + p[1:].lower() for p in w.split("-")) for w in text.split(" "))


@lru_cache(maxsize=1 << 16)
def romanise_cyrillic(name: str, *, lang: str, style: str) -> str:
    """Write a Cyrillic name in Latin letters, by a passport standard (ua, ru, bg) or a clerk's ear."""
    table, out_words = _cyrillic_table(style, lang), []
    for word in name.lower().split(" "):
        suffix = ""
        for ending, latin in _CYR_SUFFIX.get(style, {}).items():
            if word.endswith(ending) and len(word) > 3:
                word, suffix = word[: -len(ending)], latin
                break
        for cyr, latin in _CYR_BEFORE.get(style, {}).items():
            word = word.replace(cyr, latin)
        chars, prev = [], ""
        for ch in word:
            start, mid = table.get(ch, (ch, ch))
            at_start = not prev or prev == "-" or (prev in _VOWELS and style not in _START_ONLY)
            chars.append(start if at_start else mid)
            prev = ch
        out_words.append("".join(chars) + suffix)
    return _title(" ".join(out_words))


_GREEK_PAIRS = {
    "passport": "ου:ou αι:ai ει:ei οι:oi αυ:av ευ:ev γγ:ng γκ:gk μπ:mp ντ:nt θ:th χ:ch ψ:ps η:i υ:y ξ:x β:v",
    "phonetic": "ου:u αι:e ει:i οι:i αυ:af ευ:ef γγ:ng γκ:g μπ:b ντ:d θ:th χ:h ψ:ps η:i υ:i ξ:x β:v",
}


@lru_cache(maxsize=1 << 16)
def romanise_greek(name: str, *, style: str = "passport") -> str:
    """Write a Greek name in Latin letters (ELOT 743 for ``passport``, spoken forms for ``phonetic``)."""
    text = "".join(c for c in unicodedata.normalize("NFD", name.lower()) if not unicodedata.combining(c))
    for pair in _GREEK_PAIRS[style].split():
        greek, _, latin = pair.partition(":")
        text = text.replace(greek, latin)
    return _title(anyascii(text))


@lru_cache(maxsize=1 << 16)
def romanise_han(name: str, *, sep: str = "") -> str:
    """Pinyin of a Chinese name, syllables joined by ``sep`` (Xiuying, Xiu Ying, Xiu-Ying)."""
    syllables = [anyascii(ch).lower() for ch in name if not ch.isspace()]
    if sep:
        return sep.join(s.capitalize() for s in syllables)
    return "".join(syllables).capitalize()


# Latin to Cyrillic / Greek, for foreigners whom a Ukrainian, Russian, Bulgarian or Greek clerk writes in
# the local script. Longest sequences first.
_TO_CYR = (
    "sch:ш sh:ш ch:ч zh:ж kh:х ts:ц tz:ц ya:я yu:ю ye:е ph:ф th:т ck:к qu:кв ou:у oo:у ee:и x:кс "
    "a:а b:б c:к d:д e:е f:ф g:г h:х i:и j:ж k:к l:л m:м n:н o:о p:п q:к r:р s:с t:т u:у v:в w:в y:и z:з"
)
_TO_GREEK = (
    "th:θ ch:χ ph:φ ps:ψ sh:σ ou:ου oo:ου b:μπ d:ντ j:τζ x:ξ "
    "a:α c:κ e:ε f:φ g:γ h:χ i:ι k:κ l:λ m:μ n:ν o:ο p:π q:κ r:ρ s:σ t:τ u:ου v:β w:β y:ι z:ζ"
)


def _script_rules(spec: str) -> list[tuple[str, str]]:
    pairs = [tuple(p.split(":")) for p in spec.split()]
    return sorted(((a, b) for a, b in pairs), key=lambda p: -len(p[0]))


_RULES = {"Cyrl": _script_rules(_TO_CYR), "Grek": _script_rules(_TO_GREEK)}


@lru_cache(maxsize=1 << 16)
def latin_to_script(name: str, script: str) -> str:
    """Spell a Latin-script name in Cyrillic or Greek the way a clerk would by ear."""
    text = anyascii(name.replace("ș", "sh").replace("ț", "ts")).lower()
    rules, out, i = _RULES[script], [], 0
    while i < len(text):
        for latin, local in rules:
            if text.startswith(latin, i):
                out.append(local)
                i += len(latin)
                break
        else:
            out.append(text[i])
            i += 1
    result = "".join(out)
    if script == "Grek":
        result = " ".join(w[:-1] + "ς" if w.endswith("σ") else w for w in result.split(" "))
    return _title(result)


_LATIN_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(name: str, rng: random.Random) -> str:
    """One keying error: a substituted, deleted, transposed or doubled letter (never the first letter)."""
    if len(name) < 4:
        return name
    i, op = rng.randrange(1, len(name) - 1), rng.randrange(4)
    if op == 0:
        pool = _LATIN_LETTERS if name.isascii() else name.lower()
        return name[:i] + rng.choice(pool) + name[i + 1 :]
    if op == 1:
        return name[:i] + name[i + 1 :]
    if op == 2:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name[:i] + name[i] + name[i:]


_EAR_STYLES = ("en", "de", "pl", "fr", "ro")


def latinise(token: str, *, script: str, lang: str, style: str, alternate: bool, rng: random.Random) -> str:
    """A Latin spelling of one name: the passport form, or with ``alternate`` another usual one."""
    if script == "Cyrl":
        if not alternate:
            return romanise_cyrillic(token, lang=lang, style=PASSPORT_STYLE[lang])
        if lang == "uk" and rng.random() < 0.4:
            token, lang = UK_TO_RU.get(token, token), "ru"
        return romanise_cyrillic(
            token, lang=lang, style=style if rng.random() < 0.7 else rng.choice(_EAR_STYLES)
        )
    if script in TABLE_NAMES:
        spellings = TABLE_SPELLINGS.get(token) or (anyascii(token).capitalize(),)
        return rng.choice(spellings) if alternate else spellings[0]
    if script == "Hani":
        return romanise_han(token, sep=rng.choice(" -") if alternate and len(token) > 1 else "")
    if script == "Grek":
        return romanise_greek(token, style="phonetic" if alternate else "passport")
    return anyascii(token) if alternate else token


def write_name(
    token: str,
    *,
    home: str,
    register: str,
    variant: float,
    local_script: bool,
    respell: bool,
    rng: random.Random,
) -> str:
    """One name of a citizen of ``home`` as a clerk in ``register`` writes it.

    The clerk keeps a name already in their script (a foreign clerk may drop diacritics), else writes
    a Latin spelling (the passport form, or with probability ``variant`` another); with ``respell``
    a Cyrillic or Greek clerk then spells that Latin form again in their own letters.
    """
    script, lang = COUNTRIES[home].script, CYRILLIC_LANG.get(home, "")
    clerk_script = COUNTRIES[register].script if local_script else "Latn"
    alternate = variant > 0 and rng.random() < variant
    if script == clerk_script and (script != "Latn" or register == home or not alternate):
        if lang == "uk" and register != home and alternate:
            return UK_TO_RU.get(token, token)
        return token
    text = latinise(
        token, script=script, lang=lang, style=COUNTRIES[register].style, alternate=alternate, rng=rng
    )
    if clerk_script in _RULES and respell:
        return latin_to_script(text, clerk_script)
    return text


# Identifiers. Phones are E.164 numbers of the person's country; passport numbers follow
# (prefix, letters, digits), by default two letters and seven digits.
_MOBILE = {c: (f"+{f.dial}", tuple(f.mobile.split()), f.digits) for c, f in COUNTRIES.items()}
_LANDLINE = {c: (f"+{f.dial}", tuple(f.home.split()), f.digits) for c, f in COUNTRIES.items()}
_MAIL = {c: tuple(f.mail.split()) for c, f in COUNTRIES.items()}
_ID_PATTERN = {"UKR": ("", 2, 6), "RUS": ("", 0, 9), "CHN": ("E", 0, 8), "USA": ("", 0, 9), "GBR": ("", 0, 9)}


def _digits(rng: random.Random, n: int) -> str:
    return f"{int(rng.random() * 10**n):0{n}d}"


def phone_number(rng: random.Random, country: str, *, landline: bool = False) -> str:
    """A mobile (or landline) number of ``country`` in E.164 form, e.g. +380671234567."""
    dial, prefixes, digits = (_LANDLINE if landline else _MOBILE)[country]
    return dial + prefixes[int(rng.random() * len(prefixes))] + _digits(rng, digits)


def email_address(rng: random.Random, country: str, given: str, surname: str, birth: date) -> str:
    """An e-mail address made of the passport spelling of the names, at a domain common in ``country``."""
    script, lang = COUNTRIES[country].script, CYRILLIC_LANG.get(country, "")
    first, last = _mail_name(given, script, lang), _mail_name(surname, script, lang)
    form = int(rng.random() * 4)
    if form == 0:
        local = f"{first}.{last}"
    elif form == 1:
        local = f"{first}{last}{birth.year % 100:02d}"
    else:
        local = f"{first[:1]}{last}" if form == 2 else f"{first}_{last}"
    number = str(int(rng.random() * 100)) if rng.random() < 0.3 else ""
    domains = _MAIL[country]
    return f"{local}{number}@{domains[int(rng.random() * len(domains))]}"


@lru_cache(maxsize=1 << 16)
def _mail_name(name: str, script: str, lang: str) -> str:
    latin = latinise(name, script=script, lang=lang, style="en", alternate=False, rng=random.Random(0))  # noqa: S311
    return re.sub(r"[^a-z]", "", anyascii(latin).lower())


def document_number(rng: random.Random, country: str) -> str:
    """A passport-like number issued by ``country``: a fixed prefix, capital letters, then digits."""
    prefix, letters, digits = _ID_PATTERN.get(country, ("", 2, 7))
    head = "".join([string.ascii_uppercase[int(rng.random() * 26)] for _ in range(letters)])
    return prefix + head + _digits(rng, digits)
