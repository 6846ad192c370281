"""Campaigns: one job per customer and channel, contact rules recorded, counts that reconcile, idempotent runs."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from comms.campaign.plan import plan_campaign
from comms.campaign.run import (claim, counts, get_campaign, process_chunk, run_embedded, set_state, sweep)
from comms.campaign.states import JobState, StateError, check
from comms.errors import InputError
from comms.store.ledger import jobs
from comms.store.snapshots import get_segment_run, load_assignments


def job_states(store, campaign_id, channel):
    with store.begin() as conn:
        return dict(conn.execute(select(jobs.c.customer_id, jobs.c.state).where(
            jobs.c.campaign_id == campaign_id, jobs.c.channel == channel)).all())


def test_states_are_a_closed_set_with_one_rule_for_moves():
    assert check("planned", "rendering") is JobState.RENDERING
    with pytest.raises(StateError):
        check("sent", "planned")
    with pytest.raises(ValueError):
        check("planned", "teleported")


def test_dry_run_counts_everything_and_writes_nothing(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "dry", ["page", "email"], dry_run=True)
    customers = len(load_assignments(get_segment_run(portfolio)))
    assert report.customers == customers
    assert report.jobs == 2 * customers  # every segment has page and email in the default file
    with portfolio.begin() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def test_plan_makes_one_job_per_customer_and_channel_with_reasons(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "c1", ["page", "letter"])
    with portfolio.begin() as conn:
        total = conn.execute(select(func.count()).where(jobs.c.campaign_id == report.campaign_id)).scalar()
        reasons = conn.execute(select(jobs.c.reason).where(
            jobs.c.campaign_id == report.campaign_id, jobs.c.state == "suppressed")).scalars().all()
    assert total == report.jobs
    assert reasons and all(reasons)  # every suppression says why
    assert {"do not contact", "dispute open"} & set(reasons)


def test_a_campaign_name_is_used_once(portfolio):
    plan_campaign(portfolio, portfolio.settings, "once", ["page"])
    with pytest.raises(InputError, match="exists already"):
        plan_campaign(portfolio, portfolio.settings, "once", ["page"])


def test_unknown_segment_is_a_clear_error(portfolio):
    with pytest.raises(InputError, match="unknown segment vip"):
        plan_campaign(portfolio, portfolio.settings, "x", ["page"], segments=["vip"])


def test_embedded_run_completes_and_counts_reconcile(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "run1", ["page"])
    camp = run_embedded(portfolio, portfolio.settings, "run1", workers=2)
    assert camp.state == "completed"
    c = counts(portfolio, report.campaign_id)
    assert c.get(("page", "sent"), 0) == sum(report.planned.values())
    assert sum(c.values()) == report.jobs


def test_a_chunk_run_twice_does_its_work_once(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "twice", ["page"])
    with portfolio.begin() as conn:
        ids = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id,
                                                   jobs.c.state == "planned")).scalars().all()
    first = process_chunk(portfolio.settings, report.campaign_id, "page", ids, portfolio)
    second = process_chunk(portfolio.settings, report.campaign_id, "page", ids, portfolio)
    assert first.claimed == len(ids) and first.counts == {"sent": len(ids)}
    assert second.claimed == 0


def test_expired_render_lease_is_requeued_and_then_done(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "lease", ["page"])
    with portfolio.begin() as conn:
        ids = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id,
                                                   jobs.c.state == "planned")).scalars().all()
    claimed = claim(portfolio, report.campaign_id, ids[:5], "page")  # a worker takes them, then dies
    assert len(claimed) == 5
    assert sweep(portfolio, report.campaign_id)["requeued"] == 0  # lease still running
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert sweep(portfolio, report.campaign_id, now=later)["requeued"] == 5
    assert run_embedded(portfolio, portfolio.settings, "lease", workers=1).state == "completed"


def test_lost_send_is_never_retried(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "lost", ["page"])
    with portfolio.begin() as conn:
        job_id = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id,
                                                      jobs.c.state == "planned").limit(1)).scalar()
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(
            state="sending", lease_until=datetime.now(timezone.utc) - timedelta(minutes=1)))
    assert sweep(portfolio, report.campaign_id)["unknown"] == 1
    with portfolio.begin() as conn:
        state, reason = conn.execute(select(jobs.c.state, jobs.c.reason).where(jobs.c.id == job_id)).one()
    assert state == "failed" and "outcome unknown" in reason


def test_paused_campaign_takes_no_jobs_until_resumed(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "p", ["page"])
    set_state(portfolio, "p", "paused", "operator")
    with portfolio.begin() as conn:
        ids = conn.execute(select(jobs.c.id).where(jobs.c.campaign_id == report.campaign_id)).scalars().all()
    assert claim(portfolio, report.campaign_id, ids, "page") == []
    with pytest.raises(InputError, match="paused"):
        run_embedded(portfolio, portfolio.settings, "p", workers=1)
    set_state(portfolio, "p", "running")
    assert run_embedded(portfolio, portfolio.settings, "p", workers=1).state == "completed"


def test_cancel_stops_every_job_not_done(portfolio):
    report = plan_campaign(portfolio, portfolio.settings, "cx", ["page"])
    set_state(portfolio, "cx", "cancelled")
    states = set(job_states(portfolio, report.campaign_id, "page").values())
    assert states <= {"cancelled", "suppressed"}
    assert get_campaign(portfolio, "cx").state == "cancelled"


def test_letters_are_archived_and_the_print_batch_holds_each_once(portfolio):
    import csv

    report = plan_campaign(portfolio, portfolio.settings, "post", ["letter"], limit=12)
    assert run_embedded(portfolio, portfolio.settings, "post", workers=2).state == "completed"
    with portfolio.begin() as conn:
        sent = dict(conn.execute(select(jobs.c.customer_id, jobs.c.sha256).where(
            jobs.c.campaign_id == report.campaign_id, jobs.c.state == "sent")).all())
    assert len(sent) == sum(report.planned.values()) > 0
    folder = portfolio.settings.artifacts_dir / "post"
    with (folder / "print" / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r[next(k for k in r if "customer" in k)] for r in rows]
    assert sorted(ids) == sorted(sent)  # every letter once, nothing else
    assert {r[next(k for k in r if "sha" in k.lower())] for r in rows} == set(sent.values())
    assert len(list((folder / "letters").glob("*.pdf"))) == len(sent)
