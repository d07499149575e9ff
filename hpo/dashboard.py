"""`basset-hpo dashboard`: optuna-dashboard on a study's storage, served by wsgiref.

The port is bound before anything is served, so a port in use is a one-line error, not a
traceback from inside the server. The storage is ours (hpo.storage.make_storage): on SQLite
it runs in WAL mode with a long busy timeout, so the dashboard's reads do not make a running
study's writes fail with "database is locked".
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
import warnings
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import optuna_dashboard

from hpo.errors import ConfigError

log = logging.getLogger(__name__)


class DashboardError(ConfigError):
    """The dashboard cannot listen where it was asked to."""


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # the base class names it so
        log.debug("%s - %s", self.address_string(), format % args)


def bind(host: str, port: int, storage: optuna.storages.BaseStorage) -> WSGIServer:
    """optuna-dashboard's app listening on host:port (not serving yet); DashboardError if the
    port cannot be had."""
    if not 0 <= port <= 65535:
        raise DashboardError(f"--port must be 0..65535, got {port}")
    app = optuna_dashboard.wsgi(storage)
    try:
        return make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on {host} is in use (another dashboard? pick one with --port)"
            ) from None
        reason = err.strerror or str(err)
        raise DashboardError(f"cannot listen on {host}:{port}: {reason}") from None


def study_url(server: WSGIServer, storage: optuna.storages.BaseStorage, study_name: str) -> str:
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an IPv4/IPv6 server
    study_id = storage.get_study_id_from_name(study_name)
    return f"http://{host}:{port}/dashboard/studies/{study_id}"


def serve(server: WSGIServer) -> None:
    """Serve optuna-dashboard until Ctrl-C (or SIGTERM), then close the socket.

    The signal asks the server to stop after the request in hand: a KeyboardInterrupt raised
    inside a request would be swallowed by wsgiref's error handler and the server would go on.
    A second Ctrl-C interrupts at once.
    """
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stopping}

    def stop(signum: int, frame: object) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in stopping:
        signal.signal(sig, stop)
    # optuna-dashboard computes importances (PED-ANOVA) per request: its warnings are not ours
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    try:
        server.serve_forever()
        log.info("dashboard stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
