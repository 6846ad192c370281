"""E-mail campaigns end to end on the embedded default: quiet hours in the customer's own time zone, the
outbox, and the answers customers give on their page stopping reminders."""

from __future__ import annotations

import csv
import email
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from sqlalchemy import select

from comms.campaign.plan import plan_campaign
from comms.campaign.run import run_embedded
from comms.ingest import ingest_file
from comms.segment.run import segment_snapshot
from comms.store.ledger import jobs

FIELDS = ["customer_id", "name", "email", "country", "locale", "timezone", "currency", "invoice_number",
          "issue_date", "due_date", "amount"]


def zone_where_it_is(hour_ok: bool, now: datetime) -> str:
    """A real IANA zone where the local hour is inside (or outside) 08:00-21:00 right now."""
    for name in sorted(available_timezones()):
        if not name.startswith(("Europe/", "America/", "Asia/", "Pacific/", "Australia/")):
            continue
        local = now.astimezone(ZoneInfo(name))
        inside = 8 <= local.hour < 21 and not (local.hour == 20 and local.minute > 50)
        outside = (local.hour >= 22 or local.hour < 6)
        if (hour_ok and inside and local.hour >= 9) or (not hour_ok and outside):
            return name
    raise AssertionError("no zone found")


@pytest.fixture
def two_customers(store, tmp_path):
    now = datetime.now(timezone.utc)
    awake, asleep = zone_where_it_is(True, now), zone_where_it_is(False, now)
    path = tmp_path / "two.csv"
    as_of = date.today()
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FIELDS)
        for cid, tz in (("AWAKE", awake), ("ASLEEP", asleep)):
            w.writerow([cid, f"Customer {cid.title()}", f"{cid.lower()}@example.com", "US", "en-US", tz, "USD",
                        f"INV-{cid}", (as_of - timedelta(days=60)).isoformat(),
                        (as_of - timedelta(days=40)).isoformat(), "120.00"])
    ingest_file(path, settings=store.settings, store=store, as_of=as_of)
    segment_snapshot(store, store.settings)
    return store, awake, asleep


def test_email_waits_for_the_morning_in_the_customers_own_time_zone(two_customers):
    store, awake, asleep = two_customers
    report = plan_campaign(store, store.settings, "night", ["email"])
    camp = run_embedded(store, store.settings, "night", workers=1)
    assert camp.state == "running"  # one e-mail still waits
    with store.begin() as conn:
        rows = {r.customer_id: r for r in conn.execute(select(jobs).where(jobs.c.campaign_id == report.campaign_id))}
    assert rows["AWAKE"].state == "sent"
    assert rows["ASLEEP"].state == "planned"
    morning = rows["ASLEEP"].not_before
    if morning.tzinfo is None:
        morning = morning.replace(tzinfo=timezone.utc)
    local = morning.astimezone(ZoneInfo(asleep))
    assert (local.hour, local.minute) == (8, 0)
    assert morning > datetime.now(timezone.utc)
    outbox = list((store.settings.outbox_dir).rglob("*.eml"))
    assert len(outbox) == 1
    message = email.message_from_bytes(outbox[0].read_bytes())
    assert "awake@example.com" in message["To"]


def test_a_customer_who_pays_during_the_campaign_gets_nothing_after_the_payment(two_customers, monkeypatch):
    from decimal import Decimal

    from comms.campaign.run import run_embedded
    from comms.payments.checkout import create_checkout, record_payment

    store, awake, asleep = two_customers
    monkeypatch.setenv("COMMS_EMAIL_WINDOW", "00:00-24:00")
    report = plan_campaign(store, store.settings, "pay", ["page", "email"])
    # the page went out, then the customer paid on it, before the e-mail was sent
    checkout = create_checkout(store, provider="demo", campaign="pay", customer_id="AWAKE", purpose="full",
                               amount=Decimal("120.00"), currency="USD")
    assert record_payment(store, checkout, provider_ref="demo-1", amount=Decimal("120.00"), currency="USD")
    camp = run_embedded(store, store.settings, "pay", workers=1)
    assert camp.state == "completed"
    with store.begin() as conn:
        rows = {(r.customer_id, r.channel): r for r in conn.execute(
            select(jobs).where(jobs.c.campaign_id == report.campaign_id))}
    assert rows[("AWAKE", "email")].state == "suppressed"
    assert "paid" in rows[("AWAKE", "email")].reason
    assert rows[("ASLEEP", "email")].state == "sent"
    sent_to = [email.message_from_bytes(p.read_bytes())["To"] for p in store.settings.outbox_dir.rglob("*.eml")]
    assert len(sent_to) == 1 and "asleep@example.com" in sent_to[0]


def test_a_flaky_sendgrid_gets_every_email_once_in_the_end(portfolio, monkeypatch):
    """The SendGrid-speaking server answers a fifth of the requests with 429 or 500."""
    from collections import Counter

    from comms.deliver.fake_sendgrid import FakeSendGrid

    with FakeSendGrid(api_key="SG.campaign") as fake:
        fake.flaky(0.2, seed=3)
        for key, value in {"COMMS_EMAIL_BACKEND": "sendgrid", "COMMS_SENDGRID_API_KEY": "SG.campaign",
                           "COMMS_SENDGRID_HOST": fake.url, "COMMS_EMAIL_WINDOW": "00:00-24:00",
                           "COMMS_EMAIL_RETRY_SECONDS": "0", "COMMS_EMAIL_BACKOFF": "0.05"}.items():
            monkeypatch.setenv(key, value)
        from comms.config import Settings
        settings = Settings.load(portfolio.settings.home)
        report = plan_campaign(portfolio, settings, "flaky", ["email"])
        for _ in range(6):  # each pass sends what is due; deferred ones come back on the next
            camp = run_embedded(portfolio, settings, "flaky", workers=2)
            if camp.state == "completed":
                break
        assert camp.state == "completed"
        assert any(r["status"] in (429, 500) for r in fake.requests)  # the provider really failed
        ids = Counter(p["custom_args"]["comms_message_id"] for p in fake.accepted)
        assert max(ids.values()) == 1
        with portfolio.begin() as conn:
            sent = conn.execute(select(jobs.c.message_id).where(
                jobs.c.campaign_id == report.campaign_id, jobs.c.state == "sent")).scalars().all()
        assert len(sent) == sum(report.planned.values())
        assert set(sent) == set(ids)
