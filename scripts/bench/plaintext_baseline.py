#!/usr/bin/env python3
"""Plaintext reference for issue 3: Splink 4 on the same synthetic registers as linkage_quality.py.

Issue 3 asks Palermo to reach the F1 of the best plaintext probabilistic linker. Published figures
come from other data; this script measures a plaintext linker on exactly the registers that
scripts/bench/linkage_quality.py scores Palermo on (same profiles, country pairs, sizes, overlap and
seeds, built with its own functions), and runs Palermo's pipeline in the same process through
linkage_quality.run(), checking that both see identical registers and the same true pairs.

The plaintext linker is Splink 4 (DuckDB backend) with an expert setup, in two variants:

* "raw": names and city as the register wrote them (only Unicode-normalised, case-folded and
  trimmed), birth dates as written. In the scripts profile (Cyrillic, Arabic, Chinese, Thai, Greek
  against Latin) raw names cannot match, so this variant shows what normalisation buys.
* "norm": the forms Palermo computes (node.matching.features): canonical given and family names
  with their consonant skeletons, the birth date with a 1 January placeholder read as year only,
  and the canonical city. Splink then compares exactly what Palermo encodes, in the clear.

Both variants get the same cleaned identifiers (document number with its issuing country, phones in
E.164, e-mail; protocol.identifiers), as any careful plaintext setup would have.

Model (link_only): given name and surname each exact with term-frequency adjustment, skeleton equal
(norm only), Jaro-Winkler >= 0.92 and >= 0.88, written in the other name field, Jaro-Winkler >= 0.7;
birth date exact (term frequencies), day and month swapped, Levenshtein 1, year and month, year;
gender; citizenship (any shared); city exact (term frequencies) or Jaro-Winkler >= 0.88; document,
phone (any shared), e-mail exact. Candidate pairs: equal given name, or surname, or full birth date,
or first three letters of both names, or a name written in the other field, or a shared document,
e-mail or phone (and for norm: equal given-name skeleton, or surname skeleton and birth year). The
share of matches from deterministic rules on document, e-mail and phone, with their recall
estimated from the fill rates alone; u by random sampling (5 million pairs); m by EM over blocks on
full birth date, document and phone (see EM_RULES). No ground truth enters the fit.

Printed per profile, summed over its country pairs and seeds: precision / recall / F1 at match
probability >= 0.99 (Palermo's "likely" band) and >= 0.5 (Palermo's "likely" + "possible"), the best
F1 over all thresholds with its threshold, blocking recall and seconds, for Palermo, for Splink's
pairwise predictions as Splink gives them, and for Splink with one partner per person ("1:1",
greedy by falling probability, as Palermo's engine assigns). Then the true pairs each linker misses
at >= 0.99, by what the pair has in common: a shared identifier, how its birth dates agree
(date_agreement), whether its normalised names agree (in either field).

Setup, in a separate virtual environment (the project's own .venv stays as it is):

    python3 -m venv /tmp/baseline-venv
    /tmp/baseline-venv/bin/pip install -e '.[baseline]'      # the project plus splink>=4,<5
    /tmp/baseline-venv/bin/python scripts/bench/plaintext_baseline.py [--persons 3000]
        [--seeds 1,2] [--profiles typos,scripts,partial,dates,mixed] [--pairs ROU-NLD,...]
        [--overlap 0.3] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import linkage_quality as lq

from node.matching.features import features, one_per_person
from node.services.synth import generate_federation
from protocol.identifiers import (
    date_agreement,
    normalise_document,
    normalise_email,
    normalise_phones,
    parse_birthdate,
)

try:
    import duckdb
    import pandas as pd
    import splink
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
except ImportError as error:
    sys.exit(
        f"plaintext_baseline.py needs Splink 4 ({error}). Install it in a separate environment:\n"
        "    python3 -m venv /tmp/baseline-venv && /tmp/baseline-venv/bin/pip install -e '.[baseline]'\n"
        "and run this script with /tmp/baseline-venv/bin/python."
    )

Pair = tuple[int, int]
Row = dict[str, Any]
People = Sequence[Mapping[str, Any]]
VARIANTS = ("raw", "norm")
THRESHOLDS = {"likely": 0.99, "both": 0.5}  # Palermo's bands: likely >= 0.99, possible >= 0.5
IDS = ("document", "phones", "email")
LINKERS = {
    "palermo": "Palermo (private)",
    "splink_raw": "Splink raw",
    "splink_raw_1to1": "Splink raw, 1:1",
    "splink_norm": "Splink norm",
    "splink_norm_1to1": "Splink norm, 1:1",
}
UNKNOWN_GENDER = ("unknown", "nonspecifiedunknown")

# m by EM over these blocks. Splink's tutorials also block on given name and surname, but with the
# small name pools of these registers that block is full of same-name strangers, and EM there put
# m of "birth dates differ" at 0.13-0.18 (scripts, CHN-DEU), where the generator never changes a
# date between registers (true m: 0); so names are trained on the birth-date block, and the rest on
# the identifier blocks, where nearly every pair is a match.
EM_RULES = (block_on("dob_full"), block_on("document"), block_on("phone"))


# ---------------------------------------------------------------------------------------------
# Input tables


def _text(person: Mapping[str, Any], column: str) -> str:
    value = person.get(column)
    return value.strip() if isinstance(value, str) else ""


def _fold(text: str) -> str | None:
    """As written, only Unicode-normalised (NFKC), case-folded and with single spaces."""
    out = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return out or None


def _identifiers(person: Mapping[str, Any], country: str) -> Row:
    """Document (with issuing country), phones in E.164 and e-mail, cleaned as Palermo cleans them."""
    phones: list[str] = []
    for column in ("prs_MobilePhone", "prs_HomePhone"):
        for number in normalise_phones(_text(person, column), default_region=country):
            if number not in phones:
                phones.append(number)
    return {
        "document": normalise_document(
            _text(person, "prs_IdentityNumber"), _text(person, "prs_IdentityCountry")
        ),
        "phones": phones or None,
        "phone": phones[0] if phones else None,  # for an EM block: EM takes no exploding rule
        "email": normalise_email(_text(person, "prs_Email")),
    }


def _dates(dob: str | None) -> Row:
    return {
        "dob": dob,
        "dob_year": dob[:4] if dob else None,
        "dob_full": dob if dob and len(dob) == 10 else None,
    }


def raw_row(person: Mapping[str, Any], country: str) -> Row:
    citizenship = person.get("prs_Citizenship")
    codes = citizenship.split(";") if isinstance(citizenship, str) else citizenship or []
    gender = _text(person, "prs_Gender").lower()
    return {
        "first_name": _fold(_text(person, "prs_FirstName")),
        "surname": _fold(_text(person, "prs_SecondName")),
        **_dates(_text(person, "prs_Birthdate") or None),
        "gender": gender if gender and gender not in UNKNOWN_GENDER else None,
        "citizenship": sorted({c.strip().upper() for c in codes if isinstance(c, str) and c.strip()}) or None,
        "city": _fold(_text(person, "prs_MailingCity")),
        **_identifiers(person, country),
    }


def norm_row(person: Mapping[str, Any], country: str) -> Row:
    f = features(person, default_region=country).fields
    given, family = f.get("given", []), f.get("family", [])  # [canonical, skeleton] or [canonical]
    return {
        "first_name": given[0] if given else None,
        "surname": family[0] if family else None,
        "first_skel": given[-1] or None if given else None,
        "surname_skel": family[-1] or None if family else None,
        **_dates(f["birth"][0] if "birth" in f else None),
        "gender": f["gender"][0] if "gender" in f else None,
        "citizenship": sorted(f["citizenship"]) if "citizenship" in f else None,
        "city": f["place"][0] if "place" in f else None,
        **_identifiers(person, country),
    }


def rows(people: People, country: str, variant: str) -> list[Row]:
    make = raw_row if variant == "raw" else norm_row
    return [{"unique_id": i, **make(p, country)} for i, p in enumerate(people)]


# ---------------------------------------------------------------------------------------------
# Splink model


def name_comparison(col: str, other: str, skeleton: str | None) -> cl.CustomComparison:
    """Splink's NameComparison (exact with term frequencies, Jaro-Winkler 0.92, 0.88, 0.7) with a
    skeleton level (norm only) and a level for the name written in the other field:
    ``first_name_l = surname_r`` here and ``surname_l = first_name_r`` in the surname comparison, so
    a swapped pair agrees in both, each half with its own u (one condition in both comparisons would
    count a single coincidence twice)."""
    levels: list[Any] = [cll.NullLevel(col), cll.ExactMatchLevel(col).configure(tf_adjustment_column=col)]
    if skeleton:
        levels.append(cll.ExactMatchLevel(skeleton).configure(label_for_charts=f"{skeleton} equal"))
    levels += [
        cll.JaroWinklerLevel(col, 0.92),
        cll.JaroWinklerLevel(col, 0.88),
        cll.CustomLevel(f"{col}_l = {other}_r", label_for_charts=f"{col} written as {other}"),
        cll.JaroWinklerLevel(col, 0.7),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(levels, output_column_name=col)


def dob_comparison() -> cl.CustomComparison:
    """Birth dates as ISO text of any precision ("1979", "1979-08", "1979-08-11"); ``dob_full`` holds
    full dates only, so that the exact level (with term frequencies) needs a full date."""
    full = "length(dob_l) = 10 AND length(dob_r) = 10"
    return cl.CustomComparison(
        [
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob_full").configure(tf_adjustment_column="dob_full"),
            cll.CustomLevel(
                f"{full} AND substr(dob_l, 1, 4) = substr(dob_r, 1, 4)"
                " AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.CustomLevel(f"{full} AND levenshtein(dob_l, dob_r) <= 1", label_for_charts="levenshtein 1"),
            cll.CustomLevel(
                "length(dob_l) >= 7 AND length(dob_r) >= 7 AND substr(dob_l, 1, 7) = substr(dob_r, 1, 7)",
                label_for_charts="year and month",
            ),
            cll.CustomLevel("substr(dob_l, 1, 4) = substr(dob_r, 1, 4)", label_for_charts="year"),
            cll.ElseLevel(),
        ],
        output_column_name="dob",
    )


def settings(variant: str) -> SettingsCreator:
    skel = variant == "norm"
    blocking: list[Any] = [
        block_on("first_name"),
        block_on("surname"),
        block_on("dob_full"),
        block_on("substr(first_name, 1, 3)", "substr(surname, 1, 3)"),
        "l.first_name = r.surname",
        "l.surname = r.first_name",
        block_on("document"),
        block_on("email"),
        block_on("phones", arrays_to_explode=["phones"]),
    ]
    if skel:
        blocking += [block_on("first_skel"), block_on("surname_skel", "dob_year")]
    city = [
        cll.NullLevel("city"),
        cll.ExactMatchLevel("city").configure(tf_adjustment_column="city"),
        cll.JaroWinklerLevel("city", 0.88),
        cll.ElseLevel(),
    ]
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=[
            name_comparison("first_name", "surname", "first_skel" if skel else None),
            name_comparison("surname", "first_name", "surname_skel" if skel else None),
            dob_comparison(),
            cl.ExactMatch("gender"),
            cl.ArrayIntersectAtSizes("citizenship", [1]),
            cl.CustomComparison(city, output_column_name="city"),
            cl.ExactMatch("document"),
            cl.ArrayIntersectAtSizes("phones", [1]),
            cl.ExactMatch("email"),
        ],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def identifier_recall(ra: Sequence[Row], rb: Sequence[Row]) -> float:
    """The share of true pairs that share a document, phone or e-mail, from fill rates alone: a
    person's identifier is taken to be the same on both sides whenever both registers hold it."""
    miss = 1.0
    for col in IDS:
        fill_a = sum(r[col] is not None for r in ra) / max(1, len(ra))
        fill_b = sum(r[col] is not None for r in rb) / max(1, len(rb))
        miss *= 1 - fill_a * fill_b
    return min(1.0, max(0.05, 1 - miss))


@dataclass
class SplinkRun:
    scores: dict[Pair, float]
    prior: float
    recall_guess: float
    seconds: float
    notes: list[str] = field(default_factory=list)


def splink_link(ra: Sequence[Row], rb: Sequence[Row], variant: str, seed: int, threads: int) -> SplinkRun:
    """Fit and predict; every blocked pair with its match probability, a in the first place."""
    start = time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    linker = Linker(
        [pd.DataFrame(ra), pd.DataFrame(rb)],
        settings(variant),
        DuckDBAPI(con),
        set_up_basic_logging=False,
        input_table_aliases=["a", "b"],
    )
    recall = identifier_recall(ra, rb)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("document"), block_on("email"), block_on("phones", arrays_to_explode=["phones"])],
        recall=recall,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    notes: list[str] = []
    for rule in EM_RULES:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except Exception as error:  # a block without pairs: go on with the other blocks
            notes.append(f"EM on {rule.get_blocking_rule('duckdb').blocking_rule_sql}: {error}")
    prior = float(linker.misc.save_model_to_json()["probability_two_random_records_match"])
    frame = linker.inference.predict().as_pandas_dataframe()
    con.close()
    flip = frame["source_dataset_l"] != "a"
    ia = frame["unique_id_l"].where(~flip, frame["unique_id_r"]).astype(int).tolist()
    ib = frame["unique_id_r"].where(~flip, frame["unique_id_l"]).astype(int).tolist()
    probability = frame["match_probability"].astype(float).tolist()
    scores = dict(zip(zip(ia, ib, strict=True), probability, strict=True))
    return SplinkRun(scores, prior, recall, time.perf_counter() - start, notes)


# ---------------------------------------------------------------------------------------------
# Scoring against the truth


def one_to_one(scores: Mapping[Pair, float]) -> dict[Pair, float]:
    """Each person's best partner only: greedy by falling probability."""
    left: set[int] = set()
    right: set[int] = set()
    out: dict[Pair, float] = {}
    for (i, j), p in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        if i not in left and j not in right:
            left.add(i)
            right.add(j)
            out[(i, j)] = p
    return out


@dataclass
class Counts:
    """One linker's counts, summed over runs."""

    found: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in THRESHOLDS})
    scored: list[tuple[float, bool]] = field(default_factory=list)
    blocked_true: int = 0
    missed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, scores: Mapping[Pair, float], true: set[Pair], reasons: Mapping[Pair, str]) -> None:
        for band, threshold in THRESHOLDS.items():
            got = {p for p, s in scores.items() if s >= threshold}
            self.found[band][0] += len(got & true)
            self.found[band][1] += len(got)
            if band == "likely":
                self.missed.update(reasons[p] for p in true - got)
        self.scored += [(s, p in true) for p, s in scores.items()]


def _prf(tp: int, n: int, true: int) -> dict[str, float]:
    p, r = tp / n if n else 1.0, tp / true if true else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def best_f1(scored: list[tuple[float, bool]], true: int) -> dict[str, float]:
    """The best F1 over all thresholds (one threshold for all runs of a profile), and that threshold."""
    best = {"precision": 1.0, "recall": 0.0, "f1": 0.0, "threshold": 1.0}
    ranked = sorted(scored, key=lambda x: -x[0])
    tp = 0
    for n, (s, hit) in enumerate(ranked, 1):
        tp += hit
        if n < len(ranked) and ranked[n][0] == s:
            continue
        f = _prf(tp, n, true)
        if f["f1"] > best["f1"]:
            best = {**f, "threshold": s}
    return best


def reason(pa: People, pb: People, na: Sequence[Row], nb: Sequence[Row], pair: Pair) -> str:
    """What a true pair has in common: a shared identifier, how its birth dates agree, whether its
    normalised names agree (in either field)."""
    i, j = pair
    ra, rb = na[i], nb[j]
    shared = (
        (ra["document"] is not None and ra["document"] == rb["document"])
        or (ra["email"] is not None and ra["email"] == rb["email"])
        or bool(set(ra["phones"] or ()) & set(rb["phones"] or ()))
    )
    dates = date_agreement(
        parse_birthdate(_text(pa[i], "prs_Birthdate")), parse_birthdate(_text(pb[j], "prs_Birthdate"))
    )
    dob = {
        "exact": "dob equal",
        "swap": "dob day/month swapped",
        "year_month": "dob partial",
        "year": "dob partial",
    }
    names_a = {ra["first_name"], ra["surname"]} - {None}
    names_b = {rb["first_name"], rb["surname"]} - {None}
    return "; ".join(
        (
            "id shared" if shared else "no id",
            dob.get(dates, "dob missing" if dates == "missing" else "dob differs"),
            "names equal" if names_a and names_a == names_b else "names differ",
        )
    )


# ---------------------------------------------------------------------------------------------
# Runs


@dataclass
class Captured:
    candidates: dict[Pair, tuple[float, str]] = field(default_factory=dict)
    ids: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))
    true: set[Pair] = field(default_factory=set)


def palermo(profile: str, countries: tuple[str, str], seed: int, args: argparse.Namespace) -> tuple[lq.Tally, Captured]:  # fmt: skip
    """linkage_quality.run() itself; its --verbose hook (show) is swapped for one that keeps the
    pairs the engine reported, so that they can be set against Splink's pair by pair."""
    got = Captured()

    def capture(label: str, result: Any, pa: People, pb: People, true: set[Pair]) -> None:
        got.candidates = {(c.a, c.b): (float(c.probability), c.band) for c in result.candidates}
        got.ids = ([str(p["prs_PersonId"]) for p in pa], [str(p["prs_PersonId"]) for p in pb])
        got.true = set(true)

    run_args = argparse.Namespace(persons=args.persons, overlap=args.overlap, all_pairs=False, verbose=True)
    shown, lq.show = lq.show, capture
    try:
        tally = lq.run(profile, countries, seed, run_args)
    finally:
        lq.show = shown
    return tally, got


def one_run(profile: str, countries: tuple[str, str], seed: int, args: argparse.Namespace, totals: Mapping[str, Counts], by_reason: Counter[str]) -> dict[str, Any]:  # fmt: skip
    """One profile, country pair and seed: Palermo and both Splink variants on the same registers."""
    fed = generate_federation(
        countries, args.persons, seed=seed, overlap=args.overlap, difficulty=profile, include_truth=True
    )
    pa, pb = one_per_person(fed[countries[0]]), one_per_person(fed[countries[1]])
    true = lq.truth(pa, pb)
    tally, got = palermo(profile, countries, seed, args)
    ids = ([str(p["prs_PersonId"]) for p in pa], [str(p["prs_PersonId"]) for p in pb])
    if got.ids != ids or got.true != true:
        raise SystemExit(
            f"{profile} {'-'.join(countries)} seed {seed}: registers differ from linkage_quality's"
        )
    norm = rows(pa, countries[0], "norm"), rows(pb, countries[1], "norm")
    reasons = {p: reason(pa, pb, norm[0], norm[1], p) for p in true}
    by_reason.update(reasons.values())
    # Palermo's bands as scores: a pair that is "possible" for a strong selector alone counts as 0.5
    floor = {"likely": THRESHOLDS["likely"], "possible": THRESHOLDS["both"]}
    pal = {p: max(prob, floor[band]) for p, (prob, band) in got.candidates.items()}
    totals["palermo"].add(pal, true, reasons)
    totals["palermo"].blocked_true += tally.blocked_true
    totals["palermo"].seconds += tally.seconds
    out: dict[str, Any] = {
        "pair": "-".join(countries),
        "seed": seed,
        "persons": [len(pa), len(pb)],
        "true_pairs": len(true),
        "true_prior": len(true) / max(1, len(pa) * len(pb)),
        "palermo_seconds": round(tally.seconds, 1),
    }
    for variant in VARIANTS:
        ra, rb = norm if variant == "norm" else (rows(pa, countries[0], "raw"), rows(pb, countries[1], "raw"))
        result = splink_link(ra, rb, variant, seed, args.threads)
        blocked_true = len(true & result.scores.keys())
        for name, scores in ((f"splink_{variant}", result.scores), (f"splink_{variant}_1to1", one_to_one(result.scores))):  # fmt: skip
            totals[name].add(scores, true, reasons)
            totals[name].blocked_true += blocked_true
            totals[name].seconds += result.seconds
        out[variant] = {
            "prior": result.prior,
            "identifier_recall_guess": round(result.recall_guess, 4),
            "blocked_pairs": len(result.scores),
            "seconds": round(result.seconds, 1),
            **({"notes": result.notes} if result.notes else {}),
        }
    return out


def figures(c: Counts, true: int) -> dict[str, Any]:
    out: dict[str, Any] = {band: _prf(tp, n, true) for band, (tp, n) in c.found.items()}
    out["best"] = best_f1(c.scored, true)
    out["blocking_recall"] = c.blocked_true / true if true else 1.0
    out["missed_likely"] = dict(c.missed.most_common())
    out["seconds"] = round(c.seconds, 1)
    return out


def _prf_text(x: Mapping[str, float]) -> str:
    return f"{x['precision']:.4f} / {x['recall']:.4f} / {x['f1']:.4f}"


def print_profile(profile: str, r: Mapping[str, Any]) -> None:
    priors = {v: sum(run[v]["prior"] for run in r["runs"]) / len(r["runs"]) for v in VARIANTS}
    print(
        f"\n{profile}: {', '.join(r['pairs'])} x seeds {','.join(map(str, r['seeds']))}; "
        f"{r['persons_per_side']} persons per side, {r['true_pairs']} true pairs; share of matches "
        f"{r['true_prior']:.2e}, Splink's estimate {priors['raw']:.2e} (raw) {priors['norm']:.2e} (norm)"
    )
    print(
        f"  {'':18s} {'>= 0.99: P / R / F1':>26s}   {'>= 0.5: P / R / F1':>26s}   "
        f"{'best F1 (at p)':>16s}  {'block':>6s} {'s':>5s}"
    )
    for name, label in LINKERS.items():
        f = r[name]
        best = f"{f['best']['f1']:.4f} ({f['best']['threshold']:.3f})"
        print(
            f"  {label:18s} {_prf_text(f['likely']):>26s}   {_prf_text(f['both']):>26s}   {best:>16s}  "
            f"{f['blocking_recall']:.4f} {f['seconds']:5.0f}"
        )
    heads = ("Palermo", "raw", "raw1:1", "norm", "norm1:1")
    print(
        f"  true pairs missed at >= 0.99, by what they have in common  {' '.join(f'{h:>7s}' for h in heads)}  of"
    )
    missed: Counter[str] = Counter()
    for name in LINKERS:
        missed.update(r[name]["missed_likely"])
    for why, _ in missed.most_common(8):
        counts = " ".join(f"{r[name]['missed_likely'].get(why, 0):7d}" for name in LINKERS)
        print(f"    {why:56s} {counts}  {r['true_by_reason'][why]:5d}")


def source_state() -> str:
    """The commit the code of both linkers was read from, and whether tracked files had changed."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = len(dirty.stdout.splitlines())
    return head.stdout.strip() + (f" with {changed} changed tracked files" if changed else "")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, default=3000, help="rows per country (default 3000)")
    p.add_argument("--profiles", default=",".join(lq.PROFILES))
    p.add_argument("--pairs", default="", help="country pairs such as ROU-NLD,UKR-DEU (default: per profile)")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--overlap", type=float, default=0.3, help="share of rows in cases both countries hold")
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    logging.getLogger("splink").setLevel(logging.ERROR)  # Splink's training chatter
    seeds = [int(s) for s in args.seeds.split(",")]
    profiles = args.profiles.split(",")
    for profile in profiles:
        if profile not in lq.PAIRS:
            raise SystemExit(f"unknown profile {profile!r}: expected one of {', '.join(lq.PROFILES)}")
    if not args.json:
        print(
            f"Splink {splink.__version__} (DuckDB {duckdb.__version__}) and Palermo on the same registers: "
            f"--persons {args.persons} --overlap {args.overlap} --seeds {args.seeds}; source {source_state()}"
        )
    report: dict[str, Any] = {}
    for profile in profiles:
        pairs = args.pairs.split(",") if args.pairs else list(lq.PAIRS[profile])
        totals = {name: Counts() for name in LINKERS}
        by_reason: Counter[str] = Counter()
        runs = [
            one_run(profile, (pair.split("-")[0], pair.split("-")[1]), seed, args, totals, by_reason)
            for pair in pairs
            for seed in seeds
        ]
        true = sum(run["true_pairs"] for run in runs)
        report[profile] = {
            "pairs": pairs,
            "seeds": seeds,
            "persons_per_side": round(sum(sum(run["persons"]) for run in runs) / (2 * len(runs))),
            "true_pairs": true,
            "true_prior": sum(run["true_prior"] for run in runs) / len(runs),
            "true_by_reason": dict(by_reason.most_common()),
            **{name: figures(totals[name], true) for name in LINKERS},
            "runs": runs,
        }
        if not args.json:
            print_profile(profile, report[profile])
    if args.json:
        out = {"splink": splink.__version__, "duckdb": duckdb.__version__, "source": source_state()}
        out["persons"] = args.persons
        print(json.dumps({**out, "overlap": args.overlap, "profiles": report}, indent=2))


if __name__ == "__main__":
    main()
