"""The key-rotation step of ``palermo demo``: nld replaces its identity keys while the federation runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from node.context import NodeContext

Say = Callable[[str], None]


def run(nodes: dict[str, NodeContext], root: Path, say: Say, *, step: int) -> dict[str, Any]:
    """nld stages new keys; the sandbox governance lists them in the next directory version; every
    node installs it; the running servers switch within a second, and exchange goes on."""
    from node.services import exchange_log, key_rotation, sandbox
    from node.services.directory import CACHE_SECONDS, install_directory, installed_directory
    from node.services.exchange import send_request
    from protocol.canonical import sha256_hex

    nld = nodes["nld"]
    say(f"\n{step}. nld rotates its identity keys while the federation runs:")
    public = key_rotation.stage(nld, passphrase=None)
    say(
        f"   palermo keys rotate: new signing key {sha256_hex(public['signing'])[:16]}..., new encryption key "
        f"{sha256_hex(public['encryption'])[:16]}... staged; nld keeps using its old keys for now"
    )
    directory = installed_directory(nld)
    listed = directory.member("nld") if directory else None
    assert listed is not None
    data = sandbox.publish_directory(
        root, replace(listed, signing_key=public["signing"], encryption_key=public["encryption"])
    )
    for node in nodes.values():
        install_directory(node, data, initial=False)
    switched = bytes(nld.keys.signing.verify_key) == public["signing"]
    say(
        "   governance signs directory version 2 listing them; nld, rou and ukr install it; nld "
        + ("switched to its new keys (the old ones are in keys/retired/)" if switched else "did NOT switch")
    )
    time.sleep(CACHE_SECONDS + 0.3)  # the running servers read the new directory within a second
    answers = []
    for sender, receiver in (("nld", "rou"), ("rou", "nld"), ("ukr", "nld")):
        nonce = nodes[sender].random_bytes(16).hex()
        reply = send_request(nodes[sender], receiver, "ping", {"nonce": nonce})
        answers.append(reply.reply.header.type == "pong")
        say(f"   ping {sender} -> {receiver}: {reply.reply.header.type}")
    logged = [e for e in exchange_log.recent_entries(nodes["rou"], limit=50) if e["kind"] == "key_rotation"]
    for entry in logged:
        changed = sorted(k[: -len("_new")] for k in entry["detail"] if k.endswith("_new"))
        say(f"   rou's log: key_rotation {entry['outcome']} for {entry['peer']} ({', '.join(changed)})")
    return {"switched": switched, "pings_ok": all(answers), "rou_logged": len(logged)}
