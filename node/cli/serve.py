"""``palermo serve``: the node under gunicorn, with the scheduler in exactly one other process."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import click

from node.cli.common import home_path


class NodeServer:
    """A gunicorn application whose workers each build the app with ``create_app(settings)``."""

    def __init__(self, home: Any, options: dict[str, Any]) -> None:
        from gunicorn.app.base import BaseApplication

        class _App(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
            def load_config(self_inner) -> None:
                for key, value in options.items():
                    self_inner.cfg.set(key, value)

            def load(self_inner) -> Any:
                from node.app import create_app
                from node.settings import load_settings

                return create_app(load_settings(home), passphrase=os.environ.get("PALERMO_PASSPHRASE"))

        self.app = _App()

    def run(self) -> None:
        self.app.run()


@click.command("serve")
@click.option("--bind", help="host:port to listen on (default: the 'bind' setting).")
@click.option("--workers", type=int, help="Number of gunicorn worker processes.")
@click.option(
    "--no-scheduler", is_flag=True, help="Do not start the job scheduler (another process runs it)."
)
@click.pass_context
def serve_command(ctx: click.Context, bind: str | None, workers: int | None, no_scheduler: bool) -> None:
    """Serve the peer API, the REST API and /health under gunicorn; run the jobs in one process."""
    from node.settings import load_settings

    home = home_path(ctx)
    settings = load_settings(home)
    if _keys_protected(home):
        from node.cli.common import passphrase_from_env_or_prompt

        phrase = passphrase_from_env_or_prompt(prompt_if_protected=home / "keys")
        if phrase:
            os.environ["PALERMO_PASSPHRASE"] = phrase
    from node.context import open_node

    open_node(home, passphrase=os.environ.get("PALERMO_PASSPHRASE")).close()  # fail early on bad keys
    scheduler = None
    if not no_scheduler:
        scheduler = subprocess.Popen([sys.executable, "-m", "node.jobs", "--home", str(home)])
    options = {
        "bind": bind or settings.bind,
        "workers": workers or settings.workers,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 120,
        "graceful_timeout": 10,
        "limit_request_line": 8190,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "logconfig_dict": _gunicorn_logging(settings.node_id),
        "proc_name": f"palermo-{settings.node_id}",
    }
    try:
        NodeServer(home, options).run()
    finally:
        if scheduler is not None:
            scheduler.terminate()
            try:
                scheduler.wait(timeout=10)
            except subprocess.TimeoutExpired:
                scheduler.kill()


def _gunicorn_logging(node_id: str) -> dict[str, Any]:
    """gunicorn's own messages as JSON lines too, like the node's."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "node.logs.JsonFormatter", "node_id": node_id}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def _keys_protected(home: Any) -> bool:
    from node.keys import keys_are_protected

    return keys_are_protected(home / "keys")
