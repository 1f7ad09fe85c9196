"""Loading case records (node.services.ingest, records, the CLI) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gc
import json
import os
import stat
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from node.cli import cli
from node.context import NodeContext, open_node
from node.errors import OperatorError
from node.keys import NodeKeys, save_keys
from node.services import ingest, records
from node.services.ingest import IngestRejected, ingest_file
from node.services.ingest_readers import CellEncoder
from node.services.records import RowEncoder
from node.services.synth import LATEST as synth_latest
from node.services.synth import columns_for, generate_country
from node.settings import SETTINGS_FILE, render_settings
from node.storage.db import migrate
from node.storage.models.records import Case, CasePerson, IngestLoad, Person, TraffickingEvent
from protocol.htcds import FIELDS, REQUIRED, RowChecker, RowRules, field_spec, resolve_columns, validate_row

NOW = 1_795_000_000  # 2026-11-18T11:06:40Z
PG = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
# Distinctive personal values that must never appear in an error or in the CLI's output.
PLANTED_NAME, PLANTED_PHONE, PLANTED_BIRTH = "Zyxwvutsrq", "+40 799 31 41 59", "1987-02-31"

VICTIM = {
    "cas_CaseId": "C-1",
    "prs_PersonId": "P-1",
    "role": "victim",
    "prs_FirstName": "Олена",
    "prs_SecondName": "Коваленко",
    "prs_Birthdate": "1999-04",
    "prs_Gender": "feminine",
    "prs_Citizenship": "UKR;MDA",
    "prs_MobilePhone": "+380 67 000 0001",
    "vic_TypeOfExploitation": "SexualExploitation;ForcedCriminality",
    "vic_MethodsOfControl": "DebtBondage;RestrictsMovement",
    "cas_Status": "Active",
    "cas_RegistrationDate": "2024-05-02",
    "hte_RecruitmentCountry": "UKR",
    "hte_TransitCountry": "POL;DEU",
    "hte_ExploitationCountry": "NLD",
    "hte_ExploitationCity": "Rotterdam",
    "shr_Matchable": "yes",
    "shr_HandlingCode": "H1",
    "cco_CaseComment": "met at the shelter",
    "synth_TrueId": "T-1",
}
PERPETRATOR = {
    "cas_CaseId": "C-1",
    "prs_PersonId": "P-2",
    "role": "perpetrator",
    "prs_FirstName": "Ivan",
    "prs_SecondName": "Petrenko",
    "prs_Citizenship": "UKR",
    "per_RoleInProcess": "RecruiterOrIntermediary",
    "cas_Status": "Active",
    "cas_RegistrationDate": "2024-05-02",
    "shr_HandlingCode": "H0",
}
SECOND_CASE = {
    "cas_CaseId": "C-2",
    "prs_PersonId": "P-1",  # the same person in a second case
    "role": "victim",
    "prs_FirstName": "Олена",
    "prs_SecondName": "Коваленко",
    "prs_Birthdate": "1999-04",
    "prs_Gender": "Feminine",
    "prs_Citizenship": "UKR;MDA",
    "prs_MobilePhone": "+380 67 000 0001",
    "vic_TypeOfExploitation": "ForcedLabour",
    "cas_RegistrationDate": "2025",
    "hte_ExploitationCountry": "DEU",
}
ROWS = [VICTIM, PERPETRATOR, SECOND_CASE]


# ---- fixtures ---------------------------------------------------------------------------------


def _postgres_database() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({type(e).__name__})")
    name = f"palermo_ingest_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'palermo.db'}"
    else:
        yield from _postgres_database()


def make_home(root: Path, url: str) -> Path:
    """A node home: settings, keys and a database migrated by Alembic (what `palermo init` makes)."""
    home = root / "home"
    home.mkdir()
    settings = render_settings(node_id="nld-test", country="NLD", url="http://127.0.0.1:8400", database_url=url,
                               bind="127.0.0.1:8400")  # fmt: skip
    (home / SETTINGS_FILE).write_text(settings, encoding="utf-8")
    save_keys(NodeKeys.generate(), home / "keys", passphrase=None)
    migrate(url)
    return home


@pytest.fixture
def home(tmp_path: Path, database_url: str) -> Path:
    return make_home(tmp_path, database_url)


@pytest.fixture
def node(home: Path) -> Iterator[NodeContext]:
    context = open_node(home)
    context.clock = lambda: NOW
    yield context
    context.close()


@pytest.fixture(params=["this process", "a second process"])
def checking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Rows checked in this process, or in a second one (as for large files); asserts which."""
    forks: list[int] = []
    in_child = ingest.CheckingProcess
    monkeypatch.setattr(
        "node.services.ingest.CheckingProcess", lambda *a, **k: forks.append(1) or in_child(*a, **k)
    )
    monkeypatch.setattr(
        "node.services.ingest._second_process_pays", lambda path: request.param != "this process"
    )
    yield request.param
    assert bool(forks) == (request.param != "this process")


@pytest.fixture
def sqlite_node(tmp_path: Path) -> Iterator[NodeContext]:
    context = open_node(make_home(tmp_path, f"sqlite:///{tmp_path / 'palermo.db'}"))
    context.clock = lambda: NOW
    yield context
    context.close()


# ---- helpers ----------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]], *, bom: bool = False) -> Path:
    header = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    def value(column: str, text: str) -> Any:
        return text.split(";") if ";" in text else text  # multi-valued as arrays, like an export would

    lines = [json.dumps({k: value(k, v) for k, v in row.items()}, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_xlsx(path: Path, rows: list[dict[str, Any]]) -> Path:
    from openpyxl import Workbook

    header = list(dict.fromkeys(k for row in rows for k in row))
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([_typed(row.get(column)) for column in header])
    book.save(path)
    return path


def _typed(value: Any) -> Any:
    """Full dates as date cells and whole numbers as number cells, as a spreadsheet would hold them."""
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-":
        return datetime.strptime(value, "%Y-%m-%d")
    return int(value) if isinstance(value, str) and value.isdigit() else value


def snapshot(node: NodeContext) -> dict[str, Any]:
    """Everything stored about cases and persons, keyed by agency ids (not by database ids)."""
    with node.db.transaction() as session:
        persons = {p.person_id: (p.first_name, p.second_name, p.birthdate, p.gender, p.citizenship,
                                 p.mobile_phone, p.content_hash) for p in session.scalars(select(Person))}  # fmt: skip
        cases = {
            c.case_id: (c.status, c.registration_date, c.registration_year)
            for c in session.scalars(select(Case))
        }
        links = {}
        for link, case_id, person_id in session.execute(
            select(CasePerson, Case.case_id, Person.person_id).join(Case).join(Person)
        ):
            events = session.execute(
                select(TraffickingEvent.type, TraffickingEvent.country, TraffickingEvent.city)
                .where(TraffickingEvent.case_person_id == link.id)
                .order_by(TraffickingEvent.position)
            ).all()
            links[case_id, person_id] = (link.role, link.type_of_exploitation, link.methods_of_control,
                                         link.role_in_process, link.matchable, link.handling_code, link.free_text,
                                         link.synth_true_id, [tuple(e) for e in events])  # fmt: skip
    return {"persons": persons, "cases": cases, "links": links}


def count(node: NodeContext, model: Any) -> int:
    with node.db.transaction() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# ---- loading ----------------------------------------------------------------------------------


def test_csv_load_stores_every_part_of_a_row(node: NodeContext, tmp_path: Path) -> None:
    report = ingest_file(node, write_csv(tmp_path / "cases.csv", ROWS, bom=True))
    assert gc.isenabled()  # paused during the load only
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 3, 0)
    assert (report.cases_created, report.cases_updated, report.persons_created, report.persons_updated) == (
        2,
        0,
        2,
        0,
    )
    data = snapshot(node)
    first, second, birth, gender, citizenship, phone, digest = data["persons"]["P-1"]
    assert (first, second, birth, gender, citizenship, phone) == (
        "Олена", "Коваленко", "1999-04", "Feminine", ["UKR", "MDA"], "+380 67 000 0001"
    )  # fmt: skip
    assert len(digest) == 64
    assert data["cases"] == {"C-1": ("Active", "2024-05-02", 2024), "C-2": (None, "2025", 2025)}
    assert data["links"]["C-1", "P-1"] == (
        "victim",
        ["SexualExploitation", "ForcedCriminality"],
        ["DebtBondage", "RestrictsMovement"],
        None,
        True,
        "H1",
        {"cco_CaseComment": "met at the shelter"},
        "T-1",
        [("Recruitment", "UKR", None), ("Transit", "POL", None), ("Transit", "DEU", None),
         ("Exploitation", "NLD", "Rotterdam")],
    )  # fmt: skip
    perpetrator = data["links"]["C-1", "P-2"]
    assert perpetrator[:6] == (
        "perpetrator",
        None,
        None,
        ["RecruiterOrIntermediary"],
        False,
        "H0",
    )  # defaults
    assert data["links"]["C-2", "P-1"][-1] == [("Exploitation", "DEU", None)]


@pytest.mark.parametrize("fmt", ["jsonl", "xlsx"])
def test_jsonl_and_xlsx_load_the_same_as_csv(node: NodeContext, tmp_path: Path, fmt: str) -> None:
    ingest_file(node, write_csv(tmp_path / "cases.csv", ROWS))
    from_csv = snapshot(node)
    ingest_file(
        node,
        write_csv(tmp_path / "empty.csv", [{"cas_CaseId": "C-9", "prs_PersonId": "P-9", "role": "victim"}]),
    )
    writer = write_jsonl if fmt == "jsonl" else write_xlsx
    report = ingest_file(node, writer(tmp_path / f"cases.{fmt}", ROWS))
    assert (report.file_format, report.rows_loaded, report.cases_updated, report.persons_updated) == (
        fmt,
        3,
        2,
        0,
    )
    again = snapshot(node)
    del again["persons"]["P-9"], again["cases"]["C-9"], again["links"]["C-9", "P-9"]
    assert again == from_csv


def test_reload_replaces_cases_and_updates_persons(node: NodeContext, tmp_path: Path, checking: str) -> None:
    ingest_file(node, write_csv(tmp_path / "first.csv", ROWS))
    before = snapshot(node)
    with node.db.transaction() as session:
        updated_at = dict(session.execute(select(Person.person_id, Person.updated_at)).all())
    node.clock = lambda: NOW + 60
    same = ingest_file(node, write_csv(tmp_path / "same.csv", ROWS))
    assert (same.cases_created, same.cases_updated, same.persons_created, same.persons_updated) == (
        0,
        2,
        0,
        0,
    )
    assert snapshot(node) == before
    with node.db.transaction() as session:
        assert dict(session.execute(select(Person.person_id, Person.updated_at)).all()) == updated_at

    renamed = {**VICTIM, "prs_FirstName": "Olena", "vic_TypeOfExploitation": "ForcedLabour"}
    newcomer = {
        "cas_CaseId": "C-1",
        "prs_PersonId": "P-3",
        "role": "perpetrator",
        "per_RoleInProcess": "Exploiter",
    }
    report = ingest_file(node, write_csv(tmp_path / "second.csv", [renamed, newcomer]))
    assert (report.cases_created, report.cases_updated) == (0, 1)
    assert (report.persons_created, report.persons_updated, report.persons_removed) == (1, 1, 1)
    after = snapshot(node)
    assert set(after["links"]) == {("C-1", "P-1"), ("C-1", "P-3"), ("C-2", "P-1")}  # C-2 was not in the file
    assert "P-2" not in after["persons"]  # in no case any more
    assert after["persons"]["P-1"][0] == "Olena"
    assert after["persons"]["P-1"][-1] != before["persons"]["P-1"][-1]  # content hash changed
    assert after["links"]["C-1", "P-1"][1] == ["ForcedLabour"]
    assert (count(node, Person), count(node, CasePerson), count(node, Case)) == (2, 3, 2)
    assert count(node, TraffickingEvent) == 5  # 4 for C-1/P-1, 1 for C-2/P-1, none for the newcomer


def test_small_batches_load_the_same(
    node: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checking: str
) -> None:
    """Batches of one row: a person's fields come in a later batch than the person (a placeholder
    first), and cases span batches."""
    reference_only = {"cas_CaseId": "C-0", "prs_PersonId": "P-1", "role": "victim"}
    rows = [reference_only, *ROWS]
    ingest_file(node, write_csv(tmp_path / "a.csv", rows))
    expected = snapshot(node)
    monkeypatch.setattr("node.services.ingest.BATCH_ROWS", 1)
    with node.db.transaction() as session:
        session.execute(delete(TraffickingEvent))
        session.execute(delete(CasePerson))
        session.execute(delete(Person))
        session.execute(delete(Case))
    report = ingest_file(node, write_csv(tmp_path / "b.csv", rows))
    assert (report.rows_loaded, report.cases_created, report.persons_created, report.persons_updated) == (
        4,
        3,
        2,
        0,
    )
    assert snapshot(node) == expected


def test_bad_rows_load_nothing(node: NodeContext, tmp_path: Path, checking: str) -> None:
    ingest_file(node, write_csv(tmp_path / "first.csv", ROWS))
    before = snapshot(node)
    rows = [
        {**VICTIM, "prs_FirstName": "Changed"},
        {**PERPETRATOR, "prs_Gender": "Male"},
        {**SECOND_CASE, "prs_Birthdate": "1999-02-30"},
        {"cas_CaseId": "C-3", "prs_PersonId": "P-4", "role": "victim"},
    ]
    with pytest.raises(IngestRejected) as e:
        ingest_file(node, write_csv(tmp_path / "bad.csv", rows))
    assert e.value.code == "invalid_rows"
    assert gc.isenabled()
    report = e.value.report
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 0, 2)
    assert [(p.row, p.field) for p in report.problems] == [(3, "prs_Gender"), (4, "prs_Birthdate")]
    assert snapshot(node) == before
    assert count(node, IngestLoad) == 1


def test_skip_invalid_loads_good_rows_and_writes_rejects_0600(
    node: NodeContext, tmp_path: Path, checking: str
) -> None:
    ingest_file(node, write_csv(tmp_path / "first.csv", ROWS))
    rows = [
        {**VICTIM, "prs_Gender": "Femenine"},  # P-1 in C-1 rejected: the link loaded before stays
        {"cas_CaseId": "C-1", "prs_PersonId": "P-5", "role": "victim", "prs_FirstName": PLANTED_NAME},
        {"cas_CaseId": "C-4", "prs_PersonId": "P-6", "role": "witness", "prs_MobilePhone": PLANTED_PHONE},
    ]
    source = write_csv(tmp_path / "mixed.csv", rows)
    report = ingest_file(node, source, skip_invalid=True)
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    assert report.rejects_file == tmp_path / "mixed.rejected.csv"
    assert stat.S_IMODE(os.stat(report.rejects_file).st_mode) == 0o600
    with report.rejects_file.open(encoding="utf-8", newline="") as f:
        rejected = list(csv.DictReader(f))
    assert [r["prs_PersonId"] for r in rejected] == ["P-1", "P-6"]
    assert rejected[1]["prs_MobilePhone"] == PLANTED_PHONE  # the original content, for fixing
    assert rejected[0]["reject_reason"].startswith("row 2: prs_Gender: expected one of Feminine")
    links = set(snapshot(node)["links"])
    assert links == {("C-1", "P-1"), ("C-1", "P-5"), ("C-2", "P-1")}  # P-2 detached: C-1 was replaced

    fixed = [
        {**r, "prs_Gender": "Feminine", "role": "victim"} for r in rejected
    ]  # the reason column is ignored
    again = ingest_file(node, write_csv(tmp_path / "fixed.csv", fixed), skip_invalid=True,
                        rejects_path=tmp_path / "r.csv")  # fmt: skip
    assert (again.rows_loaded, again.rows_rejected, again.rejects_file) == (2, 0, None), again.problems


def test_a_write_that_collides_with_another_load_is_refused_and_changes_nothing(
    node: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_file(node, write_csv(tmp_path / "first.csv", ROWS))
    before = snapshot(node)
    # As if another load had added these cases and persons after this one looked for them.
    monkeypatch.setattr(records.BulkSql, "select_in", lambda self, *args: [])
    with pytest.raises(OperatorError) as e:
        ingest_file(node, write_csv(tmp_path / "again.csv", ROWS))
    assert e.value.code == "conflict"
    assert snapshot(node) == before
    assert count(node, IngestLoad) == 1


def test_rows_must_agree_on_case_and_person_fields_and_not_repeat(
    sqlite_node: NodeContext, tmp_path: Path
) -> None:
    rows = [
        VICTIM,
        {**VICTIM, "vic_AgeWhenTrafficked": "20"},  # the same person twice in a case
        {**PERPETRATOR, "cas_Status": "Closed"},  # the case's status differs from row 2
        {**SECOND_CASE, "prs_SecondName": "Kovalenko"},  # the person's name differs from row 2
        {"cas_CaseId": "C-2", "prs_PersonId": "P-7", "role": "victim"},  # no case fields: fine
    ]
    with pytest.raises(IngestRejected) as e:
        ingest_file(sqlite_node, write_csv(tmp_path / "x.csv", rows))
    assert [(p.row, p.field, p.expected) for p in e.value.report.problems] == [
        (3, "prs_PersonId", "one row per person in a case (this person is in this case on row 2)"),
        (4, "cas_*", "the same case fields as row 2 (same case id), or none"),
        (5, "prs_*", "the same person fields as row 2 (same person id), or none"),
    ]


# ---- file-level problems -------------------------------------------------------------------------


def test_file_level_problems(sqlite_node: NodeContext, tmp_path: Path, checking: str) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        "cas_CaseId,prs_PersonId,role,prs_FirstName\nC-1,P-1,victim,Jos\xe9\n".encode("latin-1")
    )
    missing = write_csv(tmp_path / "missing.csv", [{"cas_CaseId": "C-1", "role": "victim"}])
    unknown = write_csv(tmp_path / "unknown.csv", [{**VICTIM, "Nickname": "x", "prs_Shoe": "y"}])
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("cas_CaseId;prs_PersonId;role\nC-1;P-1;victim\n", encoding="utf-8")
    jsonl_unknown = tmp_path / "unknown.jsonl"
    jsonl_unknown.write_text(json.dumps({**VICTIM, "Nickname": "x"}) + "\n", encoding="utf-8")
    not_xlsx = tmp_path / "fake.xlsx"
    not_xlsx.write_text("hello", encoding="utf-8")
    cases = [
        (latin1, "latin1.csv is not UTF-8 text (line 2); save it as UTF-8"),
        (missing, "missing required column(s) prs_PersonId"),
        (unknown, "unknown column(s) Nickname, prs_Shoe"),
        (semicolons, "semicolons.csv: the header is one column; separate columns with ','"),
        (jsonl_unknown, "unknown column(s) Nickname"),
        (not_xlsx, "fake.xlsx is not an XLSX workbook"),
        (tmp_path / "cases.txt", "cannot tell the format of cases.txt"),
    ]
    (tmp_path / "cases.txt").write_text("x", encoding="utf-8")
    for path, message in cases:
        with pytest.raises(OperatorError) as e:
            ingest_file(sqlite_node, path)
        assert (e.value.code, e.value.message[: len(message)]) == ("invalid_file", message)
    assert count(sqlite_node, IngestLoad) == 0


def test_jsonl_row_problems(sqlite_node: NodeContext, tmp_path: Path, checking: str) -> None:
    path = tmp_path / "rows.jsonl"
    good = json.dumps({**VICTIM, "prs_Citizenship": ["UKR", "MDA"], "prs_MiddleName": None})
    lines = [
        good,
        "",
        '{"cas_CaseId": "C-2", "prs_Pers',
        "[1, 2]",
        '{"cas_CaseId": "C-3", "cas_CaseId": "C-4"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IngestRejected) as e:
        ingest_file(sqlite_node, path)
    assert [(p.row, p.field, p.got) for p in e.value.report.problems] == [
        (3, "(line)", "malformed or truncated JSON"),
        (4, "(line)", "a JSON array"),
        (5, "(line)", "a key given twice"),
    ]


# ---- privacy ----------------------------------------------------------------------------------


def test_no_personal_value_in_errors_or_cli_output(home: Path, tmp_path: Path) -> None:
    planted = {**VICTIM, "prs_FirstName": PLANTED_NAME + "\x07", "prs_MobilePhone": PLANTED_PHONE + "x",
               "prs_Birthdate": PLANTED_BIRTH, "prs_Email": PLANTED_NAME.lower()}  # fmt: skip
    path = write_csv(tmp_path / "planted.csv", [planted, {**PERPETRATOR, "prs_FirstName": PLANTED_NAME}])
    runner = CliRunner()
    outputs = []
    for extra in ([], ["--json"], ["--skip-invalid"], ["--skip-invalid", "--json"]):
        result = runner.invoke(cli, ["--home", str(home), "ingest", str(path), *extra])
        outputs.append(result.output)
    outputs.append(runner.invoke(cli, ["--home", str(home), "records", "stats"]).output)
    outputs.append(runner.invoke(cli, ["--home", str(home), "records", "stats", "--json"]).output)
    assert "prs_Birthdate" in outputs[0] and "a date that does not exist" in outputs[0]
    text = "\n".join(outputs)
    for needle in (PLANTED_NAME, PLANTED_NAME.lower(), "799 31", PLANTED_BIRTH, "1987"):
        assert needle not in text


# ---- stats and the CLI ----------------------------------------------------------------------------


def test_stats_counts(node: NodeContext, tmp_path: Path) -> None:
    empty = records.stats(node)
    assert (empty["persons"], empty["by_citizenship"], empty["last_load"]) == (0, [], None)
    ingest_file(node, write_csv(tmp_path / "cases.csv", ROWS))
    stats = records.stats(node)
    assert stats == {
        "persons": 2,
        "cases": 2,
        "records": 3,
        "victims": 1,
        "perpetrators": 1,
        "matchable_persons": 1,
        "by_handling_code": {"H0": 1, "H1": 1, "H2": 1},
        "by_citizenship": [{"country": "UKR", "persons": 2}, {"country": "MDA", "persons": 1}],
        "by_exploitation_type": {"ForcedCriminality": 1, "ForcedLabour": 1, "SexualExploitation": 1},
        "by_exploitation_country": {"DEU": 1, "NLD": 1},
        "last_load": {"finished_at": "2026-11-18T11:06:40Z", "rows_loaded": 3, "rows_rejected": 0},
    }


def test_cli_ingest_and_stats_with_json(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    path = write_csv(tmp_path / "cases.csv", ROWS)
    result = runner.invoke(cli, ["--home", str(home), "ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows_loaded"], report["cases_created"], report["problems"]) == (3, 2, [])
    result = runner.invoke(cli, ["--home", str(home), "ingest", str(path), "--progress"])
    assert result.exit_code == 0
    assert "loaded 3 of 3 rows from cases.csv" in result.stdout
    assert "loaded 3 of 3 rows (100%)" in result.stderr
    result = runner.invoke(cli, ["--home", str(home), "records", "stats", "--json"])
    assert json.loads(result.stdout)["persons"] == 2
    result = runner.invoke(cli, ["--home", str(home), "records", "stats"])
    assert "persons 2 (victims 1, perpetrators 1, matchable 1)" in result.stdout


def test_cli_rejected_rows_exit_1(home: Path, tmp_path: Path) -> None:
    rows = [{**VICTIM, "prs_Gender": f"Bad{i}", "cas_CaseId": f"C-{i}"} for i in range(60)]
    path = write_csv(tmp_path / "bad.csv", rows)
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "ingest", str(path)])
    assert result.exit_code == 1
    assert "60 problem(s) in 60 of 60 row(s); nothing was loaded [invalid_rows]" in result.stderr
    assert "... and 10 more problems (--json lists them all)" in result.stderr
    result = runner.invoke(cli, ["--home", str(home), "ingest", str(path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["error"] == "invalid_rows" and len(data["report"]["problems"]) == 60
    result = runner.invoke(
        cli, ["--home", str(home), "ingest", str(path), "--rejects", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 2 and "--rejects needs --skip-invalid" in result.output


# ---- the fast path for CSV cells ---------------------------------------------------------------

RULES = RowRules(latest_date=date(2026, 11, 29), default_matchable=False, default_handling_code="H2")
_SAMPLES = {
    "id": ["C-1", " P-2 ", "x" * 129, "C\x00"],
    "text": ["Ana", " Олена ", "Nguye\u0302\u0303n", "x\x01y", "a" * 201, "Zyx;Q"],
    "free": ["met at the shelter", "line\nbreak", "bell\x07"],
    "phone": ["+40 721 000 000", "12", "+40 7x1"],
    "email": ["ana@example.org", "ana.example.org"],
    "date": ["1990-02-28", "1990", "1990-05", "2026-11-30", "1899", "1990-02-30", " 2024-05-02"],
    "int": ["0", "17", "121", "-1", "3.0"],
    "bool": ["true", "No", "1", "maybe"],
    "language": ["ron", "RON", "ro"],
    "grading": ["B2", "b2", "Z9"],
}


def _cells(spec: Any) -> st.SearchStrategy[str]:
    names = sorted(spec.lookup.values())[:40] if spec.lookup else []
    named = st.sampled_from(names).flatmap(
        lambda v: st.sampled_from([v, v.lower(), f" {v} ", f"{v};{v}", f"{v}; {names[0]}", f"{v};x"])
    ) if names else st.nothing()  # fmt: skip
    samples = _SAMPLES.get(spec.kind, [])
    return st.one_of(
        st.just(""),
        st.just(" "),
        named,
        st.sampled_from(samples) if samples else st.nothing(),
        st.text(max_size=6),
    )


_HEADER = [
    "cas_CaseId",
    "prs_PersonId",
    "role",
    *sorted(set(FIELDS) - set(REQUIRED)),
    "cas_IncomingReferralDetails",
]


@st.composite
def _files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header (the required columns and a sample of the others) and rows of cells under it."""
    extra = draw(st.lists(st.sampled_from(_HEADER[3:]), unique=True, max_size=len(_HEADER)))
    header = ["cas_CaseId", "prs_PersonId", "role", *extra]
    specs = [field_spec(name) for name in header]
    role = st.sampled_from(["victim", "perpetrator", "Victim", "witness", ""])
    cell = {name: role if name == "role" else _cells(spec) for name, spec in zip(header, specs, strict=True)}
    rows = draw(st.lists(st.tuples(*(cell[name] for name in header)).map(list), min_size=1, max_size=6))
    return header, rows


@settings(max_examples=400, deadline=None)
@given(file=_files(), sqlite=st.booleans())
def test_csv_fast_path_agrees_with_the_full_check(
    file: tuple[list[str], list[list[str]]], sqlite: bool
) -> None:
    """Whatever row the fast path takes, it encodes as the full check and RowEncoder do; rows share
    one CellEncoder, so that its memos carry over from row to row."""
    header, rows = file
    columns = resolve_columns(header)
    encoder = RowEncoder(sqlite=sqlite)
    fast = CellEncoder(columns, RowChecker(RULES), encoder)
    for cells in rows:
        encoded = fast.encode(cells)
        values = {name: cell for name, cell in zip(columns, cells, strict=True) if name and cell}
        record, problems = validate_row(values, row=2, rules=RULES)
        if encoded is not None:
            assert record is not None and problems == [], problems
            assert encoded == encoder.encode(record)


EDGE_ROWS = [
    VICTIM,
    PERPETRATOR,
    {**VICTIM, "hte_TransitCountry": "POL; DEU;pol", "hte_TransitCity": "Łódź", "hte_TransitDate": "2024-01"},
    {**VICTIM, "hte_TransitCity": "Wien", "hte_RecruitmentCountry": "", "hte_ExploitationDate": "2024"},
    {**VICTIM, "shr_Matchable": " ", "shr_HandlingCode": "h3", "shr_Grading": "c4", "prs_Deceased": "no"},
    {**VICTIM, "cas_IncomingReferralDetails": "from the police", "cco_CaseComment": ""},
    {**PERPETRATOR, "per_RoleDetails": "drove the van", "prs_NumberOfChildren": "03"},
    {**VICTIM, "prs_FirstName": " Nguye\u0302\u0303n ", "prs_Citizenship": "xxa;ROU", "prs_Email": "a@b.org"},
    {**VICTIM, "cas_RegistrationDate": "", "cas_Status": "closedreferred"},
    {**VICTIM, "per_RoleDetails": "on a victim row"},  # the full check refuses it
    {**VICTIM, "prs_Birthdate": "2026-11-30"},  # in the future: refused
]


@pytest.mark.parametrize("sqlite", [True, False])
def test_csv_fast_path_agrees_on_edge_rows(sqlite: bool) -> None:
    header = list(dict.fromkeys(k for row in EDGE_ROWS for k in row))
    columns = resolve_columns(header)
    encoder = RowEncoder(sqlite=sqlite)
    fast = CellEncoder(columns, RowChecker(RULES), encoder)
    taken = 0
    for row in EDGE_ROWS:
        cells = [row.get(name, "") for name in header]
        record, _ = validate_row({k: v for k, v in row.items() if v}, row=2, rules=RULES)
        encoded = fast.encode(cells)
        assert (encoded is None) == (record is None)
        if record is not None:
            assert encoded == encoder.encode(record)
            taken += 1
    assert taken == len(EDGE_ROWS) - 2


def test_synthetic_rows_take_the_fast_path_and_agree_with_the_full_check() -> None:
    rows = generate_country("ROU", 600, seed=3)
    header = columns_for(rows)
    columns = resolve_columns(header)
    rules = RowRules(latest_date=synth_latest, default_matchable=True, default_handling_code="H0")
    for sqlite in (True, False):
        encoder = RowEncoder(sqlite=sqlite)
        fast = CellEncoder(columns, RowChecker(rules), encoder)
        for row in rows:
            cells = [";".join(v) if isinstance(v, list) else (v or "") for v in (row.get(c) for c in header)]
            record, problems = validate_row(dict(zip(header, cells, strict=True)), row=2, rules=rules)
            assert record is not None and problems == []
            assert fast.encode(cells) == encoder.encode(record)
