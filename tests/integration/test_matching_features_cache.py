"""Features are computed once per person content, over every core when many are missing, and kept locally."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from node.cli import cli
from node.context import open_node
from node.matching import local
from node.matching.features import features
from node.matching.people import eligible, person_rows
from node.services.ingest import ingest_file
from node.services.synth import generate_federation, write_rows
from node.storage.models.matching import PersonFeatures
from node.storage.models.records import Person


@pytest.fixture
def node(make_home: Callable[..., Path], database_url: str | None, tmp_path: Path):  # type: ignore[no-untyped-def]
    ctx = open_node(make_home("nld", "NLD", database_url=database_url))
    path = tmp_path / "nld.csv"
    write_rows(generate_federation(["NLD", "UKR"], 120, seed=4, overlap=0.3)["NLD"], path)
    ingest_file(ctx, path)
    yield ctx
    ctx.close()


def _refs(node) -> list[str]:  # type: ignore[no-untyped-def]
    with node.db.read() as session:
        return [p.person_ref for p in eligible(session)]


def _cached(node) -> int:  # type: ignore[no-untyped-def]
    with node.db.read() as session:
        return int(session.execute(select(func.count()).select_from(PersonFeatures)).scalar_one())


def test_cached_features_equal_fresh_ones_and_follow_changes(node) -> None:  # type: ignore[no-untyped-def]
    refs = _refs(node)
    held, first = local.load_features(node, refs)
    assert held == refs and _cached(node) == len(refs)
    with node.db.read() as session:
        rows = person_rows(session, refs)
    assert first == [features(rows[r], default_region="NLD") for r in refs]
    _, again = local.load_features(node, refs)
    assert again == first
    with node.db.transaction() as session:
        session.execute(
            update(Person)
            .where(Person.person_id == refs[0])
            .values(first_name="Zzyzx", content_hash="0" * 64)
        )
    _, changed = local.load_features(node, refs)
    assert changed[0] != first[0] and changed[1:] == first[1:]
    assert changed[0] == features({**rows[refs[0]], "prs_FirstName": "Zzyzx"}, default_region="NLD")


def test_many_missing_features_are_computed_in_worker_processes(
    node, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    refs = _refs(node)
    _, serial = local.load_features(node, refs)
    with node.db.transaction() as session:
        session.execute(PersonFeatures.__table__.delete())
    monkeypatch.setattr(local, "PARALLEL_FROM", 10)
    monkeypatch.setattr(local, "_WORK_CHUNK", 25)
    _, parallel = local.load_features(node, refs)
    assert parallel == serial and _cached(node) == len(refs)


def test_persons_no_longer_held_are_left_out(node) -> None:  # type: ignore[no-untyped-def]
    refs = _refs(node)
    held, feats = local.load_features(node, [*refs[:3], "no-such-person"])
    assert held == refs[:3] and len(feats) == 3


def test_prepare_fills_the_cache_once(node) -> None:  # type: ignore[no-untyped-def]
    """``palermo match prepare`` computes what is missing; run again it finds everything cached."""
    home = str(node.settings.home)
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", home, "match", "prepare", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    refs = _refs(node)
    assert report["persons"] == len(refs) == report["computed"] > 0 and report["cached"] == 0
    assert _cached(node) == len(refs)
    again = runner.invoke(cli, ["--home", home, "match", "prepare"])
    assert again.exit_code == 0
    assert again.output.startswith(f"matching features ready for {len(refs):,} persons: 0 computed now")


def test_one_pass_over_the_cache_gives_what_keyed_reads_give(node, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Many persons are read from the cache in one pass; the result is the same, stale rows excluded."""
    with node.db.read() as session:
        persons = eligible(session)
    refs = [p.person_ref for p in persons]
    _, keyed = local.load_features(node, refs)
    with node.db.transaction() as session:
        session.execute(
            update(PersonFeatures).where(PersonFeatures.person_ref == refs[1]).values(content_hash="0" * 64)
        )
    monkeypatch.setattr(local, "SCAN_FROM", 1)
    held, scanned = local.load_features(node, persons[:5])
    assert held == refs[:5] and scanned == keyed[:5]
    with node.db.read() as session:
        digest = session.execute(
            select(PersonFeatures.content_hash).where(PersonFeatures.person_ref == refs[1])
        ).scalar_one()
    assert digest == persons[1].content_hash  # the stale row was computed again
