"""The one door to peers. Every call sets a timeout, caps the response size and turns every failure
into a :class:`node.errors.TransportError` (tuf's ``FetcherInterface`` is the model).

Tests use :class:`InMemoryTransport`, which routes to other nodes' Flask apps in the same process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import requests

from node.errors import TransportError

ENVELOPE_PATH = "/peer/v1/envelopes"


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: bytes


class PeerTransport(Protocol):
    def post_envelope(self, base_url: str, body: bytes, *, timeout: float | None = None) -> PeerResponse:
        """POST wire bytes to the peer's envelope endpoint; raise TransportError on any failure.

        ``timeout`` (seconds) replaces the transport's own for one call (long matching steps)."""
        ...


class HttpTransport:
    """HTTP(S) transport over requests, with a connection pool per process."""

    def __init__(self, *, timeout: float, max_response_bytes: int) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "palermo-node"

    def post_envelope(self, base_url: str, body: bytes, *, timeout: float | None = None) -> PeerResponse:
        url = base_url.rstrip("/") + ENVELOPE_PATH
        timeout = timeout or self.timeout
        try:
            with self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=(min(timeout, 5.0), timeout),
                stream=True,
                allow_redirects=False,
            ) as response:
                return PeerResponse(response.status_code, self._read_capped(response))
        except requests.Timeout as e:
            raise TransportError("the peer did not answer in time", code="peer_timeout") from e
        except requests.ConnectionError as e:
            raise TransportError("the peer could not be reached", code="peer_unreachable") from e
        except requests.RequestException as e:
            raise TransportError("the request to the peer failed", code="peer_unreachable") from e

    def _read_capped(self, response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_content(chunk_size=65536):
            total += len(chunk)
            if total > self.max_response_bytes:
                raise TransportError(
                    f"the peer's answer is larger than {self.max_response_bytes} bytes",
                    code="response_too_large",
                )
            chunks.append(chunk)
        return b"".join(chunks)


class InMemoryTransport:
    """Routes envelope posts to handlers registered by base URL (for tests; no sockets)."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[bytes], PeerResponse]] = {}
        self.down: set[str] = set()

    def register(self, base_url: str, handler: Callable[[bytes], PeerResponse]) -> None:
        self.routes[base_url.rstrip("/")] = handler

    def post_envelope(self, base_url: str, body: bytes, *, timeout: float | None = None) -> PeerResponse:
        key = base_url.rstrip("/")
        if key in self.down or key not in self.routes:
            raise TransportError("the peer could not be reached", code="peer_unreachable")
        return self.routes[key](body)
