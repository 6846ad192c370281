"""Reading a campaign back from the ledger: status, per-segment counts, failures and suppressions, HTML."""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from ..store import Store
from ..store.ledger import campaigns, jobs
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
            "created_at": times[0], "started_at": times[1], "finished_at": times[2]}


def _bars(counter: Counter, title: str) -> str:
    if not counter:
        return ""
    top = max(counter.values())
    rows = "".join(
        f"<tr><th scope=row>{html.escape(' / '.join(map(str, k)))}</th><td>{n:,}</td>"
        f"<td><div class=bar style='width:{max(1, round(300 * n / top))}px'></div></td></tr>"
        for k, n in sorted(counter.items(), key=lambda x: -x[1]))
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


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
            + _bars(by_state, "jobs by channel and state") + _bars(by_seg_sent, "sent or published, by segment")
            + _bars(rep["suppressed"], "suppressed, by reason") + _bars(rep["failed"], "failed, by reason"))
    page = ("<!doctype html><html lang=en><meta charset=utf-8><title>Campaign report</title>"
            "<style>body{font-family:sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}"
            "th,td{padding:.2rem .6rem;text-align:left}.bar{background:#2a6ebb;height:.8rem}</style>"
            f"{body}</html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
