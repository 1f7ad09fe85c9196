"""A local federation for trying Palermo: one node home per country, a signed directory, real processes.

Everything lives under one folder: ``DIR/<node id>/`` per node (its ``serve.log`` and
``serve.pid`` beside its settings), ``DIR/governance/`` with the sandbox's governance keys and
``DIR/directory.json``, the directory every node installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from node.errors import OperatorError
from node.settings import SETTINGS_FILE
from protocol.directory import (
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    SignedDirectory,
    WitnessPolicy,
    sign_directory,
)

GOVERNANCE_KEYS = 3
GOVERNANCE_THRESHOLD = 2
ROLES = ["analyst", "data-owner", "linkage-unit", "witness"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ids(countries: list[str]) -> list[tuple[str, str]]:
    result = []
    for code in countries:
        code = code.strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise OperatorError(f"'{code}' is not an ISO 3166-1 alpha-3 country code", code="invalid_country")
        result.append((code.lower(), code))
    if len({n for n, _ in result}) != len(result):
        raise OperatorError("each country may appear only once", code="invalid_country")
    if len(result) < 2:
        raise OperatorError("a sandbox needs at least two nodes", code="invalid_country")
    return result


def _create_homes(root: Path, nodes: list[tuple[str, str]]) -> None:
    from node.services.init import init_home

    for node_id, country in nodes:
        home = root / node_id
        if not (home / SETTINGS_FILE).exists():
            port = _free_port()
            init_home(
                home,
                node_id=node_id,
                country=country,
                url=f"http://127.0.0.1:{port}",
                bind=f"127.0.0.1:{port}",
            )


def _create_directory(root: Path, nodes: list[tuple[str, str]], now: int) -> bytes:
    from node.context import open_node
    from node.services.directory import create_governance_key, load_governance_key

    gov_dir = root / "governance"
    gov_dir.mkdir(mode=0o700, exist_ok=True)
    gov_keys = []
    for i in range(1, GOVERNANCE_KEYS + 1):  # the files 'palermo keys governance-new' writes
        create_governance_key(gov_dir / f"gov-{i}.key", passphrase=None)
        gov_keys.append(load_governance_key(gov_dir / f"gov-{i}.key", passphrase=None))
    members = []
    for node_id, _country in nodes:
        node = open_node(root / node_id)
        members.append(
            Member.from_dict(
                {
                    "node_id": node_id,
                    "country": node.settings.country,
                    "url": node.settings.url,
                    "roles": ROLES,
                    **node.keys.public(),
                }
            )
        )
        node.close()
    directory = Directory(
        federation="sandbox",
        version=1,
        expires=now + 365 * 86400,
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(public=bytes(k.verify_key)) for k in gov_keys),
            threshold=GOVERNANCE_THRESHOLD,
        ),
        members=tuple(members),
        witness_policy=_witness_policy(len(members)),
    )
    document = SignedDirectory(signed=directory)
    for key in gov_keys[:GOVERNANCE_THRESHOLD]:
        document = sign_directory(document, key)
    data = document.to_bytes()
    (root / "directory.json").write_bytes(data)
    return data


def publish_directory(root: Path, member: Member, *, now: int | None = None) -> bytes:
    """The sandbox governance's next directory version, with ``member`` replacing its entry.

    Signed by a threshold of the sandbox's governance keys (``DIR/governance``), written to
    ``DIR/directory.json`` and returned; the caller installs it on the nodes.
    """
    from node.services.directory import DraftChanges, draft_directory, load_governance_key

    current = SignedDirectory.from_bytes((root / "directory.json").read_bytes()).signed
    now = int(time.time()) if now is None else now
    document = draft_directory(current, DraftChanges(expires=now + 365 * 86400, add_members=[member]))
    for path in sorted((root / "governance").glob("gov-*.key"))[:GOVERNANCE_THRESHOLD]:
        document = sign_directory(document, load_governance_key(path, passphrase=None))
    data = document.to_bytes()
    (root / "directory.json").write_bytes(data)
    return data


def _witness_policy(members: int) -> WitnessPolicy | None:
    """A majority of the other members cosign each log, within a day (every sandbox member witnesses)."""
    if members < 2:
        return None
    return WitnessPolicy(quorum=(members - 1) // 2 + 1, max_delay=86400)


def _install_everywhere(root: Path, nodes: list[tuple[str, str]], data: bytes) -> None:
    from node.context import open_node
    from node.services.directory import install_directory, installed_directory

    for node_id, _ in nodes:
        node = open_node(root / node_id)
        try:
            if installed_directory(node) is None:
                install_directory(node, data, initial=True)
        finally:
            node.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(home: Path) -> int | None:
    try:
        return int((home / "serve.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _start(home: Path) -> subprocess.Popen[bytes]:
    log = open(home / "serve.log", "ab")  # noqa: SIM115 - handed to the child process
    env = {**os.environ, "PALERMO_HOME": str(home)}
    env.pop("PALERMO_PASSPHRASE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "--home", str(home), "serve"],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    (home / "serve.pid").write_text(str(process.pid))
    return process


def _wait_healthy(url: str, process: subprocess.Popen[bytes], home: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OperatorError(
                f"the node in {home} stopped while starting; see {home / 'serve.log'}", code="sandbox_failed"
            )
        try:
            if requests.get(url.rstrip("/") + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise OperatorError(
        f"the node in {home} did not become healthy in {timeout:.0f} s; see {home / 'serve.log'}",
        code="sandbox_failed",
    )


def up(root: Path, countries: list[str], *, now: int | None = None) -> dict[str, Any]:
    """Create (or restart) a sandbox under ``root`` and wait until every node answers /health."""
    root = root.resolve()
    nodes = _node_ids(countries)
    root.mkdir(parents=True, exist_ok=True)
    running = [n for n, _ in nodes if (pid := _read_pid(root / n)) is not None and _pid_alive(pid)]
    if running:
        raise OperatorError(
            f"sandbox nodes already running in {root}: {', '.join(running)}", code="sandbox_running"
        )
    _create_homes(root, nodes)
    directory_path = root / "directory.json"
    data = (
        directory_path.read_bytes()
        if directory_path.exists()
        else _create_directory(root, nodes, now or int(time.time()))
    )
    _install_everywhere(root, nodes, data)
    started = []
    try:
        for node_id, _ in nodes:
            started.append((node_id, _start(root / node_id)))
        for node_id, process in started:
            _wait_healthy(_url(root / node_id), process, root / node_id)
    except Exception:
        down(root)
        raise
    return describe(root, nodes)


def _url(home: Path) -> str:
    from node.settings import load_settings

    return load_settings(home, env={}).url


def describe(root: Path, nodes: list[tuple[str, str]]) -> dict[str, Any]:
    signed = SignedDirectory.from_bytes((root / "directory.json").read_bytes()).signed
    return {
        "nodes": [{"id": n, "country": c, "home": str(root / n), "url": _url(root / n)} for n, c in nodes],
        "directory": {
            "path": str(root / "directory.json"),
            "federation": signed.federation,
            "version": signed.version,
            "expires": signed.expires,
        },
    }


def down(root: Path, *, timeout: float = 15.0) -> dict[str, Any]:
    """Stop every sandbox node under ``root`` (SIGTERM to its process group, SIGKILL after ``timeout``)."""
    root = root.resolve()
    if not root.is_dir():
        raise OperatorError(f"no sandbox at {root}", code="no_sandbox")
    stopped = []
    for home in sorted(p for p in root.iterdir() if (p / "serve.pid").exists()):
        pid = _read_pid(home)
        if pid is not None and _pid_alive(pid):
            _stop(pid, timeout)
            stopped.append(home.name)
        (home / "serve.pid").unlink(missing_ok=True)
    return {"stopped": stopped, "dir": str(root)}


def _stop(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0 if _pid_alive(pid) else pid
        if done or not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def load_description(root: Path) -> dict[str, Any]:
    """The sandbox's nodes as ``up`` printed them, read back from the folder."""
    homes = sorted(p for p in root.resolve().iterdir() if (p / SETTINGS_FILE).exists())
    nodes = [(h.name, _country(h)) for h in homes]
    return describe(root.resolve(), nodes)


def _country(home: Path) -> str:
    from node.settings import load_settings

    return load_settings(home, env={}).country
