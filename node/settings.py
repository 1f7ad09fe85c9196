"""Node settings: one frozen dataclass read from ``HOME/palermo.toml`` and ``PALERMO_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ConfigurationError

SETTINGS_FILE = "palermo.toml"
ISO3_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Settings:
    """Everything a node process needs to know. No secret has a default: keys live in ``home/keys``."""

    home: Path
    node_id: str
    country: str
    url: str
    database_url: str
    bind: str = "127.0.0.1:8400"
    workers: int = 2
    max_body_bytes: int = 16 * 1024 * 1024
    clock_skew_seconds: int = 120
    envelope_lifetime_seconds: int = 600
    peer_timeout_seconds: float = 10.0
    max_response_bytes: int = 64 * 1024 * 1024
    outbox_max_attempts: int = 20
    outbox_backoff_seconds: int = 5
    outbox_backoff_max_seconds: int = 3600
    outbox_interval_seconds: int = 5
    checkpoint_interval_seconds: int = 300
    match_key_days: int = 90
    match_timeout_seconds: float = 300.0
    match_max_rounds_per_day: int = 24
    match_workers: int = 0  # processes for PSI and comparison; 0: one per core
    match_schedule_hours: dict[str, float] = field(default_factory=dict)
    match_prepare_minutes: int = 10  # 0: features are computed only when a round needs them
    psi_selectors_per_record: int = 32
    psi_max_points: int = 2_000_000
    budget_period: str = "month"  # month | quarter | year (calendar, UTC)
    budget_peer_rho: float = 0.5  # zCDP rho each peer may spend per period
    budget_global_rho: float = (
        1.0  # zCDP rho all peers together (and this node's analysts) may spend per period
    )
    budget_query_rho: float = 0.1  # the most one query may spend
    budget_peer_caps: dict[str, float] = field(
        default_factory=dict
    )  # per-peer caps instead of budget_peer_rho
    budget_delta: float = 1e-7  # the delta at which rho is also shown as epsilon
    query_timeout_seconds: float = 30.0
    query_prepare_minutes: int = (
        10  # rebuild the query frame after records changed (0: only when a query needs it)
    )
    default_matchable: bool = False
    default_handling_code: str = "H2"
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def directory_file(self) -> Path:
        return self.home / "directory.json"


_ENV_PREFIX = "PALERMO_"


def default_database_url(home: Path) -> str:
    return f"sqlite:///{(home / 'palermo.db').resolve()}"


def load_settings(home: Path, env: dict[str, str] | None = None) -> Settings:
    """Read settings from ``home/palermo.toml`` then apply ``PALERMO_<FIELD>`` overrides."""
    env = dict(os.environ) if env is None else env
    path = home / SETTINGS_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"no node home at {home} (missing {SETTINGS_FILE}); run 'palermo init' first"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"{path} is not valid TOML: {e}") from e
    node = data.get("node", {})
    values: dict[str, Any] = {**{k: v for k, v in data.items() if not isinstance(v, dict)}, **node}
    for section in ("server", "exchange", "ingest", "matching", "queries", "log"):
        values.update(data.get(section, {}))
    return _build(home, values, env)


def _build(home: Path, values: dict[str, Any], env: dict[str, str]) -> Settings:
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("home", "extra")}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key in fields:
            kwargs[key] = value
        else:
            extra[key] = value
    for name, f in fields.items():
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is not None:
            kwargs[name] = _coerce(name, raw, f.type)
    kwargs.setdefault("database_url", default_database_url(home))
    for required in ("node_id", "country", "url"):
        if required not in kwargs:
            raise ConfigurationError(f"settings: '{required}' is missing in {home / SETTINGS_FILE}")
    settings = Settings(home=home, extra=extra, **kwargs)
    _validate(settings)
    return settings


def _coerce(name: str, raw: str, kind: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError as e:
        raise ConfigurationError(f"environment variable {_ENV_PREFIX}{name.upper()}: expected {kind}") from e
    return raw


def _validate(settings: Settings) -> None:
    from protocol.envelope import NODE_ID_RE

    if not NODE_ID_RE.match(settings.node_id):
        raise ConfigurationError("settings: node_id must be 2-63 characters of a-z, 0-9 and '-'")
    if not ISO3_RE.match(settings.country):
        raise ConfigurationError("settings: country must be an ISO 3166-1 alpha-3 code such as NLD")
    if not settings.url.startswith(("http://", "https://")):
        raise ConfigurationError("settings: url must start with http:// or https://")
    if settings.default_handling_code not in ("H0", "H1", "H2", "H3"):
        raise ConfigurationError("settings: default_handling_code must be one of H0, H1, H2, H3")
    positive = ("max_body_bytes", "workers", "clock_skew_seconds", "envelope_lifetime_seconds", "match_key_days",
                "match_timeout_seconds", "match_max_rounds_per_day", "psi_selectors_per_record", "psi_max_points")  # fmt: skip
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigurationError(f"settings: {name} must be positive")
    if settings.match_workers < 0:
        raise ConfigurationError("settings: match_workers must be 0 (one per core) or more")
    if settings.match_prepare_minutes < 0:
        raise ConfigurationError("settings: match_prepare_minutes must be 0 (off) or more")
    _validate_budget(settings)
    schedule = settings.match_schedule_hours
    if not isinstance(schedule, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for k, v in schedule.items()
    ):
        raise ConfigurationError(
            'settings: match_schedule_hours must map peer node ids to hours, e.g. { "nl-focal" = 24 }'
        )


BUDGET_PERIODS = ("month", "quarter", "year")
MAX_RHO = 100.0  # far above any sensible cap: a larger value is a typing error


def _validate_budget(settings: Settings) -> None:
    if settings.budget_period not in BUDGET_PERIODS:
        raise ConfigurationError("settings: budget_period must be one of month, quarter, year")
    caps = {"budget_peer_rho": settings.budget_peer_rho, "budget_global_rho": settings.budget_global_rho,
            "budget_query_rho": settings.budget_query_rho}  # fmt: skip
    for name, value in caps.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_RHO:
            raise ConfigurationError(f"settings: {name} must be a number from 0 to {MAX_RHO:g} (zCDP rho)")
    peer_caps = settings.budget_peer_caps
    if not isinstance(peer_caps, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= MAX_RHO
        for k, v in peer_caps.items()
    ):
        raise ConfigurationError(
            'settings: budget_peer_caps must map peer node ids to rho, e.g. { "nl-focal" = 0.25 }'
        )
    if not 0 < settings.budget_delta < 1e-3:
        raise ConfigurationError("settings: budget_delta must be above 0 and below 0.001")
    if settings.query_timeout_seconds <= 0:
        raise ConfigurationError("settings: query_timeout_seconds must be positive")
    if settings.query_prepare_minutes < 0:
        raise ConfigurationError("settings: query_prepare_minutes must be 0 (off) or more")


def render_settings(*, node_id: str, country: str, url: str, database_url: str | None, bind: str) -> str:
    """The settings file written by ``palermo init``, with every tunable shown at its default."""
    db_line = (
        f'database_url = "{database_url}"'
        if database_url
        else '# database_url = "postgresql+psycopg://user@host/db"'
    )
    return f"""# Palermo node settings. Every value can be overridden by PALERMO_<NAME> (upper case).
[node]
node_id = "{node_id}"
country = "{country}"
url = "{url}"        # the endpoint peers use; put it behind TLS in production
{db_line}

[server]
bind = "{bind}"      # where gunicorn listens
workers = 2
max_body_bytes = 16777216

[exchange]
clock_skew_seconds = 120
envelope_lifetime_seconds = 600
peer_timeout_seconds = 10.0
max_response_bytes = 67108864
outbox_max_attempts = 20
outbox_backoff_seconds = 5
outbox_backoff_max_seconds = 3600
outbox_interval_seconds = 5

[ingest]
default_matchable = false   # a row without shr_Matchable is not matched unless this is true
default_handling_code = "H2"

[matching]
match_key_days = 90             # pair keys for encodings rotate every this many days
match_timeout_seconds = 300.0   # how long one matching message may take (PSI over large sets)
match_max_rounds_per_day = 24   # rounds (and PSI sessions) a peer may start with this node per day
match_workers = 0               # processes for PSI and comparisons; 0: one per core
psi_selectors_per_record = 32   # a peer's PSI request may hold at most this many selectors per record it declares
psi_max_points = 2000000
match_schedule_hours = {{}}       # peers matched on a schedule, e.g. {{ "nl-focal" = 24 }}
match_prepare_minutes = 10      # compute new persons' matching features this often (0: only in rounds)

[queries]
# Privacy budget of joint pattern queries, in zCDP rho (docs/queries.md shows it as epsilon too).
budget_period = "month"       # month | quarter | year (calendar months, quarters or years, UTC)
budget_peer_rho = 0.5         # what each peer may spend per period
budget_global_rho = 1.0       # what all peers and this node's analysts may spend together per period
budget_query_rho = 0.1        # the most one query may spend
budget_peer_caps = {{}}         # other caps for some peers, e.g. {{ "nl-focal" = 0.25 }}
budget_delta = 1e-7           # rho is also shown as epsilon at this delta
query_timeout_seconds = 30.0  # how long the analyst waits for each country's answer
query_prepare_minutes = 10    # rebuild the query frame this often after records changed (0: only on demand)

[log]
checkpoint_interval_seconds = 300
log_level = "INFO"
"""
