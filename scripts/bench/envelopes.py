#!/usr/bin/env python3
"""Envelopes per second one node accepts end to end over loopback, beside the raw PyNaCl rate.

Starts a sandbox of real node processes (gunicorn, SQLite), then measures:
  raw       PyNaCl sign + encrypt + decrypt + verify of the same message, in this process, one core
  accept    pre-sealed ping envelopes POSTed to one node, which verifies, decrypts, checks replay
            state, logs, answers with a signed, encrypted pong (one sender, in order)
  round     full ping round trips through the node code on both sides (sign, encrypt, log, HTTP,
            verify, decrypt, log, reply, verify the reply, log), from 1 and from 2 senders at once

Usage: python scripts/bench/envelopes.py [--count N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nacl.public
import nacl.signing
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.context import open_node
from node.services import sandbox
from node.services.exchange import prepare_request, send_request
from protocol.envelope import Header, Message


def raw_rate(seconds: float = 2.0) -> float:
    sign_a, box_a = nacl.signing.SigningKey.generate(), nacl.public.PrivateKey.generate()
    box_b = nacl.public.PrivateKey.generate()
    message = Message(
        header=Header(id="ab" * 16, type="ping", sender="nld", recipient="rou", created=1, expires=2, seq=1),
        payload={"nonce": "cd" * 16},
    )
    data = message.signing_bytes()
    sender_box, receiver_box = (
        nacl.public.Box(box_a, box_b.public_key),
        nacl.public.Box(box_b, box_a.public_key),
    )
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signed = sign_a.sign(data)
        sealed = sender_box.encrypt(bytes(signed), os.urandom(24))
        sign_a.verify_key.verify(receiver_box.decrypt(sealed))
        n += 1
    return n / (time.perf_counter() - start)


def accept_rate(nld, rou_url: str, count: int) -> float:  # type: ignore[no-untyped-def]
    bodies = [
        prepare_request(nld, "rou", "ping", {"nonce": os.urandom(16).hex()}).sealed.to_bytes()
        for _ in range(count)
    ]
    session = requests.Session()
    start = time.perf_counter()
    for body in bodies:
        response = session.post(rou_url + "/peer/v1/envelopes", data=body, timeout=10)
        assert response.status_code == 200, response.text
    return count / (time.perf_counter() - start)


def round_rate(nodes: list, target: str, count: int) -> float:  # type: ignore[no-untyped-def]
    def run(node) -> None:  # type: ignore[no-untyped-def]
        for _ in range(count):
            send_request(node, target, "ping", {"nonce": os.urandom(16).hex()})

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count * len(nodes) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="palermo-bench-") as tmp:
        root = Path(tmp)
        info = sandbox.up(root, ["NLD", "ROU", "UKR"])
        try:
            nld, ukr = open_node(root / "nld"), open_node(root / "ukr")
            rou_url = next(n["url"] for n in info["nodes"] if n["id"] == "rou")
            raw = raw_rate()
            accept = accept_rate(nld, rou_url, args.count)
            one = round_rate([nld], "rou", args.count // 2)
            two = round_rate([nld, ukr], "rou", args.count // 2)
            raw_after = raw_rate()
        finally:
            sandbox.down(root)
    cores = os.cpu_count()
    print(f"machine: {cores} cores; each figure beside the raw rate measured in the same run")
    print(
        f"raw PyNaCl sign+encrypt+decrypt+verify : {raw:9,.0f} /s (one core; {raw_after:,.0f} /s again at the end)"
    )
    print(
        f"accepted by one node (1 sender, in order): {accept:9,.0f} envelopes/s  = {accept / raw:.2%} of raw"
    )
    print(
        f"full round trips, 1 sender               : {one:9,.0f} /s  (2 envelopes each, both logged on both sides)"
    )
    print(f"full round trips, 2 senders to one node  : {two:9,.0f} /s")


if __name__ == "__main__":
    main()
