"""The scheduler: what sends waiting jobs when they fall due and cleans up after lost workers, with nobody
watching a terminal.

Jobs wait for three reasons: ``--start-at``, quiet hours in the customer's own time zone, and a provider's
temporary refusal (retried with backoff). Workers die and leave jobs under a lease. The process that
launched a campaign handles all of it while it runs, but it ends (or its terminal closes) long before
tomorrow's 08:00 in Shanghai. :func:`tick` does it for every running campaign, once:

* sweeps expired leases (a job cut off while rendering is done again; one cut off while sending is
  reported as "outcome unknown", never sent twice);
* runs what is due and not already queued: enqueued for the Celery workers when ``COMMS_BROKER_URL`` is
  set, else run here on the local pool;
* assembles the print batch again when letters were rendered since it was last built;
* marks campaigns with nothing left as completed.

Distributed: Celery beat calls it (task ``comms.tick`` every ``COMMS_TICK_SECONDS``, default 30): run
``celery -A worker beat`` once, or add ``-B`` to one worker. Embedded: ``comms campaign scheduler`` loops
in the foreground (``--once`` for one pass from cron). Running two of them at once is safe: claims make
every job idempotent, and the print batch is replaced atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from ..config import Settings
from ..errors import InputError
from ..store import Store, as_utc
from ..store.ledger import campaigns, jobs
from .run import (ORDER, Campaign, complete_if_done, get_campaign, is_due, requeue_stalled,
                  run_embedded)
from .states import DONE, JobState

DEFAULT_TICK_SECONDS = 30


@dataclass
class TickResult:
    campaign: str
    queued: int = 0  # distributed: jobs handed to the workers
    ran: int = 0  # embedded: jobs run here
    print_batch: bool = False  # the print batch was (re)assembled
    state: str = "running"


def tick_seconds(settings: Settings) -> float:
    return max(1.0, settings.get("tick_seconds", default=DEFAULT_TICK_SECONDS, cast=float))


def running_campaigns(store: Store) -> list[str]:
    with store.begin() as conn:
        return list(conn.execute(select(campaigns.c.name).where(campaigns.c.state == "running")
                                 .order_by(campaigns.c.id)).scalars())


def tick(store: Store, settings: Settings, app=None) -> list[TickResult]:
    """One pass over every running campaign (``app``: the Celery app to enqueue on, when distributed)."""
    results = []
    for name in running_campaigns(store):
        camp = get_campaign(store, name)
        result = TickResult(name)
        if app is not None:
            for channel in [c for c in ORDER if c in camp.channels]:
                result.queued += requeue_stalled(store, app, camp, channel)
        else:
            with store.begin() as conn:
                due = conn.execute(select(func.count()).where(jobs.c.campaign_id == camp.id,
                                                              is_due(datetime.now(timezone.utc)))).scalar_one()
            if due:
                result.ran = due
                camp = run_embedded(store, settings, name)  # finalizes and completes on its own
        result.print_batch = refresh_print_batch(store, settings, camp)
        try:
            result.state = complete_if_done(store, camp).state
        except InputError:  # paused, cancelled or completed by somebody else meanwhile
            result.state = get_campaign(store, name).state
        results.append(result)
    return results


def refresh_print_batch(store: Store, settings: Settings, camp: Campaign) -> bool:
    """Assemble the print batch when every letter job is done and one was rendered after the batch was built
    (or there is none yet). Returns whether it did."""
    from .letters import assemble_print_batch, print_folder

    if "letter" not in camp.channels:
        return False
    with store.begin() as conn:
        rows = conn.execute(select(jobs.c.state, func.count(), func.max(jobs.c.updated_at)).where(
            jobs.c.campaign_id == camp.id, jobs.c.channel == "letter").group_by(jobs.c.state)).all()
    if any(JobState(state) not in DONE for state, _, _ in rows):
        return False
    newest = max((when for state, _, when in rows if state == JobState.SENT.value), default=None)
    if newest is None:
        return False
    manifest = print_folder(settings, camp) / "manifest.csv"
    if manifest.exists() and manifest.stat().st_mtime >= as_utc(newest).timestamp():
        return False
    assemble_print_batch(settings, store, camp)
    return True
