"""Where a study lives: storage URLs, Optuna's RDB storage, and the study-wide trial lock.

SQLite (the default, one host) runs in WAL mode with a long busy timeout set on every
connection, so local workers wait for each other instead of failing with "database is locked".
PostgreSQL (`postgresql+psycopg://...`) serves many hosts.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import sqlite3
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from basset import output_folder
from hpo.config import HeartbeatConfig
from hpo.errors import ConfigError, StorageError

ENV_STORAGE = "BASSET_HPO_STORAGE"
SQLITE_BUSY_TIMEOUT_S = 300
PG_CONNECT_TIMEOUT_S = 10
DIALECTS = ("sqlite", "postgresql")


# pip packages of the PostgreSQL drivers SQLAlchemy knows
PG_DRIVERS = {"psycopg": "'basset-hpo[postgres]'", "psycopg2": "psycopg2-binary",
              "pg8000": "pg8000", "asyncpg": "asyncpg", "psycopg2cffi": "psycopg2cffi"}


def resolve_url(flag: str | None, study_name: str, configured: str | None = None) -> str:
    """--storage, else $BASSET_HPO_STORAGE, else the study file's, else studies/<name>.db;
    in canonical form (canonical_url)."""
    url = flag or os.environ.get(ENV_STORAGE) or configured
    if url and not url.isprintable():  # a newline or another control character
        raise ConfigError(f"storage URL {_scrub(url)!r} holds a control character")
    return canonical_url(url or f"sqlite:///studies/{study_name}.db")


def canonical_url(url: str) -> str:
    """The URL with its password percent-encoded, so that every parser reads the same password
    and host: users type `user:p@ss@host`, which SQLAlchemy would read as password `p`, host
    `ss@host`. The host part follows the last `@`. SQLite URLs (paths) are left alone."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.startswith("sqlite") or "@" not in rest:
        return url
    userinfo, _, location = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    try:
        parsed = make_url(f"{scheme}://{location}")
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url  # parse_url says so, without the password
    parsed = parsed.set(username=unquote(user), password=unquote(password) if colon else None)
    return parsed.render_as_string(hide_password=False)


def parse_url(url: str) -> URL:
    """Check a storage URL: a known dialect, a file for SQLite, an installed PostgreSQL driver;
    ConfigError otherwise."""
    try:
        parsed = make_url(canonical_url(url))
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"not a storage URL: {mask(url)!r} (e.g. sqlite:///studies/x.db or "
                          "postgresql+psycopg://USER@HOST:5432/DB)") from None
    except ValueError:  # SQLAlchemy reads the port with int()
        raise ConfigError(f"not a storage URL: {mask(url)!r} (its host:port cannot be read; e.g. "
                          "postgresql+psycopg://USER@HOST:5432/DB)") from None
    if parsed.get_backend_name() not in DIALECTS:
        raise ConfigError(f"storage {mask(url)}: use sqlite:///FILE or postgresql+psycopg://...")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError("storage: an in-memory SQLite database cannot be shared; give a file")
    if parsed.get_backend_name() == "postgresql":
        _check_driver(parsed)
    return parsed


def _check_driver(parsed: URL) -> None:
    driver = parsed.get_driver_name()
    try:
        parsed.get_dialect().import_dbapi()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"storage {mask(parsed)}: unknown PostgreSQL driver {driver!r} "
                          "(use postgresql+psycopg://...)") from None
    except ImportError:
        raise ConfigError(
            f"storage {mask(parsed)}: the PostgreSQL driver {driver} is not installed: pip install "
            f"{PG_DRIVERS.get(driver, driver)} (or use postgresql+psycopg:// with pip install "
            "'basset-hpo[postgres]')"
        ) from None


# Query parameters that carry a credential (libpq's password, sslpassword, passfile; a token,
# a secret, a key...), or whose value spells one (a dsn with password=...)
_SECRET = re.compile(r"pass|pwd|secret|token|key|auth|cred", re.IGNORECASE)
_FILES = ("passfile", "sslkey", "sslcert", "sslrootcert", "sslcrl")  # paths, not credentials


def _secret_query(parsed: URL) -> dict[str, Any]:
    """The URL's query parameters that carry a credential."""
    return {key: value for key, value in parsed.query.items() if key.lower() not in _FILES and (
        _SECRET.search(key) or any(_SECRET.search(v) for v in _values(value)))}


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def credentials(parsed: URL) -> list[str]:
    """Where the URL carries a credential: "password" and the names of secret query
    parameters ([] for none)."""
    return (["password"] if parsed.password else []) + sorted(_secret_query(parsed))


def secrets(url: str) -> set[str]:
    """The credential values a URL carries, as typed and percent-encoded (to scrub messages)."""
    try:
        parsed = make_url(canonical_url(url))
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return set()
    values = [str(parsed.password)] if parsed.password else []
    values += [v for value in _secret_query(parsed).values() for v in _values(value)]
    return {shown for v in values if v for shown in (v, quote(v, safe=""))}


def mask(url: str | URL) -> str:
    """The URL with every credential replaced by ***: the password, and the query parameters
    that carry one (`?password=...`), for every message and log line (whatever the password
    holds: it is parsed as canonical_url reads it)."""
    try:
        parsed = make_url(canonical_url(url)) if isinstance(url, str) else url
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return _scrub(str(url))
    hidden = _secret_query(parsed)
    if hidden:
        parsed = parsed.update_query_dict({key: "***" for key in hidden})
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _scrub(text: str) -> str:
    """A URL SQLAlchemy cannot parse, masked by its text: what follows `user:` up to the last
    `@`, and every query value after a secret-looking key."""
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        userinfo, _, location = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}{':***' if colon else ''}@{location}"
    rest = re.sub(r"([?&][^=&]*(?:pass|pwd|secret|token|key|auth|cred)[^=&]*=)[^&]*", r"\1***",
                  rest, flags=re.IGNORECASE)
    return f"{scheme}{sep}{rest}"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database is None:
        return None
    return Path(parsed.database)


def _sqlite_connect(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        return conn

    return connect


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for the study database (Optuna's engine and ours)."""
    path = sqlite_path(url)
    if path is not None:
        output_folder(path.parent)
        return {"creator": _sqlite_connect(path)}
    # Each worker process has two engines (Optuna's, shared with its heartbeat thread, and ours
    # for epoch rows and the study lock) and needs at most two connections per engine at once
    # (the heartbeat thread; the lock while a trial starts): 4 per worker at rest, so about 25
    # workers per 100 max_connections (PostgreSQL's default). pool_pre_ping and
    # pool_recycle replace connections a server or firewall dropped during an hours-long trial
    # (optuna#5600); connect_timeout turns an unreachable host into an error, not a hang.
    return {
        "pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_recycle": 1800,
        "connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_S},
    }


_PG_UNREACHABLE = (
    ("connection refused", "connection refused"),
    ("failed to resolve host", "unknown host name"),
    ("could not translate host name", "unknown host name"),
    ("timeout expired", "connection timed out"),
    ("timed out", "connection timed out"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("server closed the connection", "the server closed the connection"),
)


def storage_error(url: str, err: BaseException) -> StorageError:
    """One line for a storage that cannot be opened or used; names PostgreSQL's host:port,
    never the password."""
    parsed = make_url(canonical_url(url))
    if isinstance(err, optuna.exceptions.StorageInternalError) and err.__cause__ is not None:
        err = err.__cause__  # Optuna's wrapper says only that a commit failed
    text = str(getattr(err, "orig", None) or err).strip() or type(err).__name__
    for shown in sorted(secrets(url), key=len, reverse=True):
        text = text.replace(shown, "***")
    if parsed.get_backend_name() != "postgresql":
        return StorageError(f"cannot use storage {mask(url)}: {text.splitlines()[0]}")
    host = parsed.host or parsed.query.get("host") or "localhost"  # libpq takes ?host= too
    where = f"PostgreSQL at {host}:{parsed.port or parsed.query.get('port') or 5432}"
    lowered = text.lower()
    for clue, reason in _PG_UNREACHABLE:
        if clue in lowered:
            return StorageError(f"cannot reach {where} ({reason})")
    first = text.splitlines()[0]
    if "connection failed" in lowered or "connection to server" in lowered:
        detail = re.sub(r"^(FATAL|ERROR):\s*", "", first.rsplit(" failed: ", 1)[-1]).strip()
        return StorageError(f"{where} refused the connection as user {parsed.username}: {detail}")
    return StorageError(f"storage error on {where} (database {parsed.database}): {first}")


def make_storage(
    url: str, heartbeat: HeartbeatConfig, *, create: bool = True
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats: a crashed worker's trial is failed, then retried as
    a WAITING copy that keeps its reported epochs (the objective resumes it from its checkpoint).
    create=False (readers): a database without Optuna's tables is an error, left untouched."""
    parse_url(url)
    if not create:
        check_study_tables(url)
    beat: dict[str, Any] = {"skip_table_creation": not create}
    try:
        with warnings.catch_warnings():  # heartbeats are experimental, and chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat.interval:
                beat |= {
                    "heartbeat_interval": heartbeat.interval,
                    "grace_period": heartbeat.grace_period,
                    "heartbeat_stale_trial_callback":
                        optuna.storages.RetryHeartbeatStaleTrialCallback(
                            max_retry=heartbeat.max_retry, inherit_intermediate_values=True
                        ),
                }
            url = canonical_url(url)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url), **beat)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError) as err:
        raise storage_error(url, err) from None


@functools.cache
def optuna_tables() -> frozenset[str]:
    """The tables of the installed Optuna's schema (alembic's own left out), as a fresh in-memory
    storage creates them: no name of Optuna's is written here, and a release that adds or
    renames one is followed."""
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    try:
        return frozenset(sqlalchemy.inspect(storage.engine).get_table_names()) - {"alembic_version"}
    finally:
        storage.engine.dispose()


def check_study_tables(url: str, *, create: bool = False) -> None:
    """A database that holds Optuna's tables, all of them; StorageError otherwise (a damaged
    study: a table dropped). On a plain connection: ours would switch a foreign SQLite file to
    WAL. create=True (run): a new database, or PostgreSQL with other tables, is fine, but an
    SQLite file of another application is refused as readers refuse it."""
    path = sqlite_path(url)
    if create and path is not None and not path.exists():
        return
    kwargs = {} if path else engine_kwargs(url)
    engine = sqlalchemy.create_engine(url, **kwargs)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise storage_error(url, err) from None
    finally:
        engine.dispose()
    if create and "studies" not in tables and (path is None or not tables):
        return
    if "studies" not in tables:
        others = f" (it holds {', '.join(sorted(tables)[:3])}{', ...' if len(tables) > 3 else ''})"
        raise StorageError(f"{mask(url)} is not a study database (no Optuna tables)"
                           f"{others if tables else ''}")
    missing = sorted(optuna_tables() - tables)
    if missing:
        raise StorageError(f"{mask(url)} is a damaged study database: Optuna's table(s) "
                           f"{', '.join(missing)} are missing (restore it from a backup)")


def make_engine(url: str) -> sqlalchemy.Engine:
    """Our own engine on the study database (epoch rows, locks, progress)."""
    return sqlalchemy.create_engine(parse_url(url), **engine_kwargs(url))


class StudyLock:
    """A study-wide mutex across processes and hosts, held while a worker counts the study's
    trials and starts one, so `--n-trials` is never exceeded.

    SQLite: an flock on `<db>.lock` beside the database (SQLite is one host only anyway).
    PostgreSQL: a session advisory lock keyed by the study name.
    """

    def __init__(self, url: str, study_name: str, engine: sqlalchemy.Engine) -> None:
        self._path = sqlite_path(url)
        self._engine = engine
        self._key = zlib.crc32(f"basset-hpo:{study_name}".encode()) - 2**31
        self._handle: Any = None

    def acquire(self) -> None:
        if self._path is not None:
            self._handle = open(f"{self._path}.lock", "a")  # held until release
            fcntl.flock(self._handle, fcntl.LOCK_EX)
        else:
            try:
                self._handle = self._engine.connect()
            except sqlalchemy.exc.SQLAlchemyError as err:
                raise storage_error(self._engine.url.render_as_string(False), err) from None
            self._handle.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})

    def release(self) -> None:
        """Idempotent: the objective releases as soon as its trial exists, the worker again."""
        if self._handle is None:
            return
        if self._path is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        else:
            self._handle.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._handle.commit()
        self._handle.close()
        self._handle = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
