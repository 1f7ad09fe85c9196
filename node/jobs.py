"""Scheduled jobs, run by APScheduler in exactly one process per node.

``palermo serve`` starts this module as its own process next to the gunicorn workers. A lock
file in the node home makes a second scheduler for the same node refuse to start, so jobs never
run twice even if someone starts ``serve`` twice. Jobs only call services.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.context import NodeContext, open_node
from node.errors import NodeError

log = logging.getLogger("palermo.jobs")


@contextmanager
def _flock(path: Path, *, wait: bool) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as e:
            raise NodeError(f"{path.name} is held by another process", code="locked") from e
        yield
    finally:
        os.close(fd)


def scheduler_lock(home: Path, *, wait: bool = False) -> Any:
    """Held by the scheduler process for its whole life."""
    return _flock(home / "scheduler.lock", wait=wait)


def delivery_lock(home: Path) -> Any:
    """Held while the outbox is being delivered, by the job or by ``palermo outbox flush``."""
    return _flock(home / "outbox.lock", wait=True)


def round_lock(home: Path, peer: str) -> Any:
    """Held while a matching round with ``peer`` runs, by the job or by ``palermo match run``."""
    return _flock(home / f"match-{peer}.lock", wait=False)


def features_lock(home: Path) -> Any:
    """Held while cached matching features are written, by a round or by the prepare job."""
    return _flock(home / "features.lock", wait=True)


def prepare_features(node: NodeContext) -> None:
    """Keep the matching features of new and changed persons computed ahead of the next round."""
    from node.matching.local import prepare

    report = prepare(node)
    if report["computed"]:
        log.info("matching features prepared", extra={"job": "prepare", **report})


def prepare_query_frame(node: NodeContext) -> None:
    """Keep the query frame built ahead of the next joint query, after records changed."""
    from node.query.frame import prepare_frame

    report = prepare_frame(node)
    if report.get("rebuilt"):
        log.info("query frame prepared", extra={"job": "query-prepare", **report})


def match_with(peer: str) -> Any:
    """The scheduled job that runs a matching round with ``peer``."""

    def match(node: NodeContext) -> None:
        from node.matching.rounds import run_round

        summary = run_round(node, peer)
        log.info(
            "matching round",
            extra={"job": "match", "peer": peer, "candidates": summary.get("candidates"),
                   "seconds": summary.get("seconds", {}).get("total")},
        )  # fmt: skip

    match.__name__ = f"match-{peer}"
    return match


def deliver_outbox(node: NodeContext) -> None:
    from node.services.outbox import deliver_due

    with delivery_lock(node.settings.home):
        report = deliver_due(node)
    if report.delivered or report.failed or report.retried:
        log.info("outbox delivery", extra={"job": "outbox", **report.to_dict()})


def checkpoint_log(node: NodeContext) -> None:
    """Sign a checkpoint when one is due, and have the peers that witness send back cosignatures."""
    from node.services.exchange_log import checkpoint_if_due
    from node.services.witness import witness_all

    if checkpoint_if_due(node) is not None:
        for outcome in witness_all(node):
            if outcome["status"] != "cosigned":
                log.warning("checkpoint not cosigned", extra={"job": "checkpoint", **outcome})


def forget_seen_ids(node: NodeContext) -> None:
    from node.services.channels import forget_expired

    with node.db.transaction() as session:
        forget_expired(session, node.clock())


def _guarded(job: Any, node: NodeContext) -> Any:
    def run() -> None:
        try:
            job(node)
        except NodeError as e:
            log.warning("job failed", extra={"job": job.__name__, "code": e.code})
        except Exception as e:  # a job must never kill the scheduler
            log.error("job crashed", extra={"job": job.__name__, "code": type(e).__name__})

    return run


def build_scheduler(node: NodeContext) -> Any:
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    settings = node.settings
    scheduler.add_job(
        _guarded(deliver_outbox, node), "interval", seconds=settings.outbox_interval_seconds, id="outbox"
    )
    scheduler.add_job(
        _guarded(checkpoint_log, node),
        "interval",
        seconds=min(60, settings.checkpoint_interval_seconds),
        id="checkpoint",
    )
    scheduler.add_job(_guarded(forget_seen_ids, node), "interval", seconds=600, id="forget-seen")
    if settings.match_prepare_minutes:
        scheduler.add_job(
            _guarded(prepare_features, node),
            "interval",
            minutes=settings.match_prepare_minutes,
            next_run_time=datetime.now(UTC),
            id="prepare",
        )
    if settings.query_prepare_minutes:
        scheduler.add_job(
            _guarded(prepare_query_frame, node),
            "interval",
            minutes=settings.query_prepare_minutes,
            next_run_time=datetime.now(UTC),
            id="query-prepare",
        )
    for peer, hours in sorted(settings.match_schedule_hours.items()):
        scheduler.add_job(_guarded(match_with(peer), node), "interval", hours=hours, id=f"match-{peer}")
    return scheduler


def run_scheduler(home: Path) -> None:
    """Run the node's jobs until SIGTERM/SIGINT. Refuses if another scheduler holds the lock."""
    from node.logs import configure_logging

    node = open_node(home, passphrase=os.environ.get("PALERMO_PASSPHRASE"))
    configure_logging(node.settings.log_level, node.node_id)
    with scheduler_lock(home):
        scheduler = build_scheduler(node)
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        log.info("scheduler started", extra={"node_id": node.node_id})
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
        log.info("scheduler stopped", extra={"node_id": node.node_id})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m node.jobs", description="Run a Palermo node's scheduler."
    )
    parser.add_argument("--home", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run_scheduler(args.home.resolve())
    except NodeError as e:
        print(f"error: {e.message} [{e.code}]", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
