"""palermo init: the node home, its keys and settings, and the schema on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.errors import ConfigurationError, OperatorError
from node.keys import load_keys
from node.services.init import init_home
from node.settings import load_settings
from node.storage.db import alembic_config, current_revision


def test_init_creates_a_private_home(tmp_path: Path) -> None:
    home = tmp_path / "node"
    result = CliRunner().invoke(
        cli,
        [
            "init",
            "--home",
            str(home),
            "--node-id",
            "nld",
            "--country",
            "nld",
            "--url",
            "http://127.0.0.1:8401",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["node_id"], out["country"], out["database"], out["keys_protected"]) == (
        "nld",
        "NLD",
        "sqlite",
        False,
    )
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("signing", "encryption", "log"):
        assert stat.S_IMODE((home / "keys" / f"{name}.key").stat().st_mode) == 0o600
    keys = load_keys(home / "keys", passphrase=None)
    assert len({bytes(keys.signing.verify_key), bytes(keys.log.verify_key)}) == 2  # a separate log key
    assert current_revision(load_settings(home).database_url) is not None


def test_init_refuses_an_existing_home(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, node_id="nld", country="NLD", url="http://127.0.0.1:8401")
    before = (home / "keys" / "signing.key").read_bytes()
    result = CliRunner().invoke(
        cli, ["init", "--home", str(home), "--node-id", "nld", "--country", "NLD", "--url", "http://x:1"]
    )
    assert result.exit_code == 1
    assert "home_exists" in result.output
    assert (home / "keys" / "signing.key").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node-id", "NLD!", "--country", "NLD"], "node_id"),
        (["--node-id", "nld", "--country", "Netherlands"], "country"),
    ],
)
def test_init_refuses_bad_settings_and_leaves_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    home = tmp_path / "node"
    result = CliRunner().invoke(cli, ["init", "--home", str(home), *args, "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 1 and message in result.output
    assert not (home / "keys").exists() and not (home / "palermo.toml").exists()


def test_passphrase_protected_keys(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, node_id="nld", country="NLD", url="http://127.0.0.1:8401", passphrase="correct horse")
    text = (home / "keys" / "signing.key").read_text()
    assert json.loads(text)["protection"] == "argon2id-secretbox" and "key" not in json.loads(text)
    with pytest.raises(ConfigurationError, match="passphrase-protected"):
        load_keys(home / "keys", passphrase=None)
    with pytest.raises(ConfigurationError, match="wrong passphrase"):
        load_keys(home / "keys", passphrase="wrong")
    assert load_keys(home / "keys", passphrase="correct horse").signing is not None


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, node_id="nld", country="NLD", url="http://127.0.0.1:8401")
    (home / "keys" / "log.key").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_keys(home / "keys", passphrase=None)


def test_settings_environment_overrides(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_home(home, node_id="nld", country="NLD", url="http://127.0.0.1:8401")
    settings = load_settings(home, env={"PALERMO_WORKERS": "5", "PALERMO_DEFAULT_MATCHABLE": "yes"})
    assert (settings.workers, settings.default_matchable) == (5, True)
    with pytest.raises(ConfigurationError, match="PALERMO_WORKERS"):
        load_settings(home, env={"PALERMO_WORKERS": "many"})


def test_settings_missing_home_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="palermo init"):
        load_settings(tmp_path / "nowhere")


def test_schema_matches_the_models(make_home: Callable[..., Path], database_url: str | None) -> None:
    """The migrations create exactly what the models describe, on SQLite and PostgreSQL."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from node.storage.db import make_engine
    from node.storage.models import Base, load_all_models

    home = make_home("nld", "NLD", database_url=database_url)
    load_all_models()
    engine = make_engine(load_settings(home).database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert diff == []
    assert alembic_config("sqlite://").get_main_option("script_location").endswith("migrations")


def test_unknown_peer_is_an_operator_error(make_home: Callable[..., Path]) -> None:
    from federation import build_federation

    from node.services.peers import ping

    fed = build_federation(make_home, [("nld", "NLD"), ("rou", "ROU")])
    with pytest.raises(OperatorError) as raised:
        ping(fed.nodes["nld"], ["xyz"])
    assert raised.value.code == "unknown_peer"
