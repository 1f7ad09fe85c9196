"""Palermo protocol: pure logic shared by every node.

Nothing in this package touches the network, a database, files or the clock: bytes and
objects come in, verified objects or a :class:`protocol.errors.ProtocolError` come out.
Time and randomness are arguments.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1
