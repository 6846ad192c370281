"""Events: what customers and providers did, stored with time, campaign, channel and variant for reporting.

Kinds form a closed set (:data:`KINDS`): the micro-site's (page viewed, video played with its quartile, pay
clicked, paid, plan chosen, promise made, dispute opened, opted out, letter downloaded) and SendGrid's
(``email_delivered``, ``email_open``, ...). An event never carries personal data in clear: it names the
customer by CRM id, the message by our own minted id, and ``data`` holds only opaque values (amount strings,
months, quartiles, reason codes). It is checked here, where an event is made.

Writing: :func:`record_event` writes at once (money and status changes: in the same transaction as the change
when given a connection); :class:`EventBuffer` collects high-volume, low-value events (page views, video
progress) and writes them in batches, so a page view does not cost a write transaction. A ``dedupe_key``
turns a replay (a webhook retry, a second beacon for the same quartile) into a no-op.

Reading: :func:`load_events` gives a DataFrame for reports; :func:`event_counts` counts kinds per campaign.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

import pandas as pd
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from .errors import InputError
from .store import Store
from .store.schema import events as t

log = logging.getLogger("comms.events")

PAGE_KINDS = ("page_viewed", "video_played", "pay_clicked", "checkout_started", "paid", "plan_chosen",
              "promise_made", "dispute_opened", "opted_out", "letter_downloaded")
EMAIL_KINDS = tuple(f"email_{k}" for k in ("processed", "delivered", "deferred", "bounce", "dropped", "open",
                                           "click", "spamreport", "unsubscribe", "group_unsubscribe",
                                           "group_resubscribe"))
KINDS = frozenset(PAGE_KINDS + EMAIL_KINDS)
CHANNELS = frozenset({"email", "letter", "page", "video", "sms", "qr"})
QUARTILES = (0, 25, 50, 75, 100)
_DATA_VALUE = (str, int, float, bool, type(None))
_MAX_DATA_STR = 64


def _now() -> datetime:
    return datetime.now(timezone.utc)


def dedupe_digest(*parts: object) -> str:
    """A dedupe key that does not show what it was made of (it may include a customer id)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:40]


def _clean_data(kind: str, data: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if isinstance(value, Decimal):
            value = str(value)
        if not isinstance(value, _DATA_VALUE) or (isinstance(value, str) and len(value) > _MAX_DATA_STR):
            raise InputError(f"event {kind}: data[{key!r}] must be a short opaque value")
        out[str(key)] = value
    return out


def make_event(kind: str, *, campaign: str | None = None, channel: str | None = None,
               variant: str | None = None, customer_id: str | None = None, message_id: str | None = None,
               data: dict[str, Any] | None = None, dedupe_key: str | None = None,
               occurred_at: datetime | None = None) -> dict[str, Any]:
    """One event row, checked: known kind and channel, opaque data, aware time."""
    if kind not in KINDS:
        raise InputError(f"unknown event kind {kind!r}")
    if channel is not None and channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r}")
    when = occurred_at or _now()
    if when.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    return {"occurred_at": when, "kind": kind, "campaign": campaign, "channel": channel,
            "variant": (variant or None) and variant[:64], "customer_id": customer_id,
            "message_id": (message_id or None) and message_id[:100], "dedupe_key": dedupe_key,
            "data": _clean_data(kind, data)}


def _insert_ignoring_duplicates(dialect: str):
    """INSERT .. ON CONFLICT DO NOTHING RETURNING id: a row comes back only when it was written (rowcount is
    not reliable with RETURNING on every driver)."""
    if dialect == "postgresql":
        stmt = postgresql.insert(t).on_conflict_do_nothing(index_elements=["dedupe_key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(t).on_conflict_do_nothing(index_elements=["dedupe_key"])
    else:
        stmt = insert(t)
    return stmt.returning(t.c.id)


def write_events(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert checked rows on an open connection; rows whose dedupe_key exists are skipped. Returns rows written.

    Rows without a dedupe key (page views) go in one multi-row insert; keyed rows one statement each, so that
    every duplicate is skipped on its own.
    """
    if not rows:
        return 0
    plain = [r for r in rows if r["dedupe_key"] is None]
    keyed = [r for r in rows if r["dedupe_key"] is not None]
    written = 0
    if plain:
        conn.execute(insert(t), plain)
        written += len(plain)
    if keyed:
        stmt = _insert_ignoring_duplicates(conn.dialect.name)
        for row in keyed:
            written += conn.execute(stmt, row).first() is not None
    return written


def record_event(target: Store | Connection, kind: str, **fields: Any) -> bool:
    """Record one event now; False when its dedupe_key was already recorded (a replay)."""
    row = make_event(kind, **fields)
    if isinstance(target, Store):
        with target.begin() as conn:
            return write_events(conn, [row]) == 1
    return write_events(target, [row]) == 1


def record_events(store: Store, rows: Iterable[dict[str, Any]]) -> int:
    """Record many already-made events (see :func:`make_event`) in one transaction."""
    rows = list(rows)
    with store.begin() as conn:
        return write_events(conn, rows)


class EventBuffer:
    """Collects events and writes them in batches (page views, video progress): whoever runs the app calls
    :meth:`flush` on a timer and at shutdown, and :meth:`add` writes inline once ``max_rows`` wait. Thread-safe.

    A failed write keeps its rows for the next flush (events are deduplicated, so a retry records nothing
    twice). While the database stays away, at most ``KEEP_BATCHES * max_rows`` rows wait in memory; beyond
    that the oldest are dropped and the count is logged as an error, never silently."""

    KEEP_BATCHES = 5

    def __init__(self, store: Store, max_rows: int = 500):
        self.store = store
        self.max_rows = max_rows
        self.dropped = 0
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the rows
        self._writing = threading.Lock()  # one write at a time

    def add(self, kind: str, **fields: Any) -> None:
        row = make_event(kind, **fields)
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.max_rows
        if full:
            try:
                self.flush()
            except Exception as exc:  # the page is served anyway; the rows wait for the next flush
                log.error("writing %d events failed, kept for the next try: %s", len(self), exc)

    def __len__(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write what waits. When it returns, every event added before the call is written: a flush under
        way in another thread (the timer's) is waited for, not overtaken."""
        with self._writing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            return record_events(self.store, rows)
        except Exception:
            with self._lock:
                self._rows[:0] = rows
                over = len(self._rows) - self.KEEP_BATCHES * self.max_rows
                if over > 0:
                    del self._rows[:over]
                    self.dropped += over
                    log.error("the event backlog is full: dropped the %d oldest events (%d in all)", over,
                              self.dropped)
            raise


def load_events(store: Store, *, campaign: str | None = None, kinds: Iterable[str] | None = None,
                since: datetime | None = None) -> pd.DataFrame:
    """Events as a DataFrame (one row per event; ``data`` as dicts) for reports."""
    q = select(t.c.occurred_at, t.c.kind, t.c.campaign, t.c.channel, t.c.variant, t.c.customer_id,
               t.c.message_id, t.c.data).order_by(t.c.id)
    if campaign is not None:
        q = q.where(t.c.campaign == campaign)
    if kinds is not None:
        q = q.where(t.c.kind.in_(list(kinds)))
    if since is not None:
        q = q.where(t.c.occurred_at >= since)
    with store.begin() as conn:
        rows = conn.execute(q).all()
    return pd.DataFrame([r._asdict() for r in rows],
                        columns=["occurred_at", "kind", "campaign", "channel", "variant", "customer_id",
                                 "message_id", "data"])


def event_counts(store: Store, campaign: str) -> dict[str, int]:
    """{kind: count} for one campaign."""
    with store.begin() as conn:
        rows = conn.execute(select(t.c.kind, func.count()).where(t.c.campaign == campaign)
                            .group_by(t.c.kind)).all()
    return {k: n for k, n in rows}


__all__ = ["CHANNELS", "EMAIL_KINDS", "EventBuffer", "KINDS", "PAGE_KINDS", "QUARTILES", "dedupe_digest",
           "event_counts", "load_events", "make_event", "record_event", "record_events", "write_events"]
