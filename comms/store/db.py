"""Engine, migrations and transactions."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from ..config import Settings
from ..errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision: a store already there opens without loading alembic (a tenth of a second
# of imports for every command and worker). A test keeps it equal to the head of MIGRATIONS.
SCHEMA_HEAD = "0006"


def as_utc(when: datetime | None) -> datetime | None:
    """A time read back from the store, aware: SQLite returns the UTC time it stored without its zone."""
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None else when


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, poolclass=NullPool)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError("COMMS_DATABASE_URL", f"cannot use {url!r}: {exc}") from None


def alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _revision(conn: Connection) -> str | None:
    """The migration the database is at (None: a new database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


class Store:
    """The one way into the database. ``Store.open()`` migrates to the newest schema on first use."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> "Store":
        settings = settings or Settings.load()
        store = cls(settings, make_engine(settings.database_url))
        if migrate:
            store.migrate()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it already is)."""
        try:
            with self.engine.begin() as conn:
                if _revision(conn) == SCHEMA_HEAD:
                    return
                from alembic import command

                cfg = alembic_config(self.settings.database_url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self.engine.url.render_as_string()}: "
                             f"{str(exc.orig).strip().splitlines()[0]}") from None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back on an exception."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()
