"""Shared fixtures: a temporary home, the store on SQLite and on the PostgreSQL server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from comms.config import Settings
from comms.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATASETS = SHARED / "datasets"
PG_ADMIN_URL = os.environ.get("COMMS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh COMMS_HOME with no database URL from the caller's environment leaking in."""
    h = tmp_path / "home"
    h.mkdir()
    for key in list(os.environ):
        if key.startswith("COMMS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COMMS_HOME", str(h))
    return h


@pytest.fixture
def settings(home) -> Settings:
    return Settings.load(home)


def _pg_database():
    """Create a throwaway PostgreSQL database; yield its URL; drop it."""
    name = f"comms_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is part of the test environment: fail loudly, never skip
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, home, monkeypatch) -> Store:
    """The store, once on SQLite (embedded default) and once on PostgreSQL."""
    if request.param == "postgresql":
        gen = _pg_database()
        url = next(gen)
        request.addfinalizer(lambda: next(gen, None))
        monkeypatch.setenv("COMMS_DATABASE_URL", url)
    s = Store.open(Settings.load(home))
    yield s
    s.dispose()


@pytest.fixture
def pg_url(home, monkeypatch):
    """A throwaway PostgreSQL database URL, also set as COMMS_DATABASE_URL."""
    gen = _pg_database()
    url = next(gen)
    monkeypatch.setenv("COMMS_DATABASE_URL", url)
    yield url
    next(gen, None)


def run_cli(*args: str, home: Path | None = None, env: dict | None = None, check: bool = False,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `comms` command in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
    if home is not None:
        full_env["COMMS_HOME"] = str(home)
    full_env.update(env or {})
    exe = Path(sys.executable).with_name("comms")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd or ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"comms {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli(home):
    """Call the real `comms` command against the test home: cli("ingest", path)."""
    def _run(*args: str, env: dict | None = None, check: bool = False):
        return run_cli(*args, home=home, env={**(env or {}), **({"COMMS_DATABASE_URL": os.environ["COMMS_DATABASE_URL"]} if "COMMS_DATABASE_URL" in os.environ else {})}, check=check)
    return _run


@pytest.fixture
def portfolio(store, tmp_path):
    """The store with a segmented sample portfolio (300 customers, six locales) imported as of 2026-11-02."""
    from datetime import date

    from comms.ingest import ingest_file
    from comms.sample import generate, write
    from comms.segment.run import segment_snapshot

    as_of = date(2026, 11, 2)
    path = write(generate(300, seed=11, as_of=as_of), tmp_path / "portfolio.csv")
    ingest_file(path, settings=store.settings, store=store, as_of=as_of)
    segment_snapshot(store, store.settings)
    return store
