"""Importing into the store: each import is a snapshot a campaign can point at, and re-importing an
updated export updates customers by id while earlier snapshots stay exactly as they were."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from comms.ingest import ingest_file
from comms.store import schema as t
from comms.store.snapshots import get_snapshot, list_snapshots, load_customers, load_invoices

HEADER = "customer_id,name,email,country,locale,timezone,currency,invoice_number,issue_date,due_date,amount,open_amount"


def export(path, email_c1: str, open_c1: str, extra: str = ""):
    rows = [HEADER,
            f"C1,Anna Rossi,{email_c1},IT,it-IT,Europe/Rome,EUR,F1,2024-01-01,2024-05-31,100.00,{open_c1}",
            "C1,Anna Rossi,{e},IT,it-IT,Europe/Rome,EUR,F2,2024-02-01,2024-06-15,50.00,50.00".replace("{e}", email_c1),
            "C2,שרה כהן,sara@example.org,IL,he-IL,Asia/Jerusalem,ILS,H1,2024-03-01,2024-04-01,75.10,75.10"]
    if extra:
        rows.append(extra)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def current(store) -> dict[str, dict]:
    """Each customer as the store has them now: their row (snapshot, balance, dispute) over their data in the
    snapshot that row points at."""
    with store.begin() as conn:
        rows = conn.execute(select(t.customers)).mappings().all()
    snapshots = {sid: load_customers(get_snapshot(store, sid)).set_index("customer_id")
                 for sid in {r["snapshot_id"] for r in rows}}
    return {r["customer_id"]: {**snapshots[r["snapshot_id"]].loc[r["customer_id"]].to_dict(), **dict(r)}
            for r in rows}


def test_reimport_updates_customer_by_id_and_keeps_each_snapshot(store, settings, tmp_path):
    first = ingest_file(export(tmp_path / "ar.csv", "anna@example.com", "100.00"), settings=settings, store=store,
                        as_of=date(2024, 6, 30))
    assert (first.rows_in, first.accepted, first.rejected, first.customers, first.invoices) == (3, 3, 0, 2, 3)
    assert first.rejects_path is None and first.snapshot.layout == "invoice"
    state = current(store)
    assert state["C1"]["email"] == "anna@example.com" and Decimal(state["C1"]["balance"]) == Decimal("150.00")
    assert state["C1"]["days_past_due"] == 30 and state["C1"]["snapshot_id"] == first.snapshot.id

    bad = "C3,Bad,b@,IT,it-IT,Europe/Rome,EUR,X1,2024-01-01,2024-05-31,1,1"
    second = ingest_file(export(tmp_path / "ar.csv", "anna.rossi@example.net", "40.00", bad), settings=settings,
                         store=store, as_of=date(2024, 7, 31))
    assert (second.rows_in, second.accepted, second.rejected) == (4, 3, 1)
    assert second.snapshot.id != first.snapshot.id and second.rejects_path.exists()
    assert second.rejects_path.name == f"{second.snapshot.id}-ar.rejects.csv"
    state = current(store)
    assert state["C1"]["email"] == "anna.rossi@example.net" and Decimal(state["C1"]["balance"]) == Decimal("90.00")
    assert state["C1"]["snapshot_id"] == second.snapshot.id and "C3" not in state
    assert state["C2"]["name"] == "שרה כהן"

    old = load_customers(get_snapshot(store, first.snapshot.id)).set_index("customer_id")
    assert old.loc["C1", "email"] == "anna@example.com" and old.loc["C1", "balance"] == Decimal("150.00")
    new = load_customers(get_snapshot(store, second.snapshot.id)).set_index("customer_id")
    assert new.loc["C1", "balance"] == Decimal("90.00") and new.loc["C1", "aging_bucket"] == "61-90"
    invoices = load_invoices(get_snapshot(store, first.snapshot.id), ["C1"])
    assert invoices["open_amount"].tolist() == [Decimal("100.00"), Decimal("50.00")]
    assert [s.id for s in list_snapshots(store)] == [first.snapshot.id, second.snapshot.id]
    assert len(get_snapshot(store, first.snapshot.id).data_sha256) == 64


def test_snapshot_records_filled_and_defaulted_fields(store, settings, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,balance\n1,10.50\n2,0\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "columns: {customer_id: id}\n"
        "constants: {country: PL, locale: pl-PL, timezone: Europe/Warsaw, currency: PLN, days_past_due: 0}\n"
        "fill: {seed: 1, fields: {name: fake_name, email: fake_email}}\n", encoding="utf-8")
    report = ingest_file(path, settings=settings, store=store, mapping_path=mapping)
    snap = get_snapshot(store, report.snapshot.id)
    assert snap.filled_fields == {"name": "fake_name (seed 1)", "email": "fake_email (seed 1)"}
    assert "consent_email" in snap.defaulted_fields and report.stats.layout == "customer"
    assert current(store)["1"]["email"].split("@")[1] in ("example.com", "example.net", "example.org")
