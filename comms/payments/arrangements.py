"""Arrangements a customer makes instead of paying at once: an instalment plan, a promise to pay, a dispute.

Each is one row in ``arrangements`` and one event, written in the same transaction. A new plan or promise
replaces the customer's open plan or promise (the last word counts); a dispute also sets the customer's
``dispute`` flag in ``customers``. Open arrangements stop reminders (:mod:`comms.payments.status`): a plan
until its last instalment, a promise until its date, a dispute until an operator resolves it.

Amounts and dates are checked against the customer's offers by the caller (the web app recomputes them with
:func:`comms.payments.offers.offers_for`); here they are only stored.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import Connection, insert, update

from ..errors import InputError
from ..events import make_event, write_events
from ..store import Store
from ..store.schema import arrangements as t, customers as cust
from .offers import InstalmentPlan

DISPUTE_REASONS = ("not_mine", "already_paid", "wrong_amount", "other")
MAX_DETAILS = 2000


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _close_open(conn: Connection, customer_id: str, kinds: tuple[str, ...], now: datetime) -> None:
    conn.execute(update(t).where(t.c.customer_id == customer_id, t.c.kind.in_(kinds), t.c.status == "open")
                 .values(status="closed", closed_at=now))


def choose_plan(store: Store, *, campaign: str, customer_id: str, plan: InstalmentPlan, currency: str,
                variant: str | None = None) -> int:
    """Record the instalment plan the customer chose (it replaces an open plan or promise); returns its id."""
    now = _now()
    with store.begin() as conn:
        _close_open(conn, customer_id, ("plan", "promise"), now)
        new_id = conn.execute(insert(t).values(
            created_at=now, campaign=campaign, customer_id=customer_id, kind="plan", status="open",
            months=plan.months, amount=plan.total, currency=currency, until=plan.schedule[-1][0],
            schedule=[[d.isoformat(), str(a)] for d, a in plan.schedule],
        ).returning(t.c.id)).scalar_one()
        write_events(conn, [make_event("plan_chosen", campaign=campaign, channel="page", variant=variant,
                                       customer_id=customer_id, occurred_at=now,
                                       data={"months": plan.months, "instalment": plan.instalment,
                                             "total": plan.total, "currency": currency})])
    return new_id


def make_promise(store: Store, *, campaign: str, customer_id: str, until: date, amount: Decimal,
                 currency: str, variant: str | None = None) -> int:
    """Record a promise to pay ``amount`` by ``until`` (it replaces an open plan or promise)."""
    now = _now()
    with store.begin() as conn:
        _close_open(conn, customer_id, ("plan", "promise"), now)
        new_id = conn.execute(insert(t).values(
            created_at=now, campaign=campaign, customer_id=customer_id, kind="promise", status="open",
            amount=amount, currency=currency, until=until,
        ).returning(t.c.id)).scalar_one()
        write_events(conn, [make_event("promise_made", campaign=campaign, channel="page", variant=variant,
                                       customer_id=customer_id, occurred_at=now,
                                       data={"until": until.isoformat(), "amount": amount,
                                             "currency": currency})])
    return new_id


def open_dispute(store: Store, *, campaign: str, customer_id: str, reason: str, details: str = "",
                 variant: str | None = None) -> int:
    """Record a dispute. The customer's own words stay in this row only, never in an event."""
    if reason not in DISPUTE_REASONS:
        raise InputError(f"unknown dispute reason {reason!r}")
    details = (details or "").strip()[:MAX_DETAILS]
    now = _now()
    with store.begin() as conn:
        _close_open(conn, customer_id, ("dispute",), now)
        new_id = conn.execute(insert(t).values(
            created_at=now, campaign=campaign, customer_id=customer_id, kind="dispute", status="open",
            reason=reason, details=details or None,
        ).returning(t.c.id)).scalar_one()
        conn.execute(update(cust).where(cust.c.customer_id == customer_id).values(dispute=True))
        write_events(conn, [make_event("dispute_opened", campaign=campaign, channel="page", variant=variant,
                                       customer_id=customer_id, occurred_at=now, data={"reason": reason})])
    return new_id


def resolve_dispute(store: Store, customer_id: str) -> int:
    """Close the customer's open dispute (an operator's decision); reminders may resume. Returns rows closed."""
    now = _now()
    with store.begin() as conn:
        n = conn.execute(update(t).where(t.c.customer_id == customer_id, t.c.kind == "dispute",
                                         t.c.status == "open").values(status="closed", closed_at=now)).rowcount
        if n:
            conn.execute(update(cust).where(cust.c.customer_id == customer_id).values(dispute=False))
    return n


__all__ = ["DISPUTE_REASONS", "MAX_DETAILS", "choose_plan", "make_promise", "open_dispute", "resolve_dispute"]
