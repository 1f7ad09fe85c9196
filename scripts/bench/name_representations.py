"""Which name representation tells the same person from different people, across scripts?

    .venv/bin/python scripts/bench/name_representations.py [--records 1500] [--seed 11] [--profiles typos,scripts,mixed]

On synthetic federations (node.services.synth, with ground truth) it takes every pair of records of
the same person held by two different countries ("true pairs") and as many random pairs of records of
different people from two countries ("non-pairs"), and compares their first + family names (middle
names left out, as the exact selectors do) in five representations:

    anyascii     anyascii of the text, lower-cased, split on non-letters (the plain baseline)
    tokens       protocol.identifiers transliteration (NameForms.tokens, particles dropped)
    canonical    variant clusters and spelling fold (NameForms.canonical_tokens)
    skeleton     consonant skeletons of the canonical tokens
    phonetic     sound-class keys of the canonical tokens

For each it prints the share of pairs whose sorted token sets are equal and the mean Dice coefficient of
their character-bigram sets, for true pairs and non-pairs. Then: how often name+birth-date selectors
of each form join true pairs, how often they join different people, and persons per second.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from anyascii import anyascii

from node.services.synth import generate_federation
from protocol.identifiers import (
    exact_selectors,
    name_forms,
    names,
    normalise_phone,
    phonetic,
    scripts,
    variants,
)
from protocol.identifiers.scripts import script_of

COUNTRIES = ("NLD", "ROU", "UKR", "DEU", "POL", "GRC", "BGR", "RUS", "MDA", "EGY", "SYR", "MAR", "CHN", "THA",
             "VNM", "NGA", "ITA", "FRA")  # fmt: skip
Row = dict[str, object]
Rep = Callable[[Row], tuple[str, ...]]


def _anyascii(row: Row) -> tuple[str, ...]:
    text = " ".join(str(row.get(c) or "") for c in ("prs_FirstName", "prs_SecondName"))
    return tuple(t for t in re.split(r"[^a-z]+", anyascii(text).lower()) if t)


def _forms(row: Row) -> names.NameForms:
    return name_forms(str(row.get("prs_FirstName") or ""), None, str(row.get("prs_SecondName") or ""))


REPRESENTATIONS: dict[str, Rep] = {
    "anyascii": _anyascii,
    "tokens": lambda r: tuple(t for t in _forms(r).tokens if t not in _forms(r).particles),
    "canonical": lambda r: _forms(r).canonical_tokens,
    "skeleton": lambda r: _forms(r).skeletons,
    "phonetic": lambda r: _forms(r).phonetic,
}


def bigrams(tokens: Sequence[str]) -> set[str]:
    """Character bigrams of every token, padded with "_" at both ends."""
    grams: set[str] = set()
    for t in tokens:
        padded = f"_{t}_"
        grams.update(padded[i : i + 2] for i in range(len(padded) - 1))
    return grams


def dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def script_class(a: Row, b: Row) -> str:
    """The non-Latin script either record is written in (Latin if both are Latin)."""
    for row in (a, b):
        for col in ("prs_FirstName", "prs_SecondName"):
            for ch in str(row.get(col) or ""):
                s = script_of(ch)
                if ch.isalpha() and s not in ("Latn", "Other"):
                    return s
    return "Latn"


def people(federation: dict[str, list[Row]]) -> list[tuple[str, Row]]:
    """One row per (country, local person id)."""
    seen: dict[tuple[str, object], Row] = {}
    for country, rows in federation.items():
        for row in rows:
            seen.setdefault((country, row["prs_PersonId"]), row)
    return [(country, row) for (country, _), row in seen.items()]


def pairs(
    persons: list[tuple[str, Row]], rng: random.Random
) -> tuple[list[tuple[Row, Row]], list[tuple[Row, Row]]]:
    by_id: dict[object, list[tuple[str, Row]]] = defaultdict(list)
    for country, row in persons:
        by_id[row["synth_TrueId"]].append((country, row))
    true = [
        (a, b)
        for group in by_id.values()
        for i, (ca, a) in enumerate(group)
        for cb, b in group[i + 1 :]
        if ca != cb
    ]
    non: list[tuple[Row, Row]] = []
    while len(non) < max(len(true), 2000):
        (ca, a), (cb, b) = rng.sample(persons, 2)
        if ca != cb and a["synth_TrueId"] != b["synth_TrueId"]:
            non.append((a, b))
    return true, non


def measure(rep: Rep, pair_list: list[tuple[Row, Row]]) -> tuple[float, float]:
    equal = total = 0.0
    for a, b in pair_list:
        ta, tb = rep(a), rep(b)
        equal += sorted(set(ta)) == sorted(set(tb)) and bool(ta)
        total += dice(bigrams(ta), bigrams(tb))
    n = max(len(pair_list), 1)
    return equal / n, total / n


def representation_table(profile: str, true: list[tuple[Row, Row]], non: list[tuple[Row, Row]]) -> None:
    print(f"\n## profile {profile}: {len(true)} true pairs, {len(non)} non-pairs (first + family name)")
    print(f"{'representation':<12} {'equal true':>10} {'equal non':>10} {'dice true':>10} {'dice non':>10}")
    for name, rep in REPRESENTATIONS.items():
        eq_t, dice_t = measure(rep, true)
        eq_n, dice_n = measure(rep, non)
        print(f"{name:<12} {eq_t:>10.3f} {eq_n:>10.4f} {dice_t:>10.3f} {dice_n:>10.3f}")
    by_script: dict[str, list[tuple[Row, Row]]] = defaultdict(list)
    for a, b in true:
        by_script[script_class(a, b)].append((a, b))
    print("equal sorted sets of true pairs, by script:")
    header = " ".join(f"{n:>10}" for n in REPRESENTATIONS)
    print(f"{'script':<6} {'pairs':>6} {header}")
    for script, group in sorted(by_script.items(), key=lambda kv: -len(kv[1])):
        shares = " ".join(f"{measure(rep, group)[0]:>10.3f}" for rep in REPRESENTATIONS.values())
        print(f"{script:<6} {len(group):>6} {shares}")


def selector_table(persons: list[tuple[str, Row]], true: list[tuple[Row, Row]]) -> None:
    """Recall of name_dob selectors on true pairs, and selector values shared by different people."""
    sel: dict[int, dict[str, set[bytes]]] = {}
    holders: dict[bytes, set[object]] = defaultdict(set)
    for _, row in persons:
        forms: dict[str, set[bytes]] = defaultdict(set)
        for s in exact_selectors(row):
            if s.kind == "name_dob":
                forms[s.form + ("+swap" if s.swapped else "")].add(s.value)
                holders[s.value].add(row["synth_TrueId"])
        sel[id(row)] = forms
    keys = ("canonical", "skeleton", "canonical+swap", "skeleton+swap")
    joined = Counter[str]()
    for a, b in true:
        fa, fb = sel[id(a)], sel[id(b)]
        for k in keys:
            base = k.split("+")[0]
            if k.endswith("swap"):
                hit = bool(fa.get(k, set()) & fb.get(base, set()) or fa.get(base, set()) & fb.get(k, set()))
            else:
                hit = bool(fa.get(k, set()) & fb.get(k, set()))
            joined[k] += hit
        joined["any"] += bool(set().union(*fa.values()) & set().union(*fb.values())) if fa and fb else 0
    shared = Counter[str]()
    total = Counter[str]()
    for value, ids in holders.items():
        form = value.split(b"\x00")[2].split(b":")[0].decode()
        total[form] += 1
        shared[form] += len(ids) > 1
    print(f"\n   name_dob selectors: true pairs joined (of {len(true)}), and values held by >1 person")
    for k in (*keys, "any"):
        print(f"   {k:<16} joins {joined[k] / max(len(true), 1):.3f} of true pairs")
    for form in ("canonical", "skeleton"):
        print(f"   {form:<16} {shared[form]} of {total[form]} values shared by different people")


def _clear_caches() -> None:
    caches = (names._field, scripts.romanise_word, phonetic.fold, phonetic.skeleton, phonetic.phonetic_key,
              variants.canonical)  # fmt: skip
    for cache in caches:
        cache.cache_clear()


def _rate(rows: list[Row], work: Callable[[Row], object]) -> float:
    """Rows per CPU second of this process (not wall time: other processes on the machine do not count)."""
    start = time.process_time()
    for row in rows:
        work(row)
    return len(rows) / (time.process_time() - start)


def speed(persons: list[tuple[str, Row]]) -> None:
    """Persons per CPU second on one core: every name new (caches emptied), then every name seen before."""
    rows = [row for _, row in persons]

    def forms(row: Row) -> object:
        first, middle, second = (
            str(row.get(c) or "") for c in ("prs_FirstName", "prs_MiddleName", "prs_SecondName")
        )
        return name_forms(first, middle, second)

    _clear_caches()
    distinct = len({(r.get("prs_FirstName"), r.get("prs_MiddleName"), r.get("prs_SecondName")) for r in rows})
    print(f"   {len(rows)} persons, {distinct} distinct names")
    print(f"   name_forms, caches empty at start: {_rate(rows, forms):,.0f} persons/s")
    print(f"   name_forms, every name seen before: {_rate(rows, forms):,.0f} persons/s")
    _clear_caches()
    normalise_phone.cache_clear()
    selectors = _rate(rows, lambda r: exact_selectors(r, default_region="NLD"))
    print(f"   exact_selectors, caches empty at start: {selectors:,.0f} persons/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1500, help="records per country")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profiles", default="typos,scripts,mixed")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"# name representations: {len(COUNTRIES)} countries x {args.records} records, seed {args.seed}")
    last: list[tuple[str, Row]] = []
    for profile in args.profiles.split(","):
        federation = generate_federation(
            COUNTRIES, args.records, seed=args.seed, overlap=0.3, difficulty=profile, include_truth=True
        )
        persons = people(federation)
        true, non = pairs(persons, rng)
        representation_table(profile, true, non)
        selector_table(persons, true)
        last = persons
    print("\n## speed (one core)")
    speed(last)


if __name__ == "__main__":
    main()
