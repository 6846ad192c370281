"""Checkouts and payments: what the customer started to pay, and the money that came in.

A checkout is created when the customer chooses what to pay; its amount is computed on the server from the
offers (never read from the browser) and its id is random and opaque: the one thing that travels to the
payment provider and back. :func:`record_payment` turns a checkout into a payment exactly once, in one
transaction: it marks the checkout paid (only if it was open), inserts the payment (unique per provider
reference), lowers the customer's open balance in ``customers`` and records the ``paid`` event. A replayed
callback, a double click or two providers' callbacks for the same checkout record nothing twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import CommsError, InputError
from ..events import dedupe_digest, make_event, write_events
from ..render.formatting import round_money
from ..store import Store
from ..store.schema import checkouts as ct, customers as cust, payments as pt

PURPOSES = ("full", "settlement", "instalment")


class PaymentError(CommsError):
    """A payment callback or checkout that cannot be accepted (bad signature, stale, wrong amount)."""


@dataclass(frozen=True)
class Checkout:
    id: str
    created_at: datetime
    provider: str
    campaign: str
    customer_id: str
    purpose: str
    amount: Decimal
    waive: Decimal
    currency: str
    status: str
    completed_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _checkout(row) -> Checkout:
    m = row._mapping
    return Checkout(id=m["id"], created_at=m["created_at"], provider=m["provider"], campaign=m["campaign"],
                    customer_id=m["customer_id"], purpose=m["purpose"], amount=Decimal(m["amount"]),
                    waive=Decimal(m["waive"]), currency=m["currency"], status=m["status"],
                    completed_at=m["completed_at"])


def create_checkout(store: Store, *, provider: str, campaign: str, customer_id: str, purpose: str,
                    amount: Decimal, currency: str, waive: Decimal = Decimal("0"),
                    variant: str | None = None) -> Checkout:
    """Open a checkout for an amount the server decided; records ``checkout_started``."""
    if purpose not in PURPOSES:
        raise InputError(f"unknown payment purpose {purpose!r}")
    amount, waive = round_money(amount, currency), round_money(waive, currency)
    if amount <= 0 or waive < 0:
        raise InputError(f"a checkout needs a positive amount, got {amount}")
    cid = secrets.token_urlsafe(18)  # 24 characters, 144 random bits
    now = _now()
    with store.begin() as conn:
        conn.execute(insert(ct).values(id=cid, created_at=now, provider=provider, campaign=campaign,
                                       customer_id=customer_id, purpose=purpose, amount=amount, waive=waive,
                                       currency=currency, status="open"))
        write_events(conn, [make_event("checkout_started", campaign=campaign, channel="page", variant=variant,
                                       customer_id=customer_id, occurred_at=now,
                                       data={"purpose": purpose, "amount": amount, "currency": currency,
                                             "provider": provider})])
    return Checkout(cid, now, provider, campaign, customer_id, purpose, amount, waive, currency, "open")


def get_checkout(store: Store, checkout_id: str, *, customer_id: str | None = None,
                 campaign: str | None = None) -> Checkout | None:
    """A checkout by id; None when unknown or (given them) not this customer's or campaign's."""
    if not isinstance(checkout_id, str) or not 1 <= len(checkout_id) <= 32:
        return None
    q = select(ct).where(ct.c.id == checkout_id)
    if customer_id is not None:
        q = q.where(ct.c.customer_id == customer_id)
    if campaign is not None:
        q = q.where(ct.c.campaign == campaign)
    with store.begin() as conn:
        row = conn.execute(q).first()
    return _checkout(row) if row else None


def _insert_payment(dialect: str):
    """INSERT .. ON CONFLICT DO NOTHING RETURNING id: a row comes back only when the payment is new."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(pt).on_conflict_do_nothing(index_elements=["provider", "provider_ref"]).returning(pt.c.id)


def record_payment(store: Store, checkout: Checkout, *, provider_ref: str, amount: Decimal, currency: str,
                   variant: str | None = None, channel: str = "page") -> bool:
    """Record the payment of a checkout once; False when it was already recorded (a replay).

    The amount and currency must be the checkout's: a provider confirming another amount is refused
    (PaymentError), never silently booked.
    """
    amount = Decimal(amount)
    if currency != checkout.currency or round_money(amount, currency) != checkout.amount:
        raise PaymentError(f"checkout {checkout.id[:6]}...: paid {amount} {currency}, expected "
                           f"{checkout.amount} {checkout.currency}")
    if not provider_ref or len(provider_ref) > 100:
        raise PaymentError("a payment needs a provider reference of at most 100 characters")
    now = _now()
    with store.begin() as conn:
        opened = conn.execute(update(ct).where(ct.c.id == checkout.id, ct.c.status == "open")
                              .values(status="paid", completed_at=now)).rowcount
        if opened != 1:
            return False
        inserted = conn.execute(_insert_payment(conn.dialect.name), {
            "created_at": now, "provider": checkout.provider, "provider_ref": provider_ref,
            "checkout_id": checkout.id, "campaign": checkout.campaign, "customer_id": checkout.customer_id,
            "amount": checkout.amount, "waived": checkout.waive, "currency": checkout.currency}).first()
        if inserted is None:  # the same provider reference booked under another checkout: keep this one open
            conn.execute(update(ct).where(ct.c.id == checkout.id).values(status="open", completed_at=None))
            return False
        reduce = checkout.amount + checkout.waive
        conn.execute(update(cust).where(cust.c.customer_id == checkout.customer_id).values(
            balance=case((cust.c.balance - reduce < 0, Decimal("0")), else_=cust.c.balance - reduce)))
        write_events(conn, [make_event(
            "paid", campaign=checkout.campaign, channel=channel, variant=variant,
            customer_id=checkout.customer_id, occurred_at=now,
            dedupe_key=dedupe_digest("paid", checkout.provider, provider_ref),
            data={"amount": checkout.amount, "waived": checkout.waive, "currency": checkout.currency,
                  "purpose": checkout.purpose, "provider": checkout.provider})])
    return True


def cancel_checkout(store: Store, checkout: Checkout) -> bool:
    with store.begin() as conn:
        return conn.execute(update(ct).where(ct.c.id == checkout.id, ct.c.status == "open")
                            .values(status="cancelled", completed_at=_now())).rowcount == 1


__all__ = ["Checkout", "PURPOSES", "PaymentError", "cancel_checkout", "create_checkout", "get_checkout",
           "record_payment"]
