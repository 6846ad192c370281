"""The scheduler: waiting jobs go out when they fall due, with nobody watching the launch."""

from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from comms.campaign.plan import plan_campaign
from comms.campaign.run import counts, get_campaign, run_embedded
from comms.store.ledger import jobs


def test_a_campaign_set_to_start_later_is_run_by_the_scheduler_when_its_time_comes(portfolio, cli):
    start = datetime.now(timezone.utc) + timedelta(seconds=3)
    report = plan_campaign(portfolio, portfolio.settings, "later", ["page", "letter"], limit=6, start_at=start)
    camp = run_embedded(portfolio, portfolio.settings, "later", workers=1)
    assert camp.state == "running" and not any(st == "sent" for _, st in counts(portfolio, camp.id))

    early = cli("campaign", "scheduler", "--once")
    assert early.returncode == 0, early.stderr
    assert "later" not in early.stdout  # nothing was due: nothing done, nothing said
    time.sleep(max(0.0, (start - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    due = cli("campaign", "scheduler", "--once")
    assert due.returncode == 0, due.stderr
    assert "later:" in due.stdout and "completed" in due.stdout

    camp = get_campaign(portfolio, "later")
    assert camp.state == "completed"
    c = counts(portfolio, camp.id)
    letters = sum(n for key, n in report.planned.items() if key[1] == "letter")
    assert c[("letter", "sent")] == letters > 0
    with (portfolio.settings.artifacts_dir / "later" / "print" / "manifest.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == letters


def test_the_scheduler_rebuilds_a_print_batch_that_is_older_than_the_letters(portfolio, cli):
    plan_campaign(portfolio, portfolio.settings, "batch", ["letter", "email"], limit=4,
                  start_at=datetime.now(timezone.utc) + timedelta(hours=2))  # e-mails keep it running
    with portfolio.begin() as conn:  # the letters are due now, the e-mails later
        conn.execute(update(jobs).where(jobs.c.channel == "letter").values(not_before=None))
    run_embedded(portfolio, portfolio.settings, "batch", workers=1)
    manifest = portfolio.settings.artifacts_dir / "batch" / "print" / "manifest.csv"
    assert manifest.exists()
    built = manifest.stat().st_mtime
    quiet = cli("campaign", "scheduler", "--once")
    assert "batch" not in quiet.stdout and manifest.stat().st_mtime == built  # up to date: left alone

    manifest.unlink()  # lost, or never built because the launcher died first
    again = cli("campaign", "scheduler", "--once")
    assert "print batch assembled" in again.stdout and manifest.exists()
    assert get_campaign(portfolio, "batch").state == "running"  # the e-mails still wait
