"""The campaign's bookkeeping in bulk: customers by id from a sorted copy of the snapshot, planning reasons asked
once per combination of facts, outcomes recorded in one statement per kind, re-queueing only what a broker lost."""

import os

import pytest
import redis
from sqlalchemy import select

from comms.campaign.customers import snapshot_customers
from comms.campaign.plan import plan_campaign
from comms.campaign.run import Outcome, claim, get_campaign, mark_sending, record, requeue_stalled
from comms.campaign.states import JobState
from comms.policy import CustomerFacts, planning_reason
from comms.render.context import customers_from_snapshot
from comms.store.ledger import jobs
from comms.store.snapshots import get_snapshot, load_customers

REDIS = os.environ.get("COMMS_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def test_snapshot_customers_are_those_of_the_parquet_files(portfolio):
    snapshot = get_snapshot(portfolio)
    every = customers_from_snapshot(snapshot)
    reader = snapshot_customers(portfolio.settings, snapshot)
    ids = sorted(every)
    assert reader.get(ids) == every
    some = ids[5:40:3] + [ids[-1], ids[0], "not-a-customer"]
    assert reader.get(some) == {cid: every[cid] for cid in some if cid in every}
    assert reader.get([]) == {}
    gap = [ids[0], ids[2], ids[1] + "-unknown"]  # as many ids asked as lie between the first and the last
    assert reader.get(gap) == {ids[0]: every[ids[0]], ids[2]: every[ids[2]]}
    assert any(c.invoices for c in every.values()) and any(len(c.invoices) > 1 for c in every.values())


def test_planning_reasons_are_the_policy_for_every_customer(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "why", ["email", "letter", "page"])
    facts = load_customers(get_snapshot(portfolio)).set_index("customer_id")
    with portfolio.begin() as conn:
        rows = conn.execute(select(jobs.c.customer_id, jobs.c.channel, jobs.c.reason).where(
            jobs.c.campaign_id == report.campaign_id)).all()
    for cid, channel, reason in rows:
        f = facts.loc[cid]
        email = f.email if isinstance(f.email, str) and f.email else None
        expected = planning_reason(CustomerFacts(bool(f.do_not_contact), bool(f.dispute), bool(f.consent_email),
                                                 bool(f.consent_letter), email,
                                                 isinstance(f.address_line1, str) and bool(f.address_line1)),
                                   channel)
        assert reason == expected  # nothing else blocks in a fresh store


def test_outcomes_of_many_kinds_are_recorded_only_under_the_claim(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "rec", ["page"])
    with portfolio.begin() as conn:
        ids = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id,
                                                   jobs.c.state == "planned").order_by(jobs.c.id)).scalars().all()
    rows = claim(portfolio, report.campaign_id, ids[:6], "page")
    worker = rows[0].worker
    outcomes = [Outcome(ids[0], JobState.SENT, artifact="a.pdf", sha256="0" * 64),
                Outcome(ids[1], JobState.SENT),
                Outcome(ids[2], JobState.FAILED, reason="broken"),
                Outcome(ids[3], JobState.SUPPRESSED, reason="paid"),
                Outcome(ids[4], JobState.SENT, artifact="b.pdf", sha256="1" * 64),
                Outcome(ids[6], JobState.SENT)]  # never claimed: not recorded
    assert record(portfolio, outcomes, worker) == 5
    assert record(portfolio, [Outcome(ids[5], JobState.SENT)], "somebody else") == 0
    with portfolio.begin() as conn:
        got = {r.id: r for r in conn.execute(select(jobs).where(jobs.c.id.in_(ids[:7])))}
    assert [got[i].state for i in ids[:7]] == ["sent", "sent", "failed", "suppressed", "sent", "rendering",
                                               "planned"]
    assert (got[ids[0]].artifact, got[ids[4]].artifact, got[ids[4]].sha256) == ("a.pdf", "b.pdf", "1" * 64)
    assert got[ids[2]].reason == "broken" and got[ids[1]].artifact is None
    assert got[ids[0]].lease_until is None


def test_mark_sending_holds_only_the_jobs_still_claimed_by_this_worker(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "hold", ["page"])
    with portfolio.begin() as conn:
        ids = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id,
                                                   jobs.c.state == "planned").order_by(jobs.c.id)).scalars().all()
    worker = claim(portfolio, report.campaign_id, ids[:3], "page")[0].worker
    assert mark_sending(portfolio, [], "page", worker) == set()
    held = mark_sending(portfolio, [(ids[0], "m0"), (ids[1], "m1"), (ids[3], "m3")], "page", worker)
    assert held == {ids[0], ids[1]}
    assert mark_sending(portfolio, [(ids[2], "m2")], "page", "another worker") == set()
    with portfolio.begin() as conn:
        rows = dict(conn.execute(select(jobs.c.id, jobs.c.message_id).where(jobs.c.id.in_(ids[:4]))).all())
    assert rows == {ids[0]: "m0", ids[1]: "m1", ids[2]: None, ids[3]: None}


@pytest.fixture
def broker(monkeypatch, settings):
    url = f"{REDIS}/8"
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("COMMS_BROKER_URL", url)
    monkeypatch.setenv("COMMS_ENQUEUE_GRACE", "0")
    yield client
    client.flushdb()


def test_jobs_waiting_in_a_long_queue_are_not_queued_again_until_it_drains(portfolio, broker):
    from comms.tasks import make_app

    report = plan_campaign(portfolio, portfolio.settings, "queued", ["page"])
    planned = sum(report.planned.values())
    app = make_app(portfolio.settings)
    try:
        camp = get_campaign(portfolio, "queued")
        assert requeue_stalled(portfolio, app, camp, "page") == planned  # nothing queued yet: queue them all
        assert broker.llen("comms") > 0
        assert requeue_stalled(portfolio, app, camp, "page") == 0  # waiting, not lost
        broker.flushdb()  # the broker loses them
        assert requeue_stalled(portfolio, app, camp, "page") == planned
    finally:
        app.close()
