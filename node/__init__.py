"""Palermo node: the service one agency runs on its own premises."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("palermo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
