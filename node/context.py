"""Bootstrap: open one node's settings, keys and database. Used by the CLI, the app and the jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.keys import NodeKeys, load_keys
from node.settings import Settings, load_settings
from node.storage.db import Database

if TYPE_CHECKING:
    from node.transport import PeerTransport


def system_clock() -> int:
    return int(time.time())


@dataclass
class NodeContext:
    """What a service needs to act for this node. Clock and randomness are injectable for tests."""

    settings: Settings
    keys: NodeKeys
    db: Database
    clock: Callable[[], int] = system_clock
    random_bytes: Callable[[int], bytes] = os.urandom
    transport: PeerTransport | None = field(default=None)
    cache: dict[str, Any] = field(default_factory=dict)  # per-process caches of services
    passphrase: str | None = field(default=None, repr=False)  # reopens the keys after a rotation

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    def peer_transport(self) -> PeerTransport:
        if self.transport is None:
            from node.transport import HttpTransport

            self.transport = HttpTransport(
                timeout=self.settings.peer_timeout_seconds,
                max_response_bytes=self.settings.max_response_bytes,
            )
        return self.transport

    def close(self) -> None:
        self.db.dispose()


def open_node(
    home: Path, *, passphrase: str | None = None, transport: PeerTransport | None = None
) -> NodeContext:
    """Open the node whose home is ``home``. Raises ConfigurationError when it is not a node home."""
    settings = load_settings(home)
    keys = load_keys(settings.keys_dir, passphrase=passphrase)
    return NodeContext(
        settings=settings,
        keys=keys,
        db=Database(settings.database_url),
        transport=transport,
        passphrase=passphrase,
    )
