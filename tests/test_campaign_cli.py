"""`comms campaign` as an operator uses it: launch, status, report with its HTML, and clear errors."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from comms.store.ledger import jobs

OPEN = {"COMMS_EMAIL_WINDOW": "00:00-24:00"}  # the counts must not depend on the hour the test runs


def test_launch_runs_with_progress_and_the_report_shows_counts_reasons_timings_and_charts(portfolio, cli, tmp_path):
    launched = cli("campaign", "launch", "autumn", "--channels", "page,letter,email", "--limit", "40", env=OPEN)
    assert launched.returncode == 0, launched.stderr
    assert "campaign autumn: completed" in launched.stdout
    for channel in ("page", "letter", "email"):
        assert re.search(rf"{channel}\s.*━.*\d+/\d+", launched.stdout), f"no progress bar for {channel}"

    html_path = tmp_path / "report.html"
    rep = cli("campaign", "report", "autumn", "--html", str(html_path), env=OPEN)
    assert rep.returncode == 0, rep.stderr
    assert "timings" in rep.stdout and "/min" in rep.stdout
    with portfolio.begin() as conn:
        sent = conn.execute(select(func.count()).where(jobs.c.state == "sent", jobs.c.channel == "email")).scalar()
        reasons = conn.execute(select(jobs.c.reason).where(jobs.c.state == "suppressed").distinct()).scalars().all()
    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page and "http" not in page  # self-contained, nothing fetched
    assert re.search(rf"email / sent</th><td>{sent:,}<", page)
    assert reasons and all(r.split(":")[0].replace("'", "&#x27;") in page for r in reasons)
    assert page.count("<svg") == 3  # one chart per channel: done per minute
    assert "<h2>timings (UTC)</h2>" in page


def test_dry_run_prints_the_plan_and_writes_nothing(portfolio, cli):
    dry = cli("campaign", "launch", "maybe", "--channels", "email", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: campaign maybe" in dry.stdout
    with portfolio.begin() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def test_operator_mistakes_are_one_line_and_a_nonzero_exit(portfolio, cli):
    for args, words in ((("campaign", "pause", "nope"), "there is no campaign 'nope'"),
                        (("campaign", "launch", "x", "--channels", "fax"), "unknown channel 'fax'"),
                        (("campaign", "launch", "x", "--channels", "email", "--start-at", "tomorrow"),
                         "--start-at 'tomorrow'")):
        proc = cli(*args)
        assert proc.returncode != 0
        assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
