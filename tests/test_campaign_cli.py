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


def test_the_report_shows_what_each_segment_brought_payments_exact_per_currency(portfolio, cli, tmp_path):
    """Two customers of one segment pay through the campaign's pages and a third promises: the report's
    outcomes give that segment its payers, the exact money recovered and the promise; other campaigns'
    payments do not count."""
    from datetime import date, timedelta
    from decimal import Decimal

    from comms.payments.arrangements import make_promise
    from comms.payments.checkout import create_checkout, record_payment

    launched = cli("campaign", "launch", "winter", "--channels", "page", "--limit", "60", env=OPEN)
    assert launched.returncode == 0, launched.stderr
    with portfolio.begin() as conn:
        rows = conn.execute(select(jobs.c.segment, jobs.c.customer_id).where(jobs.c.state == "sent")
                            .order_by(jobs.c.segment, jobs.c.customer_id)).all()
    segment = rows[0].segment
    payer_a, payer_b, promiser = [r.customer_id for r in rows if r.segment == segment][:3]
    for n, (customer, campaign, amount) in enumerate(((payer_a, "winter", "100.10"), (payer_b, "winter", "0.20"),
                                                       (payer_a, "another", "999.00"))):
        checkout = create_checkout(portfolio, provider="demo", campaign=campaign, customer_id=customer,
                                   purpose="full", amount=Decimal(amount), currency="EUR")
        assert record_payment(portfolio, checkout, provider_ref=f"t-{n}", amount=Decimal(amount), currency="EUR")
    make_promise(portfolio, campaign="winter", customer_id=promiser, until=date.today() + timedelta(days=7),
                 amount=Decimal("10.00"), currency="EUR")

    html_path = tmp_path / "report.html"
    rep = cli("campaign", "report", "winter", "--html", str(html_path), env=OPEN)
    assert rep.returncode == 0, rep.stderr
    assert "outcomes, by segment" in rep.stdout and "100.30 EUR" in rep.stdout
    page = html_path.read_text(encoding="utf-8")
    reached = sum(1 for r in rows if r.segment == segment)
    # segment, reached, viewed page, paid, recovered, plans, promises, disputes, opted out
    assert (f"<tr><th scope=row>{segment}</th><td>{reached:,}</td><td>0</td><td>2</td><td>100.30 EUR</td>"
            "<td>0</td><td>1</td><td>0</td><td>0</td></tr>") in page
    assert "<h2>jobs per segment, channel and state</h2>" in page
    assert re.search(rf"<th scope=row>{segment}</th><td>page</td><td>{reached:,}</td>", page)
