"""The store migrates itself, runs on SQLite (WAL) and PostgreSQL, and keeps snapshots immutable."""

from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest
from sqlalchemy import inspect, text

from comms.config import Settings
from comms.errors import StoreError
from comms.store import Store
from comms.store.snapshots import get_snapshot, load_customers, save_snapshot

MONEY = pa.decimal128(18, 2)


def customers_table(email_b="b@example.com", balance_b="2.00"):
    return pa.table({
        "customer_id": ["A1", "B2"], "name": ["Anna Rossi", "שרה כהן"], "email": [None, email_b],
        "country": ["IT", "IL"], "locale": ["it-IT", "he-IL"], "timezone": ["Europe/Rome", "Asia/Jerusalem"],
        "currency": ["EUR", "ILS"], "consent_email": [True, True], "consent_sms": [False, False],
        "consent_letter": [True, True], "do_not_contact": [False, False], "dispute": [False, True],
        "balance": pa.array([Decimal("1234.50"), Decimal(balance_b)], MONEY), "days_past_due": [3, 40],
    })


def save(store, table):
    inv = pa.table({"customer_id": ["A1"], "amount": pa.array([Decimal("1234.50")], MONEY)})
    return save_snapshot(store, table, inv, as_of=date(2026, 11, 1), source_name="crm.csv",
                         source_sha256="0" * 64, mapping_name=None, layout="invoice", rows_in=3,
                         rows_accepted=3, rows_rejected=0, filled_fields={}, defaulted_fields=[])


def test_fresh_store_has_every_table(store):
    tables = set(inspect(store.engine).get_table_names())
    assert {"snapshots", "customers", "score_models", "segment_runs", "link_revocations", "campaigns",
            "jobs"} <= tables


def test_sqlite_store_runs_in_wal_mode(home):
    s = Store.open(Settings.load(home))
    with s.begin() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_reopening_a_migrated_store_is_at_the_newest_migration(store):
    from alembic.script import ScriptDirectory

    from comms.store.db import SCHEMA_HEAD, alembic_config
    head = ScriptDirectory.from_config(alembic_config(store.settings.database_url)).get_current_head()
    assert SCHEMA_HEAD == head  # a store at SCHEMA_HEAD is taken as migrated without asking alembic
    again = Store.open(store.settings)
    with again.begin() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head


def test_a_store_one_migration_behind_is_brought_to_the_head_on_open(store):
    from alembic import command

    from comms.store.db import SCHEMA_HEAD, alembic_config
    command.downgrade(alembic_config(store.settings.database_url), "-1")
    with store.begin() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() != SCHEMA_HEAD
    again = Store.open(store.settings)
    with again.begin() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == SCHEMA_HEAD


def test_reimport_updates_customers_by_id_and_keeps_old_snapshot(store):
    first = save(store, customers_table())
    second = save(store, customers_table(email_b="new@example.com", balance_b="99.99"))
    assert second.id != first.id
    with store.begin() as conn:
        points = dict(conn.execute(text("select customer_id, snapshot_id from customers")).all())
        bal = conn.execute(text("select balance from customers where customer_id = 'B2'")).scalar()
    assert points == {"A1": second.id, "B2": second.id}
    assert Decimal(str(bal)) == Decimal("99.99")
    now = load_customers(get_snapshot(store, points["B2"])).set_index("customer_id")
    assert now.loc["B2", "email"] == "new@example.com"
    old = load_customers(get_snapshot(store, first.id)).set_index("customer_id")
    assert old.loc["B2", "email"] == "b@example.com"
    assert old.loc["B2", "balance"] == Decimal("2.00")
    assert old.loc["B2", "name"] == "שרה כהן"


def test_no_snapshot_yet_is_a_clear_error(store):
    with pytest.raises(StoreError, match="comms ingest"):
        get_snapshot(store)


def test_unreachable_database_is_one_line(home, monkeypatch):
    monkeypatch.setenv("COMMS_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store.open(Settings.load(home))


def test_migrations_build_exactly_the_tables_the_code_declares(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import comms.store.ledger  # noqa: F401
    from comms.store.schema import metadata
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    assert diff == []
