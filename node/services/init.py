"""Creating a node home: settings, keys (0600, optionally passphrase-protected), migrated database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from node.errors import OperatorError
from node.keys import NodeKeys, save_keys
from node.settings import SETTINGS_FILE, default_database_url, load_settings, render_settings
from node.storage.db import migrate


def init_home(
    home: Path,
    *,
    node_id: str,
    country: str,
    url: str,
    database_url: str | None = None,
    bind: str | None = None,
    passphrase: str | None = None,
) -> dict[str, Any]:
    """Create a node home at ``home``. Refuses when settings or keys are already there."""
    home = home.resolve()
    if (home / SETTINGS_FILE).exists() or (home / "keys").exists():
        raise OperatorError(
            f"{home} is already a node home; refusing to overwrite its settings or keys", code="home_exists"
        )
    country = country.upper()
    bind = bind or _bind_from_url(url)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    settings_text = render_settings(
        node_id=node_id, country=country, url=url, database_url=database_url, bind=bind
    )
    settings_path = home / SETTINGS_FILE
    settings_path.write_text(settings_text, encoding="utf-8")
    try:
        settings = load_settings(home, env={})  # validates node id, country, url
    except Exception:
        settings_path.unlink()
        raise
    keys = NodeKeys.generate()
    save_keys(keys, settings.keys_dir, passphrase=passphrase)
    migrate(database_url or default_database_url(home))
    return {
        "home": str(home),
        "node_id": settings.node_id,
        "country": settings.country,
        "url": settings.url,
        "database": "sqlite"
        if settings.database_url.startswith("sqlite")
        else settings.database_url.split("://")[0],
        "keys_protected": bool(passphrase),
        "public_keys": keys.public(),
    }


def _bind_from_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and parts.port:
        return f"127.0.0.1:{parts.port}"
    return "127.0.0.1:8400"
