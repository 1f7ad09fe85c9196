"""protocol/ stays pure: no web, database, network, files, processes, clock or randomness (STYLE.md rule 1).

The modules are read with ``ast``, so an import inside a function or under ``if TYPE_CHECKING``
is found too, and a word in a docstring is not mistaken for an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "protocol"

FORBIDDEN_MODULES = frozenset(
    {
        # frameworks and the node itself
        "flask",
        "werkzeug",
        "sqlalchemy",
        "alembic",
        "requests",
        "urllib3",
        "httpx",
        "apscheduler",
        "gunicorn",
        "click",
        "node",
        # files, processes, network
        "os",
        "pathlib",
        "shutil",
        "tempfile",
        "glob",
        "subprocess",
        "socket",
        "ssl",
        "http.client",
        "http.server",
        "urllib.request",  # urllib.parse is pure string handling and allowed
        # clock and randomness come in as arguments
        "time",
        "random",
        "secrets",
    }
)
# Calls that read the clock or the filesystem even though their module is allowed.
FORBIDDEN_CALLS = frozenset(
    {
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
        ("utils", "random"),  # nacl.utils.random: nonces and keys are arguments
    }
)
FORBIDDEN_BUILTINS = frozenset({"open", "input", "exec", "eval", "__import__"})


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import or call in ``source``, as 'line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(_forbidden(name) for name in names):
                found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append(f"{node.lineno}: {func.id}()")
            elif isinstance(func, ast.Attribute) and (_last_name(func.value), func.attr) in FORBIDDEN_CALLS:
                found.append(f"{node.lineno}: {_last_name(func.value)}.{func.attr}()")
    return found


def _forbidden(module: str) -> bool:
    """True if ``module`` or any package above it is forbidden ("os.path" because of "os")."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in FORBIDDEN_MODULES for i in range(1, len(parts) + 1))


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


MODULES = sorted(PROTOCOL_DIR.rglob("*.py"))


def test_protocol_modules_are_found() -> None:
    names = {p.name for p in MODULES}
    assert {"__init__.py", "canonical.py", "envelope.py", "errors.py", "messages.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PROTOCOL_DIR)) for p in MODULES])
def test_protocol_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path)) == []


CAUGHT = [
    ("import flask", "1: import flask"),
    ("import sqlalchemy.orm", "1: import sqlalchemy.orm"),
    ("from requests import Session", "1: from requests import ..."),
    ("from apscheduler.schedulers import background", "1: from apscheduler.schedulers import ..."),
    ("from node.services import exchange", "1: from node.services import ..."),
    ("import os.path", "1: import os.path"),
    ("import json, time", "1: import time"),
    ("def f():\n    import random", "2: import random"),
    ("from pathlib import Path", "1: from pathlib import ..."),
    ("from urllib import request", "1: from urllib import ..."),
    ("import urllib.request", "1: import urllib.request"),
    ("from http.client import HTTPConnection", "1: from http.client import ..."),
    ("import subprocess as sp", "1: import subprocess"),
    ("from datetime import datetime\nx = datetime.now()", "2: datetime.now()"),
    ("import datetime\nx = datetime.date.today()", "2: date.today()"),
    ("import nacl.utils\nn = nacl.utils.random(24)", "2: utils.random()"),
    ("data = open('keys').read()", "1: open()"),
]


@pytest.mark.parametrize(("source", "expected"), CAUGHT, ids=[s for s, _ in CAUGHT])
def test_checker_catches(source: str, expected: str) -> None:
    assert violations(source) == [expected]


ALLOWED = [
    "import hashlib, base64, json, re",
    "from datetime import date\nd = date(2026, 1, 1)",
    "from urllib.parse import urlsplit",
    "from . import errors",
    "import nacl.public",
    '"""We never import flask or os here."""',
    "from protocol.canonical import canonical_json",
]


@pytest.mark.parametrize("source", ALLOWED)
def test_checker_allows(source: str) -> None:
    assert violations(source) == []
