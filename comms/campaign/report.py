"""Reading a campaign back from the ledger: status, per-segment counts, what each segment brought (payments,
money recovered, plans, promises, disputes, opt-outs), failures and suppressions, timings, HTML."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import distinct, func, select

from ..store import Store, as_utc
from ..store.ledger import campaigns, jobs
from ..store.schema import arrangements, contact_opt_outs, events, payments
from .run import counts, get_campaign
from .states import JobState

STATE_ORDER = [s.value for s in JobState]


def list_campaigns(store: Store) -> list[dict]:
    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(select(campaigns).order_by(campaigns.c.id))]


def status_rows(store: Store, name: str):
    camp = get_campaign(store, name)
    c = counts(store, camp.id)
    channels = [ch for ch in ("email", "letter", "page", "video") if any(k[0] == ch for k in c)]
    columns = [s for s in STATE_ORDER if any(k[1] == s for k in c)] + ["total"]
    rows = []
    for ch in channels:
        values = {s: n for (cc, s), n in c.items() if cc == ch}
        values["total"] = sum(values.values())
        rows.append((ch, values))
    notes = []
    if camp.pause_reason and camp.state == "paused":
        notes.append(f"paused: {camp.pause_reason}")
    with store.begin() as conn:
        nxt, waiting = conn.execute(select(func.min(jobs.c.not_before), func.count()).where(
            jobs.c.campaign_id == camp.id, jobs.c.state.in_([JobState.PLANNED.value, JobState.RENDERED.value]),
            jobs.c.not_before > datetime.now(timezone.utc))).one()
    if nxt is not None:
        notes.append(f"{waiting:,} jobs wait (quiet hours in the customer's time zone or --start-at); the next is "
                     f"due at {nxt:%Y-%m-%d %H:%M} UTC: the scheduler sends them then (`comms campaign scheduler`, "
                     f"or Celery beat), or run `comms campaign resume {name}`")
    return camp, rows, columns, notes


def build_report(store: Store, name: str) -> dict:
    camp = get_campaign(store, name)
    with store.begin() as conn:
        rows = conn.execute(select(jobs.c.segment, jobs.c.channel, jobs.c.state, jobs.c.reason, func.count())
                            .where(jobs.c.campaign_id == camp.id)
                            .group_by(jobs.c.segment, jobs.c.channel, jobs.c.state, jobs.c.reason)).all()
        times = conn.execute(select(campaigns.c.created_at, campaigns.c.started_at, campaigns.c.finished_at)
                             .where(campaigns.c.id == camp.id)).first()
    by_segment: Counter = Counter()
    suppressed: Counter = Counter()
    failed: Counter = Counter()
    for seg, ch, st, reason, n in rows:
        by_segment[(seg, ch, st)] += n
        if st == JobState.SUPPRESSED.value:
            suppressed[(ch, reason)] += n
        elif st == JobState.FAILED.value:
            failed[(ch, reason)] += n
    return {"campaign": camp, "by_segment": by_segment, "suppressed": suppressed, "failed": failed,
            "created_at": times[0], "started_at": as_utc(times[1]), "finished_at": as_utc(times[2]),
            "outcomes": outcomes(store, camp.id, camp.name), **timings(store, camp.id)}


OUTCOME_COLUMNS = ("reached", "viewed page", "paid", "recovered", "plans", "promises", "disputes", "opted out")


def outcomes(store: Store, campaign_id: int, name: str) -> dict[str, dict]:
    """What the campaign brought, per segment: customers reached (a job sent or published), who viewed their
    page, paid through the campaign's links (and how much, per currency, exact), chose a plan, promised to
    pay, disputed, opted out. Each customer counts once per column; their segment is the campaign's."""
    seg = select(jobs.c.customer_id, jobs.c.segment).where(jobs.c.campaign_id == campaign_id).distinct().subquery()

    def per_segment(table, *where):
        return select(seg.c.segment, func.count(distinct(table.c.customer_id))).join(
            seg, seg.c.customer_id == table.c.customer_id).where(*where).group_by(seg.c.segment)

    out: dict[str, dict] = {}

    def put(column: str, rows) -> None:
        for segment, n in rows:
            out.setdefault(segment, {})[column] = n

    with store.begin() as conn:
        put("reached", conn.execute(select(jobs.c.segment, func.count(distinct(jobs.c.customer_id))).where(
            jobs.c.campaign_id == campaign_id, jobs.c.state == JobState.SENT.value).group_by(jobs.c.segment)))
        put("viewed page", conn.execute(per_segment(events, events.c.campaign == name,
                                                    events.c.kind == "page_viewed")))
        for kind, column in (("plan", "plans"), ("promise", "promises"), ("dispute", "disputes")):
            put(column, conn.execute(per_segment(arrangements, arrangements.c.campaign == name,
                                                 arrangements.c.kind == kind)))
        put("opted out", conn.execute(per_segment(contact_opt_outs, contact_opt_outs.c.campaign == name)))
        paid = conn.execute(select(seg.c.segment, payments.c.customer_id, payments.c.currency, payments.c.amount)
                            .join(seg, seg.c.customer_id == payments.c.customer_id)
                            .where(payments.c.campaign == name)).all()
    payers: dict[str, set] = {}
    for segment, customer_id, currency, amount in paid:  # summed here, in Decimal: a database sum of text
        payers.setdefault(segment, set()).add(customer_id)  # money would be a float
        money = out.setdefault(segment, {}).setdefault("recovered", {})
        money[currency] = money.get(currency, Decimal("0")) + Decimal(str(amount))
    put("paid", ((segment, len(ids)) for segment, ids in payers.items()))
    return dict(sorted(out.items()))


def outcome_cells(row: dict) -> list[str]:
    """One segment's outcomes as text, in OUTCOME_COLUMNS order; money as '1,234.56 EUR' per currency."""
    cells = []
    for column in OUTCOME_COLUMNS:
        value = row.get(column)
        if column == "recovered":
            cells.append(", ".join(f"{amount:,.2f} {cur}" for cur, amount in sorted((value or {}).items())) or "-")
        else:
            cells.append(f"{value or 0:,}")
    return cells


def timings(store: Store, campaign_id: int) -> dict:
    """Per channel: jobs done (sent or published), from the first claim to the last result, the rate over that
    span, and how many were done in each minute (for the chart)."""
    with store.begin() as conn:
        done = conn.execute(select(jobs.c.channel, jobs.c.claimed_at, jobs.c.updated_at).where(
            jobs.c.campaign_id == campaign_id, jobs.c.state == JobState.SENT.value)).all()
    per_minute: dict[str, Counter] = {}
    spans: dict[str, list] = {}
    for channel, claimed, when in done:
        when = as_utc(when)
        claimed = as_utc(claimed) or when
        per_minute.setdefault(channel, Counter())[when.replace(second=0, microsecond=0)] += 1
        span = spans.setdefault(channel, [claimed, when, 0])
        span[0], span[1], span[2] = min(span[0], claimed), max(span[1], when), span[2] + 1
    rows = []
    for channel in sorted(spans):
        first, last, n = spans[channel]
        seconds = (last - first).total_seconds()
        rows.append({"channel": channel, "done": n, "first": first, "last": last, "seconds": seconds,
                     "per_minute": n / seconds * 60 if seconds > 0 else None})
    return {"timings": rows, "per_minute": per_minute}


def _bars(counter: Counter, title: str) -> str:
    if not counter:
        return ""
    top = max(counter.values())
    rows = "".join(
        f"<tr><th scope=row>{html.escape(' / '.join(map(str, k)))}</th><td>{n:,}</td>"
        f"<td><div class=bar style='width:{max(1, round(300 * n / top))}px'></div></td></tr>"
        for k, n in sorted(counter.items(), key=lambda x: -x[1]))
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def _outcomes_table(rows: dict[str, dict]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("segment", *OUTCOME_COLUMNS))
    body = "".join(f"<tr><th scope=row>{html.escape(seg)}</th>"
                   + "".join(f"<td>{html.escape(cell)}</td>" for cell in outcome_cells(row)) + "</tr>"
                   for seg, row in rows.items())
    return f"<h2>outcomes, by segment</h2><table><tr>{head}</tr>{body}</table>"


def _state_matrix(by_segment: Counter) -> str:
    """Jobs per segment and channel (rows) and state (columns)."""
    if not by_segment:
        return ""
    states = [s for s in STATE_ORDER if any(k[2] == s for k in by_segment)]
    pairs = sorted({(seg, ch) for seg, ch, _ in by_segment})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("segment", "channel", *states, "total"))
    body = "".join(
        f"<tr><th scope=row>{html.escape(seg)}</th><td>{html.escape(ch)}</td>"
        + "".join(f"<td>{by_segment.get((seg, ch, st), 0):,}</td>" for st in states)
        + f"<td>{sum(by_segment.get((seg, ch, st), 0) for st in states):,}</td></tr>" for seg, ch in pairs)
    return f"<h2>jobs per segment, channel and state</h2><table><tr>{head}</tr>{body}</table>"


def rate_text(row: dict) -> str:
    return f"{row['per_minute']:,.0f}/min" if row["per_minute"] else "-"


def _timings_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><th scope=row>{html.escape(r['channel'])}</th><td>{r['done']:,}</td>"
                   f"<td>{r['first']:%Y-%m-%d %H:%M:%S}</td><td>{r['last']:%H:%M:%S}</td>"
                   f"<td>{r['seconds']:,.1f} s</td><td>{rate_text(r)}</td></tr>" for r in rows)
    return ("<h2>timings (UTC)</h2><table><tr><th>channel</th><th>done</th><th>first claimed</th>"
            f"<th>last done</th><th>took</th><th>rate</th></tr>{body}</table>")


def _minute_chart(channel: str, per_minute: Counter) -> str:
    """An inline SVG column chart: jobs done in each minute, gaps (quiet hours) included as empty minutes."""
    from datetime import timedelta

    first, last = min(per_minute), max(per_minute)
    minutes = int((last - first).total_seconds() // 60) + 1
    if minutes > 24 * 60:  # a campaign spread over days: one column per hour instead
        hours: Counter = Counter()
        for when, n in per_minute.items():
            hours[when.replace(minute=0)] += n
        per_minute, first, step, unit = hours, min(hours), timedelta(hours=1), "hour"
        minutes = int((max(hours) - first).total_seconds() // 3600) + 1
    else:
        step, unit = timedelta(minutes=1), "minute"
    top = max(per_minute.values())
    width = max(4, min(24, 720 // minutes))
    bars = "".join(
        f"<rect x={i * width} y={100 - round(96 * n / top)} width={max(1, width - 1)} height={round(96 * n / top)}>"
        f"<title>{first + i * step:%Y-%m-%d %H:%M}: {n:,}</title></rect>"
        for i in range(minutes) if (n := per_minute.get(first + i * step, 0)))
    return (f"<h2>{html.escape(channel)}: done per {unit}</h2><svg role=img aria-label='{html.escape(channel)} "
            f"done per {unit}, at most {top:,}' width={minutes * width} height=100 fill='#2a6ebb'>{bars}</svg>"
            f"<p class=axis>{first:%Y-%m-%d %H:%M} &rarr; {first + (minutes - 1) * step:%H:%M}, "
            f"highest {top:,} per {unit}</p>")


def write_html(rep: dict, path: str | Path) -> Path:
    """A self-contained HTML report (no scripts, no external resources); every value escaped."""
    camp = rep["campaign"]
    by_state: Counter = Counter()
    by_seg_sent: Counter = Counter()
    for (seg, ch, st), n in rep["by_segment"].items():
        by_state[(ch, st)] += n
        if st == JobState.SENT.value:
            by_seg_sent[(seg, ch)] += n
    finished = rep["finished_at"]
    duration = (finished - rep["started_at"]).total_seconds() if finished and rep["started_at"] else None
    body = (f"<h1>Campaign {html.escape(camp.name)}</h1><p>state <b>{html.escape(camp.state)}</b>, snapshot "
            f"{camp.snapshot_id}, segment run {camp.segment_run_id}, started {rep['started_at']:%Y-%m-%d %H:%M} UTC"
            + (f", took {duration:,.1f} s" if duration is not None else "") + "</p>"
            + _outcomes_table(rep["outcomes"])
            + _bars(by_state, "jobs by channel and state") + _bars(by_seg_sent, "sent or published, by segment")
            + _state_matrix(rep["by_segment"])
            + _bars(rep["suppressed"], "suppressed, by reason") + _bars(rep["failed"], "failed, by reason")
            + _timings_table(rep["timings"]) + "".join(_minute_chart(ch, counts_)
                                                       for ch, counts_ in sorted(rep["per_minute"].items())))
    page = ("<!doctype html><html lang=en><meta charset=utf-8><title>Campaign report</title>"
            "<style>body{font-family:sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}"
            "th,td{padding:.2rem .6rem;text-align:left}.bar{background:#2a6ebb;height:.8rem}"
            ".axis{color:#555;font-size:.85rem}</style>"
            f"{body}</html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
