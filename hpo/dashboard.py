"""`basset-hpo dashboard`: optuna-dashboard on a study's storage, served by wsgiref.

The port is bound before anything is served, so a port in use is a one-line error, not a
traceback from inside a server thread. The storage is ours (hpo.storage.make_storage): on SQLite
it runs in WAL mode with a long busy timeout, so the dashboard's reads do not make a running
study's writes fail with "database is locked".
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import optuna_dashboard

from hpo.config import ConfigError

log = logging.getLogger(__name__)


class DashboardError(ConfigError):
    """The dashboard cannot listen where it was asked to."""


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
        log.debug("%s - %s", self.address_string(), format % args)


def bind(host: str, port: int) -> WSGIServer:
    """Listen on host:port now (the application is set later); DashboardError if it cannot."""
    try:
        return make_server(host, port, _not_ready, handler_class=_QuietHandler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on {host} is in use (another dashboard? pick one with --port)"
            ) from None
        reason = err.strerror or str(err)
        raise DashboardError(f"cannot listen on {host}:{port}: {reason}") from None


def _not_ready(environ: dict, start_response: Callable) -> list[bytes]:  # type: ignore[type-arg]
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def study_url(server: WSGIServer, storage: optuna.storages.BaseStorage, study_name: str) -> str:
    host, port = server.server_address[:2]
    study_id = storage.get_study_id_from_name(study_name)
    return f"http://{host}:{port}/dashboard/studies/{study_id}"


def serve(server: WSGIServer, storage: optuna.storages.BaseStorage) -> None:
    """Serve optuna-dashboard until Ctrl-C, then close the socket."""
    server.set_app(optuna_dashboard.wsgi(storage))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("dashboard stopped")
    finally:
        server.server_close()
