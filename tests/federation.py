"""An in-process federation for integration tests: real node homes and Flask apps, no sockets.

Peers reach each other through an InMemoryTransport that posts to the other node's Flask test
client, so every byte goes through the same code as over HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing
from flask import Flask
from flask.testing import FlaskClient

from node.app import create_app
from node.context import NodeContext, open_node
from node.transport import InMemoryTransport, PeerResponse
from protocol.directory import (
    Directory,
    GovernanceKey,
    GovernanceKeys,
    Member,
    SignedDirectory,
    WitnessPolicy,
    sign_directory,
)

ROLES = ["analyst", "data-owner", "linkage-unit", "witness"]


class Clock:
    """A clock tests can move."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Federation:
    nodes: dict[str, NodeContext]
    apps: dict[str, Flask]
    clients: dict[str, FlaskClient]
    transport: InMemoryTransport
    governance: list[nacl.signing.SigningKey]
    clock: Clock
    directory: Directory
    extra: dict[str, Any] = field(default_factory=dict)

    def set_setting(self, node_id: str, **changes: Any) -> None:
        node = self.nodes[node_id]
        node.settings = dataclasses.replace(node.settings, **changes)
        self.apps[node_id].config["MAX_CONTENT_LENGTH"] = node.settings.max_body_bytes


def member_of(node: NodeContext) -> Member:
    return Member.from_dict(
        {
            "node_id": node.node_id,
            "country": node.settings.country,
            "url": node.settings.url,
            "roles": ROLES,
            **node.keys.public(),
        }
    )


def signed_directory(
    members: list[Member],
    keys: list[nacl.signing.SigningKey],
    *,
    version: int,
    expires: int,
    threshold: int = 2,
    witness_policy: WitnessPolicy | None = None,
) -> bytes:
    directory = Directory(
        federation="test",
        version=version,
        expires=expires,
        governance=GovernanceKeys(
            keys=tuple(GovernanceKey(public=bytes(k.verify_key)) for k in keys), threshold=threshold
        ),
        members=tuple(members),
        witness_policy=witness_policy,
    )
    document = SignedDirectory(signed=directory)
    for key in keys[:threshold]:
        document = sign_directory(document, key)
    return document.to_bytes()


def build_federation(
    make_home: Callable[..., Path],
    ids: list[tuple[str, str]],
    *,
    database_url: str | None = None,
    now: int = 1_800_000_000,
    witness_policy: WitnessPolicy | None = None,
) -> Federation:
    from node.services.directory import install_directory

    clock = Clock(now)
    transport = InMemoryTransport()
    nodes: dict[str, NodeContext] = {}
    for i, (node_id, country) in enumerate(ids):
        home = make_home(node_id, country, database_url=database_url if i == 0 else None)
        node = open_node(home, transport=transport)
        node.clock = clock
        nodes[node_id] = node
    governance = [nacl.signing.SigningKey.generate() for _ in range(3)]
    data = signed_directory(
        [member_of(n) for n in sorted(nodes.values(), key=lambda n: n.node_id)],
        governance,
        version=1,
        expires=now + 30 * 86400,
        witness_policy=witness_policy,
    )
    for node in nodes.values():
        install_directory(node, data, initial=True)
    apps, clients = {}, {}
    for node_id, node in nodes.items():
        app = create_app(node.settings, node=node)
        apps[node_id], clients[node_id] = app, app.test_client()
        transport.register(node.settings.url, _route(clients[node_id]))
    from protocol.directory import SignedDirectory as _SD

    return Federation(nodes, apps, clients, transport, governance, clock, _SD.from_bytes(data).signed)


def _route(client: FlaskClient) -> Callable[[bytes], PeerResponse]:
    def post(body: bytes) -> PeerResponse:
        response = client.post("/peer/v1/envelopes", data=body, content_type="application/json")
        return PeerResponse(response.status_code, response.get_data())

    return post


def load_synthetic(
    fed: Federation,
    folder: Path,
    node_ids: list[str],
    rows: int,
    *,
    seed: int,
    overlap: float,
    **options: Any,
) -> None:
    """Load each named node with its country's rows of one synthetic federation (node id = country, lower case)."""
    from node.services.ingest import ingest_file
    from node.services.synth import generate_federation, write_rows

    generated = generate_federation(
        [n.upper() for n in node_ids], rows, seed=seed, overlap=overlap, **options
    )
    for node_id in node_ids:
        path = folder / f"{node_id}.csv"
        write_rows(generated[node_id.upper()], path)
        ingest_file(fed.nodes[node_id], path)


def true_ids(node: NodeContext) -> dict[str, str]:
    """prs_PersonId -> the generator's hidden true identity, for scoring matches in tests."""
    from sqlalchemy import select

    from node.storage.models.records import CasePerson, Person

    with node.db.read() as session:
        query = select(Person.person_id, CasePerson.synth_true_id).join(
            CasePerson, CasePerson.person_id == Person.id
        )
        return {ref: true_id for ref, true_id in session.execute(query)}
