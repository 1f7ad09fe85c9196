"""The matching part of ``palermo demo``: rounds between the three nodes, cross-script matches, a review.

The demo runs all three nodes, so it can show both sides of a match next to each other and score
the matches against the generator's hidden ground truth. A real node sees only its own side.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from itertools import combinations
from typing import Any

from sqlalchemy import select

from node.context import NodeContext
from node.storage.models.records import CasePerson, Person

Say = Callable[[str], None]


def run(nodes: dict[str, NodeContext], say: Say, *, step: int) -> dict[str, Any]:
    """Match every pair of nodes, show a few matches across scripts, review and follow one up."""
    from node.matching.rounds import run_round

    say(
        f"\n{step}. Matching rounds between every pair of nodes (PSI on exact selectors, keyed encodings for names):"
    )
    rounds = {}
    for a, b in combinations(sorted(nodes), 2):
        summary = run_round(nodes[a], b)
        bands = summary["candidates"]
        score = truth_score(nodes[a], nodes[b])
        rounds[f"{a}-{b}"] = {"summary": summary, "truth": score}
        say(
            f"   {a} <-> {b}: {summary['psi_matched']} exact selectors in both, {summary['encodings_received']} "
            f"encodings compared; likely {bands['likely']}, possible {bands['possible']} "
            f"in {summary['seconds']['total']:.1f} s (likely band right {score['likely_right']}/{bands['likely']}, "
            f"true pairs found {score['found']}/{score['true_pairs']})"
        )
    examples = _cross_script(nodes, say)
    review = _review(nodes, say)
    return {"rounds": rounds, "cross_script": examples, "review": review}


def true_identities(node: NodeContext) -> dict[str, str]:
    """The hidden true identity of every person that may be matched."""
    from node.matching.people import eligible

    with node.db.read() as session:
        refs = {p.person_ref for p in eligible(session)}
        query = select(Person.person_id, CasePerson.synth_true_id).join(
            CasePerson, CasePerson.person_id == Person.id
        )
        return {ref: true_id for ref, true_id in session.execute(query) if true_id and ref in refs}


def _scripts(text: str) -> set[str]:
    return {unicodedata.name(c, "?").split()[0] for c in text if c.isalpha()}


def truth_score(a: NodeContext, b: NodeContext) -> dict[str, int]:
    """The matches between ``a`` and ``b`` against the generator's hidden truth: how many persons
    both may match are held on both sides, how many matches each band holds, how many of them join
    the same person, and how many such persons were found (in the likely band; in either band)."""
    truth_a, truth_b = true_identities(a), true_identities(b)
    theirs = {match_id: ref for match_id, (ref, _) in _matches(b, a.node_id).items()}
    shared = set(truth_a.values()) & set(truth_b.values())
    out = {"true_pairs": len(shared), "likely": 0, "possible": 0, "likely_right": 0, "possible_right": 0}
    found: dict[str, set[str]] = {"likely": set(), "possible": set()}
    for match_id, (ref, band) in _matches(a, b.node_id).items():
        out[band] += 1
        same = truth_a.get(ref)
        if same is not None and same == truth_b.get(theirs.get(match_id, "")):
            out[f"{band}_right"] += 1
            found[band].add(same)
    return {**out, "found_likely": len(found["likely"]), "found": len(found["likely"] | found["possible"])}


def _matches(node: NodeContext, peer: str) -> dict[str, tuple[str, str]]:
    """match_id -> (own person, band) of every match with ``peer``."""
    from node.storage.models.matching import Match

    with node.db.read() as session:
        query = select(Match.match_id, Match.person_ref, Match.band).where(Match.peer == peer)
        return {match_id: (ref, band) for match_id, ref, band in session.execute(query)}


def _names(node: NodeContext, ref: str) -> str:
    with node.db.read() as session:
        row = session.execute(
            select(Person.first_name, Person.second_name, Person.birthdate).where(Person.person_id == ref)
        ).one()
    return f"{row[0] or ''} {row[1] or ''} ({row[2] or 'birth date unknown'})".strip()


def _cross_script(nodes: dict[str, NodeContext], say: Say) -> list[dict[str, str]]:
    from node.matching.followup import list_matches

    say(
        "\n   A few likely matches whose names are written in different scripts (the demo can look at both sides;"
    )
    say("   the nodes themselves never saw each other's names):")
    shown: list[dict[str, str]] = []
    for a, b in combinations(sorted(nodes), 2):
        there = {m["match_id"]: m for m in list_matches(nodes[b], peer=a)}
        for m in list_matches(nodes[a], peer=b, band="likely"):
            left, right = (
                _names(nodes[a], m["prs_PersonId"]),
                _names(nodes[b], there[m["match_id"]]["prs_PersonId"]),
            )
            if _scripts(left) != _scripts(right):
                shown.append(
                    {"match_id": m["match_id"], a: left, b: right, "evidence": ",".join(m["evidence"])}
                )
                say(f"   {a}: {left:40s} {b}: {right:40s} [{', '.join(m['evidence'])}]")
                break
    return shown


def _review(nodes: dict[str, NodeContext], say: Say) -> dict[str, Any]:
    """Both focal points confirm one match; one asks for a name, the other approves."""
    from node.matching.followup import (
        decide_disclosure,
        list_disclosures,
        list_matches,
        request_disclosure,
        review,
        show_disclosure,
        show_match,
    )
    from node.services.outbox import deliver_due

    a, b = "nld", "rou"
    match = next(m for m in list_matches(nodes[a], peer=b, band="likely"))
    match_id = match["match_id"]
    say(f"\n   Review: the focal points of {a} and {b} both confirm match {match_id} ...")
    for node_id in (a, b):
        review(nodes[node_id], match_id, "confirmed", by="demo")
        deliver_due(nodes[node_id])
    status = show_match(nodes[a], match_id)["status"]
    say(f"   status on {a}: {status}")
    result: dict[str, Any] = {"match_id": match_id, "status": status}
    try:
        asked = request_disclosure(nodes[a], match_id, ["prs_FirstName", "prs_Birthdate"], by="demo")
    except Exception as e:  # a handling code may forbid it: show that instead
        code = getattr(e, "code", type(e).__name__)
        say(f"   {a} asks {b} for the first name and birth date: refused by {b} ({code})")
        return {**result, "disclosure": code}
    pending = list_disclosures(nodes[b], direction="in", status="pending")
    say(
        f"   {a} asks {b} for the first name and birth date; {b} has {len(pending)} request(s) waiting and approves"
    )
    decide_disclosure(nodes[b], asked["disclosure_id"], True, by="demo")
    deadline = time.monotonic() + 10
    got = show_disclosure(nodes[a], asked["disclosure_id"])
    while got["status"] == "pending" and time.monotonic() < deadline:
        deliver_due(nodes[b])
        got = show_disclosure(nodes[a], asked["disclosure_id"])
    say(f"   {a} received: {got['values']} (handling code {got['handling_code']})")
    return {**result, "disclosure": got["status"], "fields": sorted(got["values"] or {})}
