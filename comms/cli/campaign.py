"""``comms campaign``: launch, watch, pause, resume, cancel and report campaigns."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from .main import cli, console, pass_context


@cli.group("campaign")
def campaign() -> None:
    """Plan one job per customer and channel from the newest snapshot, run them, report."""


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--start-at {value!r}: use ISO 8601, e.g. 2026-12-01T09:00+01:00") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _run(ctx, name: str):
    from ..campaign.run import execute

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        def progress(channel: str, done: int, total: int) -> None:
            if channel not in tasks:
                tasks[channel] = bar.add_task(channel, total=total)
            bar.update(tasks[channel], completed=done)
        camp = execute(ctx.store, ctx.settings, name, progress=progress)
    _print_status(ctx, name)
    if camp.state == "paused":
        raise InputError(f"campaign {name!r} paused itself: {camp.pause_reason}")


def _print_status(ctx, name: str) -> None:
    from ..campaign.report import status_rows

    camp, rows, columns, notes = status_rows(ctx.store, name)
    table = Table(title=Text(f"campaign {camp.name}: {camp.state}"), title_justify="left")
    table.add_column("channel")
    for col in columns:
        table.add_column(col, justify="right")
    for channel, values in rows:
        table.add_row(channel, *[f"{values.get(c, 0):,}" for c in columns])
    console.print(table)
    for note in notes:
        console.print(Text(note))


@campaign.command("launch")
@click.argument("name")
@click.option("--channels", required=True, help="Comma-separated: email,letter,page,video.")
@click.option("--segments", help="Comma-separated segment names (default: all).")
@click.option("--limit", type=click.IntRange(1), help="At most this many customers (the first by id).")
@click.option("--start-at", help="Send nothing before this time (ISO 8601).")
@click.option("--dry-run", is_flag=True, help="Plan and print what would happen; render and send nothing.")
@pass_context
def launch(ctx, name: str, channels: str, segments: str | None, limit: int | None, start_at: str | None,
           dry_run: bool) -> None:
    """Plan a campaign on the newest snapshot and its newest segmentation, then run it.

    Contact rules apply at planning and again right before each send; e-mails outside 08:00-21:00 in the
    customer's time zone wait for their morning: the scheduler (`comms campaign scheduler`, or Celery beat)
    sends them when they fall due, and so does `comms campaign resume NAME`.

    Example: comms campaign launch spring-reminder --channels email,page,letter --segments early,firm
    """
    from ..campaign.plan import parse_channels, plan_campaign, summary_frame

    report = plan_campaign(ctx.store, ctx.settings, name, parse_channels(channels),
                           segments=[s.strip() for s in segments.split(",")] if segments else None,
                           limit=limit, start_at=_parse_time(start_at), dry_run=dry_run)
    frame = summary_frame(report)
    table = Table(title=Text(f"{'dry run: ' if dry_run else ''}campaign {name}: {report.customers:,} customers, "
                             f"{report.jobs:,} jobs (snapshot {report.snapshot_id}, segment run "
                             f"{report.segment_run_id})"), title_justify="left")
    for col in frame.columns:
        table.add_column(col, justify="right" if frame[col].dtype.kind in "iu" else "left")
    for rec in frame.itertuples(index=False):
        table.add_row(*[Text(f"{v:,}" if isinstance(v, int) else str(v)) for v in rec])
    console.print(table)
    if dry_run:
        return
    _run(ctx, name)


@campaign.command("status")
@click.argument("name")
@pass_context
def status(ctx, name: str) -> None:
    """Jobs per channel and state, failures and suppressions so far.

    Example: comms campaign status spring-reminder
    """
    _print_status(ctx, name)


@campaign.command("pause")
@click.argument("name")
@pass_context
def pause(ctx, name: str) -> None:
    """Stop taking new jobs; jobs in flight finish. Example: comms campaign pause spring-reminder"""
    from ..campaign.run import set_state

    set_state(ctx.store, name, "paused", "paused by an operator")
    console.print(Text(f"campaign {name} paused"))


@campaign.command("resume")
@click.argument("name")
@pass_context
def resume(ctx, name: str) -> None:
    """Resume a paused campaign (or run what became due, e.g. after quiet hours) on this machine.

    Example: comms campaign resume spring-reminder
    """
    from ..campaign.run import get_campaign, set_state

    if get_campaign(ctx.store, name).state == "paused":
        set_state(ctx.store, name, "running")
    _run(ctx, name)


@campaign.command("cancel")
@click.argument("name")
@pass_context
def cancel(ctx, name: str) -> None:
    """Cancel every job not yet done. Example: comms campaign cancel spring-reminder"""
    from ..campaign.run import set_state

    set_state(ctx.store, name, "cancelled", "cancelled by an operator")
    _print_status(ctx, name)


@campaign.command("scheduler")
@click.option("--once", is_flag=True, help="One pass over the running campaigns, then exit (for cron).")
@click.option("--every", type=click.FloatRange(1), help="Seconds between passes (default COMMS_TICK_SECONDS: 30).")
@pass_context
def scheduler(ctx, once: bool, every: float | None) -> None:
    """Send waiting jobs when they fall due (--start-at, quiet hours, retries) and clean up after lost workers,
    for every running campaign. With COMMS_BROKER_URL set it queues them for the workers (Celery beat does
    the same: `celery -A worker beat`); otherwise it runs them here. Stop it with Ctrl-C.

    Example: comms campaign scheduler --every 60
    """
    import time

    from ..campaign.schedule import tick, tick_seconds

    app = None
    if ctx.settings.get("broker_url", default=None):
        from ..tasks import make_app
        app = make_app(ctx.settings)
    pause = every or tick_seconds(ctx.settings)
    try:
        while True:
            for r in tick(ctx.store, ctx.settings, app):
                did = [f"{r.queued:,} jobs queued" if r.queued else "", f"{r.ran:,} jobs run" if r.ran else "",
                       "print batch assembled" if r.print_batch else "",
                       "completed" if r.state == "completed" else ""]
                if any(did):
                    console.print(Text(f"{time.strftime('%H:%M:%S')} {r.campaign}: {', '.join(d for d in did if d)}"))
            if once:
                return
            time.sleep(pause)
    except KeyboardInterrupt:
        console.print(Text("scheduler stopped"))


@campaign.command("list")
@pass_context
def list_(ctx) -> None:
    """Every campaign with its state. Example: comms campaign list"""
    from ..campaign.report import list_campaigns

    table = Table("id", "name", "state", "snapshot", "channels", "created")
    for c in list_campaigns(ctx.store):
        table.add_row(str(c["id"]), Text(c["name"]), c["state"], str(c["snapshot_id"]), ",".join(c["channels"]),
                      c["created_at"].strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@campaign.command("report")
@click.argument("name")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@pass_context
def report(ctx, name: str, html_path: str | None) -> None:
    """Counts per segment, channel and state; what it brought per segment (customers reached, pages viewed,
    payments and the money recovered, plans, promises, disputes, opt-outs); failures with reasons; suppressions
    by reason; timings.

    Example: comms campaign report spring-reminder --html var/report.html
    """
    from ..campaign.report import OUTCOME_COLUMNS, build_report, outcome_cells, rate_text, write_html

    rep = build_report(ctx.store, name)
    _print_status(ctx, name)
    table = Table("segment", "channel", "state", "jobs", title="per segment", title_justify="left")
    for (seg, ch, st), n in sorted(rep["by_segment"].items()):
        table.add_row(Text(seg), ch, st, f"{n:,}")
    console.print(table)
    if rep["outcomes"]:
        t = Table(title="outcomes, by segment", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)  # nine columns: compact, so that they fit 80 characters
        for column in ("segment", *OUTCOME_COLUMNS):
            t.add_column(column.replace("viewed page", "viewed"), no_wrap=column != "recovered",
                         min_width=10 if column == "recovered" else None,
                         justify="left" if column in ("segment", "recovered") else "right")
        for seg, row in rep["outcomes"].items():
            t.add_row(Text(seg), *outcome_cells(row))
        console.print(t)
    for title, key in (("suppressed, by reason", "suppressed"), ("failed, by reason", "failed")):
        if rep[key]:
            t = Table("channel", "reason", "jobs", title=title, title_justify="left")
            for (ch, reason), n in sorted(rep[key].items(), key=lambda x: -x[1]):
                t.add_row(ch, Text(reason or ""), f"{n:,}")
            console.print(t)
    if rep["timings"]:
        t = Table("channel", "done", "first claimed (UTC)", "last done", "took", "rate", title="timings",
                  title_justify="left")
        for r in rep["timings"]:
            t.add_row(r["channel"], f"{r['done']:,}", f"{r['first']:%Y-%m-%d %H:%M:%S}", f"{r['last']:%H:%M:%S}",
                      f"{r['seconds']:,.1f} s", rate_text(r))
        console.print(t)
    if html_path:
        path = write_html(rep, html_path)
        console.print(Text(f"report written to {path}"))


@campaign.command("links")
@click.argument("name")
@click.option("--per-segment", type=click.IntRange(1, 50), default=1, show_default=True)
@click.option("--base-url", help="Build the links on this address instead of COMMS_BASE_URL (e.g. the local "
                                 "`comms serve` at http://127.0.0.1:8000).")
@pass_context
def links(ctx, name: str, per_segment: int, base_url: str | None) -> None:
    """Working personal links of a campaign, a few per segment, to try the pages as a customer would.

    Example: comms campaign links spring-reminder --per-segment 2 --base-url http://127.0.0.1:8000
    """
    from sqlalchemy import select

    from ..campaign.run import get_campaign
    from ..payments import LinkSigner
    from ..store.ledger import jobs

    camp = get_campaign(ctx.store, name)
    signer = LinkSigner.from_settings(ctx.settings)
    with ctx.store.begin() as conn:
        rows = conn.execute(select(jobs.c.segment, jobs.c.customer_id).where(
            jobs.c.campaign_id == camp.id, jobs.c.channel == "page", jobs.c.state == "sent")
            .order_by(jobs.c.segment, jobs.c.customer_id)).all()
    if not rows:
        raise InputError(f"campaign {name!r} has no published pages (launch it with --channels page,...)")
    shown: dict[str, int] = {}
    base = (base_url or ctx.settings.base_url).rstrip("/")
    for seg, cid in rows:  # plain lines, never cut: a link must be copyable whole
        if shown.get(seg, 0) >= per_segment:
            continue
        shown[seg] = shown.get(seg, 0) + 1
        console.print(Text(f"{seg:<10} {cid:<12} {base}/p/{signer.sign(camp.name, cid)}"), soft_wrap=True)
