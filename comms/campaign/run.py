"""Running a campaign: claim jobs with a lease, render and deliver them, record every result.

The ledger guarantees delivery; the executor is only transport. :func:`process_chunk` is the one job
function: the embedded pool here and the Celery tasks call exactly it. It re-reads its jobs, claims only
those still to do (a retried or duplicated chunk does nothing twice), checks the contact rules again, builds
each customer's context from the campaign's snapshot, hands them to the channel's step and records each
outcome with a state-guarded UPDATE.

Embedded execution (nothing configured): chunks run on a local process pool using every core, channel by
channel (page and video first, so that e-mails can show the poster and letters point at a live page), with
a progress bar per channel. An error budget pauses the campaign by itself and says why.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import and_, bindparam, func, literal, or_, select, update

from ..config import Settings
from ..errors import InputError
from ..store import Store
from ..store.ledger import campaigns, jobs
from .states import DONE, JobState, sources

ORDER = ("page", "video", "letter", "email")
CHUNK = {"page": 500, "video": 4, "letter": 50, "email": 200}
LEASE = {"page": 300, "video": 1800, "letter": 900, "email": 600}  # seconds; above the longest chunk


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Outcome:
    job_id: int
    state: JobState
    reason: str | None = None
    artifact: str | None = None
    sha256: str | None = None
    message_id: str | None = None
    provider_id: str | None = None
    not_before: datetime | None = None


@dataclass
class ChunkResult:
    channel: str
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    state: str
    snapshot_id: int
    segment_run_id: int
    channels: list
    started_at: datetime | None
    error_budget: int
    pause_reason: str | None
    as_of: date


def get_campaign(store: Store, name: str) -> Campaign:
    with store.begin() as conn:
        row = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
    if row is None:
        raise InputError(f"there is no campaign {name!r}: see `comms campaign list`")
    m = row._mapping
    return Campaign(id=m["id"], name=m["name"], state=m["state"], snapshot_id=m["snapshot_id"],
                    segment_run_id=m["segment_run_id"], channels=list(m["channels"]), started_at=m["started_at"],
                    error_budget=m["error_budget"], pause_reason=m["pause_reason"],
                    as_of=date.fromisoformat(m["settings"]["as_of"]))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the ledger moves ------------------------------------------------------------------------------

def is_due(now: datetime):
    """The condition of a job waiting to be done whose time has come (not before ``not_before``)."""
    return and_(jobs.c.state.in_([JobState.PLANNED.value, JobState.RENDERED.value]),
                or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now))


def claim(store: Store, campaign_id: int, job_ids: list[int], channel: str, now: datetime | None = None) -> list:
    """Move the still-to-do jobs among ``job_ids`` to rendering with a lease; return the claimed rows (what a
    chunk needs of them: id, customer_id, segment, attempts, worker)."""
    now = now or _now()
    me = f"{worker_id()[:70]}:{now.timestamp():.6f}"
    with store.begin() as conn:
        running = conn.execute(select(campaigns.c.state).where(campaigns.c.id == campaign_id)).scalar()
        if running != "running":
            return []
        return conn.execute(update(jobs).where(
            jobs.c.id.in_(job_ids), jobs.c.campaign_id == campaign_id,
            is_due(now),
        ).values(state=JobState.RENDERING.value, worker=me, attempts=jobs.c.attempts + 1, claimed_at=now,
                 lease_until=now + timedelta(seconds=lease_seconds(store.settings, channel)), updated_at=now)
            .returning(jobs.c.id, jobs.c.customer_id, jobs.c.segment, jobs.c.attempts, jobs.c.worker)).all()


OUTCOME_VALUES = ("reason", "artifact", "sha256", "message_id", "provider_id", "not_before")


def record(store: Store, outcomes: list[Outcome], worker: str, now: datetime | None = None) -> int:
    """Write outcomes; each UPDATE is guarded by the states the move is allowed from and by the claim
    (``worker``), so a worker whose lease ran out and whose jobs were claimed again records nothing.
    Outcomes of the same kind go in one executemany (one statement, one round trip), not one per job."""
    now = now or _now()
    groups: dict[tuple, list[dict]] = {}
    for o in outcomes:
        values = {key: getattr(o, key) for key in OUTCOME_VALUES if getattr(o, key) is not None}
        groups.setdefault((o.state, tuple(values)), []).append(
            {"b_id": o.job_id, **{f"b_{key}": value for key, value in values.items()}})
    written = 0
    with store.begin() as conn:
        for (state, keys), params in groups.items():
            written += conn.execute(update(jobs).where(
                jobs.c.id == bindparam("b_id"), jobs.c.worker == worker,
                jobs.c.state.in_([literal(v) for v in sources(state)]))  # an expanding IN can't executemany
                .values(state=state.value, updated_at=now, lease_until=None,
                        **{key: bindparam(f"b_{key}") for key in keys}), params).rowcount
    return written


def mark_sending(store: Store, pairs: list[tuple[int, str]], channel: str, worker: str) -> set[int]:
    """Record (job id, our message id) as sending before anything goes to the provider. Returns the jobs
    this worker still holds: only those may be sent (a job claimed again by another worker after this one's
    lease ran out is not ours to send any more)."""
    if not pairs:
        return set()
    now = _now()
    ours = dict(pairs)
    with store.begin() as conn:
        conn.execute(update(jobs).where(
            jobs.c.id == bindparam("b_id"), jobs.c.worker == worker, jobs.c.state == JobState.RENDERING.value)
            .values(state=JobState.SENDING.value, message_id=bindparam("b_message_id"), updated_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds(store.settings, channel))),
            [{"b_id": job_id, "b_message_id": message_id} for job_id, message_id in pairs])
        rows = conn.execute(select(jobs.c.id, jobs.c.message_id).where(
            jobs.c.id.in_(list(ours)), jobs.c.worker == worker, jobs.c.state == JobState.SENDING.value)).all()
    return {job_id for job_id, message_id in rows if ours[job_id] == message_id}


def chunk_size(settings: Settings, channel: str) -> int:
    """Jobs per task: small for video (minutes each), large for pages (COMMS_CHUNK_SIZE overrides)."""
    return max(1, settings.get("chunk_size", default=CHUNK[channel], cast=int))


def lease_seconds(settings: Settings, channel: str) -> int:
    """How long a claim holds: above the longest chunk of the channel (COMMS_LEASE_SECONDS overrides)."""
    return settings.get("lease_seconds", default=LEASE[channel], cast=int)


def sweep(store: Store, campaign_id: int, now: datetime | None = None) -> dict[str, int]:
    """Jobs whose lease ran out: rendering -> planned (safe to redo); sending -> failed "outcome unknown".
    Never send twice: a message that may have left is not sent again; it is reported for a person to check."""
    now = now or _now()
    moved = {"requeued": 0, "unknown": 0}
    with store.begin() as conn:
        moved["requeued"] = conn.execute(update(jobs).where(
            jobs.c.campaign_id == campaign_id, jobs.c.state == JobState.RENDERING.value,
            jobs.c.lease_until < now).values(state=JobState.PLANNED.value, worker=None, lease_until=None,
                                             updated_at=now)).rowcount
        moved["unknown"] = conn.execute(update(jobs).where(
            jobs.c.campaign_id == campaign_id, jobs.c.state == JobState.SENDING.value,
            jobs.c.lease_until < now).values(
            state=JobState.FAILED.value, lease_until=None, updated_at=now,
            reason="worker lost while sending: outcome unknown, not retried so nobody gets it twice")).rowcount
    return moved


def counts(store: Store, campaign_id: int) -> dict[tuple[str, str], int]:
    with store.begin() as conn:
        rows = conn.execute(select(jobs.c.channel, jobs.c.state, func.count()).where(
            jobs.c.campaign_id == campaign_id).group_by(jobs.c.channel, jobs.c.state)).all()
    return {(r[0], r[1]): r[2] for r in rows}


def set_state(store: Store, name: str, state: str, reason: str | None = None) -> Campaign:
    camp = get_campaign(store, name)
    allowed = {"paused": {"running"}, "running": {"paused"}, "cancelled": {"running", "paused"},
               "completed": {"running"}}
    if camp.state not in allowed[state]:
        raise InputError(f"campaign {name!r} is {camp.state}: it cannot be {state}")
    now = _now()
    with store.begin() as conn:
        values = {"state": state, "pause_reason": reason}
        if state in ("cancelled", "completed"):
            values["finished_at"] = now
        conn.execute(update(campaigns).where(campaigns.c.id == camp.id).values(**values))
        if state == "cancelled":
            conn.execute(update(jobs).where(jobs.c.campaign_id == camp.id,
                                            jobs.c.state.in_(sources(JobState.CANCELLED))).values(
                state=JobState.CANCELLED.value, reason="campaign cancelled", updated_at=now))
    return get_campaign(store, name)


def complete_if_done(store: Store, camp: Campaign) -> Campaign:
    """Mark the campaign completed when no job is left to do (jobs waiting for quiet hours keep it running)."""
    left = sum(n for (ch, st), n in counts(store, camp.id).items() if JobState(st) not in DONE)
    if left == 0:
        set_state(store, camp.name, "completed")
    return get_campaign(store, camp.name)


# --- the one job function ----------------------------------------------------------------------------

_steps: dict = {}
_campaigns: dict = {}


def _campaign_and_snapshot(store: Store, campaign_id: int):
    """The campaign's row and its snapshot, read once per process: neither changes after planning."""
    from ..store.snapshots import get_snapshot

    key = (str(store.settings.home), campaign_id)
    found = _campaigns.get(key)
    if found is None:
        with store.begin() as conn:
            camp = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).first()._mapping
        found = _campaigns[key] = (camp, get_snapshot(store, camp["snapshot_id"]))
    return found


def process_chunk(settings: Settings, campaign_id: int, channel: str, job_ids: list[int],
                  store: Store | None = None) -> ChunkResult:
    """Claim, check, render, deliver and record one chunk of a campaign's jobs of one channel."""
    from ..payments.status import contact_blockers_many
    from .customers import snapshot_customers
    from .steps import Item, step_for

    store = store or Store.open(settings, migrate=False)
    result = ChunkResult(channel)
    rows = claim(store, campaign_id, job_ids, channel)
    result.claimed = len(rows)
    if not rows:
        return result
    camp, snapshot = _campaign_and_snapshot(store, campaign_id)
    customers = snapshot_customers(settings, snapshot).get(r.customer_id for r in rows)
    addresses = {cid: c.email for cid, c in customers.items()} if channel == "email" else None
    blockers = contact_blockers_many(store, list(customers), channel, addresses, since=camp["started_at"])
    outcomes: list[Outcome] = []
    items: list = []
    for r in rows:
        customer = customers.get(r.customer_id)
        if customer is None:
            outcomes.append(Outcome(r.id, JobState.FAILED, reason="customer missing from the snapshot"))
        elif blockers.get(r.customer_id):
            outcomes.append(Outcome(r.id, JobState.SUPPRESSED, reason="; ".join(blockers[r.customer_id])))
        else:
            items.append(Item(job_id=r.id, customer=customer, segment=r.segment, attempts=r.attempts,
                              worker=r.worker))
    key = (settings.home, campaign_id, channel)
    step = _steps.get(key)
    if step is None:
        step = _steps[key] = step_for(channel, settings, store, camp)
    if items:
        outcomes.extend(step.process(items))
    record(store, outcomes, rows[0].worker)
    for o in outcomes:
        result.counts[o.state.value] = result.counts.get(o.state.value, 0) + 1
    return result


# --- embedded execution ------------------------------------------------------------------------------

_worker_settings: Settings | None = None
_worker_store: Store | None = None


def _init_worker(home: str) -> None:
    global _worker_settings, _worker_store
    _worker_settings = Settings.load(home)
    _worker_store = Store.open(_worker_settings, migrate=False)


def _run_in_worker(campaign_id: int, channel: str, job_ids: list[int]) -> ChunkResult:
    return process_chunk(_worker_settings, campaign_id, channel, job_ids, _worker_store)


def due_jobs(store: Store, campaign_id: int, channel: str, now: datetime | None = None) -> list[int]:
    now = now or _now()
    with store.begin() as conn:
        return list(conn.execute(select(jobs.c.id).where(
            jobs.c.campaign_id == campaign_id, jobs.c.channel == channel,
            is_due(now)).order_by(jobs.c.id)).scalars())


def failures(store: Store, campaign_id: int) -> tuple[int, str | None]:
    with store.begin() as conn:
        n = conn.execute(select(func.count()).where(and_(jobs.c.campaign_id == campaign_id,
                                                         jobs.c.state == JobState.FAILED.value))).scalar_one()
        last = conn.execute(select(jobs.c.reason).where(jobs.c.campaign_id == campaign_id,
                                                        jobs.c.state == JobState.FAILED.value)
                            .order_by(jobs.c.updated_at.desc()).limit(1)).scalar()
    return n, last


def run_embedded(store: Store, settings: Settings, name: str, *, workers: int | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> Campaign:
    """Run every due job of a campaign on a local process pool; returns the campaign as it ends."""
    from .steps import finalize

    camp = get_campaign(store, name)
    if camp.state != "running":
        raise InputError(f"campaign {name!r} is {camp.state}" + (f" ({camp.pause_reason})" if camp.pause_reason
                                                                 else "") + ": resume it first")
    sweep(store, camp.id)
    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(str(settings.home),)) as pool:
        for channel in [c for c in ORDER if c in camp.channels]:
            ids = due_jobs(store, camp.id, channel)
            if not ids:
                continue
            size = chunk_size(settings, channel)
            done = 0
            if progress:
                progress(channel, 0, len(ids))
            futures = {pool.submit(_run_in_worker, camp.id, channel, ids[i:i + size]): len(ids[i:i + size])
                       for i in range(0, len(ids), size)}
            for fut in as_completed(futures):
                fut.result()
                done += futures[fut]
                if progress:
                    progress(channel, done, len(ids))
                failed, last = failures(store, camp.id)
                if failed > camp.error_budget:
                    for f in futures:
                        f.cancel()
                    set_state(store, name, "paused", f"error budget exceeded: {failed} failures "
                                                     f"(budget {camp.error_budget}); last: {last}")
                    return get_campaign(store, name)
            finalize(channel, settings, store, camp)
    return complete_if_done(store, camp)


# --- distributed execution ---------------------------------------------------------------------------

ENQUEUE_GRACE = 120  # seconds a queued job may stay unclaimed, once its queue drained, before it is queued again


def _enqueue(store: Store, app, camp: Campaign, channel: str, ids: list[int]) -> int:
    """Queue chunks of due jobs and mark them with a claim deadline; jobs not claimed by then (a broker
    that lost its messages, a restarted Redis) are queued again by :func:`requeue_stalled`."""
    from ..tasks import queue_for

    if not ids:
        return 0
    now = _now()
    grace = store.settings.get("enqueue_grace", default=ENQUEUE_GRACE, cast=int)
    with store.begin() as conn:
        for i in range(0, len(ids), 5000):
            conn.execute(update(jobs).where(jobs.c.id.in_(ids[i:i + 5000]), jobs.c.state.in_(
                [JobState.PLANNED.value, JobState.RENDERED.value])).values(
                lease_until=now + timedelta(seconds=grace)))
    size = chunk_size(store.settings, channel)
    for i in range(0, len(ids), size):
        app.send_task("comms.run_chunk", args=[camp.id, channel, ids[i:i + size]], queue=queue_for(channel))
    return len(ids)


def requeue_stalled(store: Store, app, camp: Campaign, channel: str) -> int:
    """Due jobs nobody claimed within the grace period (lost messages) or left by a lost worker, queued
    again once the channel's queue has drained: a job still waiting behind a long queue is slow, not lost
    (queueing it again each grace period would grow the queue by every job still waiting)."""
    from ..tasks import queue_for

    sweep(store, camp.id)
    if _waiting(app, queue_for(channel)):
        return 0
    now = _now()
    with store.begin() as conn:
        ids = list(conn.execute(select(jobs.c.id).where(
            jobs.c.campaign_id == camp.id, jobs.c.channel == channel,
            is_due(now),
            or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now))).scalars())
    return _enqueue(store, app, camp, channel, ids)


def _waiting(app, queue: str) -> int:
    """Messages waiting in a broker queue; 0 when the broker has no such queue (Redis drops an empty one)
    or cannot say, so that lost jobs are queued again rather than forgotten."""
    with app.connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except conn.channel_errors + conn.connection_errors:
            return 0


def open_jobs(store: Store, campaign_id: int, channel: str, now: datetime | None = None) -> int:
    """Jobs of a channel not finished yet that could be: being worked on, or due (one count, not a list)."""
    now = now or _now()
    with store.begin() as conn:
        return conn.execute(select(func.count()).where(
            jobs.c.campaign_id == campaign_id, jobs.c.channel == channel,
            or_(jobs.c.state.in_([JobState.RENDERING.value, JobState.SENDING.value]), is_due(now)))).scalar_one()


def run_distributed(store: Store, settings: Settings, name: str, *, poll: float = 0.5,
                    progress: Callable[[str, int, int], None] | None = None) -> Campaign:
    """Enqueue a campaign's due jobs for Celery workers, channel by channel, and watch the ledger until
    they are done: sweeping expired leases, re-queueing what a broker lost, pausing on the error budget."""
    import time

    from ..tasks import make_app
    from .steps import finalize

    camp = get_campaign(store, name)
    if camp.state != "running":
        raise InputError(f"campaign {name!r} is {camp.state}: resume it first")
    app = make_app(settings)
    try:
        for channel in [c for c in ORDER if c in camp.channels]:
            total = _enqueue(store, app, camp, channel, due_jobs(store, camp.id, channel))
            if not total:
                continue
            last_check = time.monotonic()
            grace = settings.get("enqueue_grace", default=ENQUEUE_GRACE, cast=int)
            while True:
                open_ = open_jobs(store, camp.id, channel)
                if progress:
                    progress(channel, max(total - open_, 0), total)
                if open_ == 0:
                    break
                failed, last = failures(store, camp.id)
                if failed > camp.error_budget:
                    set_state(store, name, "paused", f"error budget exceeded: {failed} failures "
                                                     f"(budget {camp.error_budget}); last: {last}")
                    return get_campaign(store, name)
                if get_campaign(store, name).state != "running":
                    return get_campaign(store, name)
                if time.monotonic() - last_check > min(5, grace):
                    requeue_stalled(store, app, camp, channel)
                    last_check = time.monotonic()
                time.sleep(poll)
            finalize(channel, settings, store, camp)
    finally:
        app.close()
    return complete_if_done(store, camp)


def execute(store: Store, settings: Settings, name: str, progress=None) -> Campaign:
    """Run a campaign where the configuration says: Celery workers when COMMS_BROKER_URL is set, else here."""
    if settings.get("broker_url", default=None):
        return run_distributed(store, settings, name, progress=progress)
    return run_embedded(store, settings, name, progress=progress)
