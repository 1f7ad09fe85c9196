#!/usr/bin/env python3
"""Bloom-filter encodings: speed beside the machine's own numpy figures, and linkage quality on synth data.

Speed (``--speed``), each figure beside a physical reference measured in the same run:
  encode      persons encoded per second (default layout, bit-flip noise on)
  all-pairs   single-field 1024-bit Dice comparisons per second, all pairs of two blocks
              ("matmul": bits as float32 through BLAS sgemm; "popcount": AND + np.bitwise_count)
  pairs       Dice of candidate pairs (gathered rows) per second
  blocking    candidate pairs per second from the LSH + birth-year join
  popcount    np.bitwise_count over a large uint64 array, bytes per second, 1 and 2 threads
  memory      numpy copy of a large array, bytes per second (read + write)

Quality (``--quality``): two countries of synth.generate_federation per difficulty profile;
persons deduplicated by prs_PersonId; a true match is the same synth_TrueId on both sides.
Blocking recall against all pairs, EM-estimated Fellegi-Sunter model, precision / recall / F1 of the
"likely" band and of "likely" + "possible". Persons go through node.matching.features (the
normalisation of protocol.identifiers) as in a node; the scoring here is the older per-field model
kept for the encoding experiments below (scripts/bench/linkage_quality.py measures the engine).

    .venv/bin/python scripts/bench/encoding_speed.py [--speed] [--quality] [--rows 5000]
        [--profiles typos,partial,dates,scripts] [--overlap 0.3] [--persons 50000]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.public
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.matching.features import features
from node.services.synth import generate_federation
from protocol.encoding import blocking, bloom, keys, scoring, similarity
from protocol.encoding.bloom import DEFAULT_LAYOUT, EncodedBatch, Encoder, Layout

Row = dict[str, Any]


# ---------------------------------------------------------------- features (node.matching)


def person_fields(row: Row, region: str | None = None) -> tuple[dict[str, list[str]], int | None]:
    """The encoder input and blocking year of one person, as the node computes them."""
    found = features(row, default_region=region)
    return found.fields, found.birth_year


def persons(rows: Sequence[Row]) -> list[Row]:
    """One row per prs_PersonId (a person in several cases is one candidate)."""
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(str(row["prs_PersonId"]), row)
    return list(seen.values())


# ---------------------------------------------------------------- keys


def fixed_pair_key(epoch: int = 1) -> bytes:
    a = nacl.public.PrivateKey(bytes(range(1, 33)))
    b = nacl.public.PrivateKey(bytes(range(2, 34)))
    return keys.pair_key(bytes(a), bytes(b.public_key), node_ids=("nld-police", "rou-anitp"), epoch=epoch)


def encode_side(
    people: Sequence[Row],
    layout: Layout,
    pair_key: bytes,
    side: str,
    *,
    salt_year: bool = False,
) -> EncodedBatch:
    noise = keys.noise_key(f"local secret of {side}".encode().ljust(32, b"."), pair_key)
    encoder = Encoder(layout, pair_key=pair_key, noise_key=noise, epoch=1)
    fields, years = (
        zip(*(person_fields(p, side.upper()) for p in people), strict=True) if people else ((), ())
    )
    ids = [str(p["prs_PersonId"]) for p in people]
    batch = encoder.encode(list(fields), record_ids=ids, birth_years=list(years))
    if salt_year:  # names hashed with a key per birth year (unknown year: one more key)
        for year in set(years):
            rows = [i for i, y in enumerate(years) if y == year]
            salted = Encoder(layout, pair_key=keys.subkey(pair_key, f"salt:{year}"), noise_key=noise, epoch=1)
            part = salted.encode([fields[i] for i in rows], record_ids=[ids[i] for i in rows])
            for name in ("given", "family"):
                batch.filters[np.asarray(rows), layout.word_slice(name)] = part.field(name)
    return batch


def harden(batch: EncodedBatch, how: str) -> EncodedBatch:
    """XOR-folding (Schnell et al. 2016: each filter's two halves XOR-ed) or balancing (Schnell
    2016: each filter followed by its complement), applied to the name filters after encoding."""
    specs, parts = [], []
    for f in batch.layout.fields:
        words = batch.field(f.name)
        if f.group == "name" and how == "fold":
            half = f.words // 2
            words, spec = (
                words[:, :half] ^ words[:, half:],
                bloom.FieldSpec(f.name, f.bits // 2, f.hashes, f.kind, f.group),
            )
        elif f.group == "name" and how == "balance":
            present = batch.present(f.name)[:, None]
            words = np.concatenate([words, np.where(present, ~words, np.uint64(0))], axis=1)
            spec = bloom.FieldSpec(f.name, f.bits * 2, f.hashes, f.kind, f.group)
        else:
            spec = f
        specs.append(spec)
        parts.append(words)
    layout = Layout(tuple(specs), batch.layout.flip)
    return EncodedBatch(
        layout,
        batch.epoch,
        np.ascontiguousarray(np.concatenate(parts, axis=1)),
        batch.presence,
        batch.years,
        batch.handles,
    )


# ---------------------------------------------------------------- quality


SELECTORS = ("prs_IdentityNumber", "prs_MobilePhone", "prs_HomePhone", "prs_Email")


def _selectors(row: Row) -> dict[str, str]:
    return {k: re.sub(r"[^0-9a-z@.]", "", str(row[k]).lower()) for k in SELECTORS if row.get(k)}


def with_selector_pairs(pa: Sequence[Row], pb: Sequence[Row], ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]  # fmt: skip
    """Candidates plus the pairs sharing an exact selector (what PSI would report)."""
    where: dict[tuple[str, str], list[int]] = {}
    for j, p in enumerate(pb):
        for item in _selectors(p).items():
            where.setdefault(item, []).append(j)
    extra = {(i, j) for i, p in enumerate(pa) for item in _selectors(p).items() for j in where.get(item, [])}
    codes = np.unique(
        np.concatenate([ia * len(pb) + ib, np.array([i * len(pb) + j for i, j in extra], np.intp)])
    )
    return codes // len(pb), codes % len(pb)


def selector_sims(pa: Sequence[Row], pb: Sequence[Row], ia: np.ndarray, ib: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]  # fmt: skip
    """1 if the pair shares a selector, 0 if both hold one of a kind and none is shared, else NaN."""
    out = np.full(ia.shape[0], np.nan, np.float32)
    for n, (i, j) in enumerate(zip(ia.tolist(), ib.tolist(), strict=True)):
        x, y = _selectors(pa[i]), _selectors(pb[j])
        common = x.keys() & y.keys()
        if any(x[k] == y[k] for k in common) or set(x.values()) & set(y.values()):
            out[n] = 1.0
        elif common:
            out[n] = 0.0
    return out


def truth_pairs(a: Sequence[Row], b: Sequence[Row]) -> set[tuple[int, int]]:
    where_b: dict[str, list[int]] = {}
    for j, p in enumerate(b):
        where_b.setdefault(str(p["synth_TrueId"]), []).append(j)
    return {(i, j) for i, p in enumerate(a) for j in where_b.get(str(p["synth_TrueId"]), [])}


def prf(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float, float]:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class Run:
    """One quality run: both sides' persons and encodings, the candidates and their levels."""

    args: argparse.Namespace
    pa: list[Row]
    pb: list[Row]
    a: EncodedBatch
    b: EncodedBatch
    comparisons: tuple[scoring.Comparison, ...] = scoring.DEFAULT_COMPARISONS

    def levels(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        sims = scoring.similarities(self.a, self.b, ia, ib, scoring.DEFAULT_COMPARISONS)
        if self.args.selectors:
            sims = np.column_stack([sims, selector_sims(self.pa, self.pb, ia, ib)])
        return scoring.levels(sims, self.comparisons)

    def fit(self, lv: np.ndarray) -> scoring.FellegiSunter:  # type: ignore[type-arg]
        """EM with u from random pairs, over all |A| x |B| pairs (SPEC-encoding 6.2)."""
        rng = np.random.default_rng(self.args.seed)
        ra = rng.integers(0, len(self.a), self.args.random_pairs)
        rb = rng.integers(0, len(self.b), self.args.random_pairs)
        u = scoring.u_from_levels(self.levels(ra, rb), self.comparisons)
        total = len(self.a) * len(self.b)
        core = [c for c in self.args.core.split(",") if c in {x.field for x in self.comparisons}]
        return scoring.estimate(lv, self.comparisons, u=u, pairs=total, max_prior=min(len(self.a), len(self.b)) / total, core=core or None)  # fmt: skip


def start_run(profile: str, args: argparse.Namespace, layout: Layout) -> tuple[Run, bytes]:
    fed = generate_federation(["ROU", args.other], args.rows, seed=args.seed, overlap=args.overlap, difficulty=profile, include_truth=True)  # fmt: skip
    pa, pb = persons(fed["ROU"]), persons(fed[args.other])
    pk = fixed_pair_key()
    a = encode_side(pa, layout, pk, "rou", salt_year=args.salt_year)
    b = encode_side(pb, layout, pk, "nld", salt_year=args.salt_year)
    if args.harden != "none":  # measured alternatives, not part of the protocol
        a, b = (harden(x, args.harden) for x in (a, b))
    run = Run(args, pa, pb, a, b)
    if args.selectors:  # exact selectors as PSI would find them, as one more comparison
        run.comparisons = (*run.comparisons, scoring.Comparison("selectors", (0.5,)))
    return run, pk


def candidates(run: Run, pk: bytes, rules: Sequence[blocking.BlockingRule]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]  # fmt: skip
    a, b = run.a, run.b
    if run.args.no_blocking:
        ia, ib = np.repeat(np.arange(len(a)), len(b)), np.tile(np.arange(len(b)), len(a))
    else:
        scheme = blocking.LshScheme.derive(keys.subkey(pk, "blocking"), a.layout, rules)
        ia, ib = blocking.all_candidate_pairs(a, b, scheme, window=run.args.window)
    return with_selector_pairs(run.pa, run.pb, ia, ib) if run.args.selectors else (ia, ib)


def quality(profile: str, args: argparse.Namespace, layout: Layout, rules: Sequence[blocking.BlockingRule]) -> dict[str, float]:  # fmt: skip
    run, pk = start_run(profile, args, layout)
    truth = truth_pairs(run.pa, run.pb)
    ia, ib = candidates(run, pk, rules)
    lv = run.levels(ia, ib)
    model = run.fit(lv)
    sizes = (len(run.a), len(run.b))
    weights = scoring.frequency_adjusted(model, lv, ia, ib, sizes=sizes) if args.tf else model.weights(lv)
    post = model.posterior(weights)
    pairs = list(zip(ia.tolist(), ib.tolist(), strict=True))
    likely = {p for p, q in zip(pairs, post, strict=True) if q >= args.likely}
    either = {p for p, q in zip(pairs, post, strict=True) if q >= args.possible}
    cand = set(pairs)
    out = {
        "persons_a": sizes[0], "persons_b": sizes[1], "true_pairs": len(truth), "candidates": len(cand),
        "cand_per_pair": len(cand) / (sizes[0] * sizes[1]), "blocking_true_recall": len(cand & truth) / max(1, len(truth)),
        "em_matches": round(model.prior * sizes[0] * sizes[1]),
    }  # fmt: skip
    out["likely_p"], out["likely_r"], out["likely_f1"] = prf(likely, truth)
    out["both_p"], out["both_r"], out["both_f1"] = prf(either, truth)
    if args.one_to_one:
        keep = scoring.one_to_one(ia, ib, weights) & (post >= args.likely)
        out["likely_1to1_p"], out["likely_1to1_r"], out["likely_1to1_f1"] = prf({p for p, k in zip(pairs, keep, strict=True) if k}, truth)  # fmt: skip
    if args.all_pairs:
        accepted, accepted_likely = (x & truth for x in all_pairs_accepted(run, model))
        out["blocking_recall_vs_all_pairs"] = len(accepted & cand) / max(1, len(accepted))
        out["blocking_recall_vs_all_pairs_likely"] = len(accepted_likely & cand) / max(
            1, len(accepted_likely)
        )
    if args.verbose:
        show_model(run, model, likely, truth)
    return out


def all_pairs_accepted(run: Run, model: scoring.FellegiSunter) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:  # fmt: skip
    """Pairs in likely + possible, and in likely, when every pair is scored (the reference for
    blocking recall)."""
    kept: set[tuple[int, int]] = set()
    likely: set[tuple[int, int]] = set()
    na, nb = len(run.a), len(run.b)
    step = max(1, 2_000_000 // max(1, nb))
    for start in range(0, na, step):
        stop = min(na, start + step)
        ia, ib = np.repeat(np.arange(start, stop), nb), np.tile(np.arange(nb), stop - start)
        post = model.posterior(model.weights(run.levels(ia, ib)))
        hit, sure = post >= run.args.possible, post >= run.args.likely
        kept |= set(zip(ia[hit].tolist(), ib[hit].tolist(), strict=True))
        likely |= set(zip(ia[sure].tolist(), ib[sure].tolist(), strict=True))
    return kept, likely


def _clear(r: Row) -> tuple[Any, ...]:
    names = (
        "prs_FirstName",
        "prs_MiddleName",
        "prs_SecondName",
        "prs_Birthdate",
        "prs_Citizenship",
        "prs_MailingCity",
    )
    return tuple(r.get(n) for n in names)


def show_model(run: Run, model: scoring.FellegiSunter, found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> None:  # fmt: skip
    print(f"  model: prior={model.prior:.3g} iterations={model.iterations} converged={model.converged}")
    for c, w in zip(model.comparisons, model.level_weights(), strict=True):
        print(f"    {c.field:12s} weights {np.round(w, 2).tolist()}")
    for label, pairs in (("false positive", found - truth), ("missed", truth - found)):
        for i, j in sorted(pairs)[:8]:
            lv = run.levels(np.array([i]), np.array([j]))
            print(
                f"    {label}: {_clear(run.pa[i])} | {_clear(run.pb[j])} levels={lv[0].tolist()} w={model.weights(lv)[0]:.1f}"
            )


# ---------------------------------------------------------------- speed


def best_rate(work: Callable[[], float], repeat: int = 3) -> float:
    """Best of ``repeat`` runs of ``work``, which returns units done; units per second."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        units = work()
        best = max(best, units / (time.perf_counter() - start))
    return best


def threaded(fn: Callable[[int], None], threads: int) -> None:
    pool = [threading.Thread(target=fn, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def popcount_rate(threads: int) -> float:
    data = [
        np.random.default_rng(k).integers(0, 2**63, size=1 << 22, dtype=np.uint64) for k in range(threads)
    ]
    outs = [np.empty(1 << 22, np.uint8) for _ in range(threads)]

    def work() -> float:
        threaded(lambda k: [np.bitwise_count(data[k], out=outs[k]) for _ in range(8)], threads)
        return 8.0 * threads * data[0].nbytes

    return best_rate(work)


def memory_rate() -> float:
    src = np.ones(1 << 25, np.uint64)  # 256 MiB
    dst = np.empty_like(src)

    def work() -> float:
        np.copyto(dst, src)
        return 2.0 * src.nbytes

    return best_rate(work)


def random_filters(n: int, words: int, fill: float, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    bits = np.random.default_rng(seed).random((n, words * 64)) < fill
    return np.packbits(bits, axis=1, bitorder="little").view("<u8")


def speed(args: argparse.Namespace, layout: Layout) -> None:
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other processes lower every figure)"
    )
    pop1, pop2, mem = popcount_rate(1), popcount_rate(2), memory_rate()
    print(
        f"reference  popcount   {pop1 / 1e9:7.2f} GB/s 1 thread, {pop2 / 1e9:.2f} GB/s 2 threads (np.bitwise_count, uint64)"
    )
    print(f"reference  memory     {mem / 1e9:7.2f} GB/s (numpy copy of 256 MiB, read + write)")
    encode_speed(args, layout)
    all_pairs_speed(pop2)
    pairs_and_blocking_speed(args, layout)


def encode_speed(args: argparse.Namespace, layout: Layout) -> None:
    fed = generate_federation(["ROU", "NLD"], args.persons, seed=args.seed, overlap=0.1, difficulty="mixed")
    people = persons(fed["ROU"])
    fields, years = zip(*(person_fields(p, "ROU") for p in people), strict=True)
    ids = [str(p["prs_PersonId"]) for p in people]
    pk = fixed_pair_key()
    encoder = Encoder(layout, pair_key=pk, noise_key=keys.noise_key(b"x" * 32, pk), epoch=1)

    def work() -> float:
        encoder.encode(list(fields), record_ids=ids, birth_years=list(years))
        return float(len(people))

    cold = best_rate(work, 1)  # first pass: every distinct value hashed
    warm = best_rate(work, 2)  # values cached, as in a later round or a larger register
    print(f"encode     {cold:10,.0f} persons/s first pass, {warm:,.0f} re-encoding ({len(people)} persons, "
          f"{layout.total_bits}-bit rows, flip {layout.flip}/256, 1 thread; target 20,000; reference encoder "
          f"8,000-10,000 per core)")  # fmt: skip


def all_pairs_speed(pop2: float) -> None:
    a, b = random_filters(4096, 16, 0.2, 1), random_filters(32768, 16, 0.2, 2)
    for method in ("matmul", "popcount"):
        rate = best_rate(lambda m=method: _all_pairs(a, b, m))  # type: ignore[misc]
        print(f"all-pairs  {rate / 1e6:7.1f} M comparisons/s ({method}, one 1024-bit field, {a.shape[0]} x "
              f"{b.shape[0]}, Dice >= 0.8; target 100; {rate * 128 / pop2:.2f} x the popcount rate in 128-byte pairs)")  # fmt: skip


def _all_pairs(a: np.ndarray, b: np.ndarray, method: str) -> float:  # type: ignore[type-arg]
    similarity.pairs_above(a, b, 0.8, method=method, workers=2)
    return float(a.shape[0] * b.shape[0])


def pairs_and_blocking_speed(args: argparse.Namespace, layout: Layout) -> None:
    a, b = random_filters(20000, 8, 0.2, 3), random_filters(20000, 8, 0.2, 4)
    ia = np.random.default_rng(3).integers(0, a.shape[0], 4_000_000)
    ib = np.random.default_rng(4).integers(0, b.shape[0], 4_000_000)
    rate = best_rate(lambda: (similarity.dice_pairs(a, b, ia, ib), float(ia.size))[1])
    print(f"pairs      {rate / 1e6:7.1f} M candidate pairs/s (Dice of one 512-bit field, rows gathered)")
    fed = generate_federation(["ROU", "NLD"], args.persons, seed=args.seed, overlap=0.1, difficulty="mixed")
    pk = fixed_pair_key()
    x, y = (encode_side(persons(fed[c]), layout, pk, c) for c in ("ROU", "NLD"))
    scheme = blocking.LshScheme.derive(keys.subkey(pk, "blocking"), layout)
    start = time.perf_counter()
    found = sum(len(ca) for ca, _ in blocking.candidate_pairs(x, y, scheme))
    took = time.perf_counter() - start
    print(f"blocking   {found / took / 1e6:7.1f} M candidates/s ({len(x)} x {len(y)} persons: {found:,} candidates, "
          f"{found / (len(x) * len(y)):.4%} of all pairs, {took:.1f} s)")  # fmt: skip


# ---------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speed", action="store_true")
    p.add_argument("--quality", action="store_true")
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--persons", type=int, default=50000)
    p.add_argument("--profiles", default="typos,partial,dates,scripts")
    p.add_argument("--other", default="NLD")
    p.add_argument("--overlap", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--bands", type=int, default=blocking.DEFAULT_RULES[0].bands)
    p.add_argument("--band-bits", type=int, default=blocking.DEFAULT_RULES[0].band_bits)
    p.add_argument("--together", action="store_true", help="name bands over both names at once")
    p.add_argument("--no-name-years", dest="name_years", action="store_false")
    p.add_argument("--date-bands", type=int, default=blocking.DEFAULT_RULES[1].bands)
    p.add_argument("--date-bits", type=int, default=blocking.DEFAULT_RULES[1].band_bits)
    p.add_argument("--flip", type=int, default=DEFAULT_LAYOUT.flip)
    p.add_argument("--name-bits", type=int, default=DEFAULT_LAYOUT.fields[0].bits)
    p.add_argument("--name-hashes", type=int, default=DEFAULT_LAYOUT.fields[0].hashes)
    p.add_argument("--random-pairs", type=int, default=300_000)
    p.add_argument("--core", default="given,family,birth,selectors")
    p.add_argument("--selectors", action="store_true", help="add exact selectors (as PSI finds them)")
    p.add_argument("--harden", choices=("none", "fold", "balance"), default="none")
    p.add_argument("--salt-year", action="store_true", help="salt name filters with the birth year")
    p.add_argument("--no-blocking", action="store_true", help="score all pairs (reference)")
    p.add_argument("--tf", action="store_true", help="term-frequency adjustment of name weights")
    p.add_argument("--likely", type=float, default=0.99)
    p.add_argument("--possible", type=float, default=0.5)
    p.add_argument("--one-to-one", action="store_true")
    p.add_argument("--all-pairs", action="store_true", help="also score all pairs (blocking recall)")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    fields = [
        bloom.FieldSpec(f.name, args.name_bits, args.name_hashes, f.kind, f.group) if f.group == "name" else f
        for f in DEFAULT_LAYOUT.fields
    ]
    layout = Layout(tuple(fields), args.flip)
    if not (args.speed or args.quality):
        args.speed = args.quality = True
    if args.speed:
        speed(args, layout)
    if args.quality:
        rules = (
            blocking.BlockingRule(
                ("given", "family"),
                bands=args.bands,
                band_bits=args.band_bits,
                together=args.together,
                years=args.name_years,
            ),
            blocking.BlockingRule(("birth",), bands=args.date_bands, band_bits=args.date_bits, years=False),
        )
        for profile in args.profiles.split(","):
            start = time.perf_counter()
            q = quality(profile, args, layout, rules)
            shown = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in q.items())
            print(f"quality {profile:8s} {shown} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
