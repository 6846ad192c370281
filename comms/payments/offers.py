"""Payment offers computed for one customer: the numbers every channel shows and the page accepts.

A segment's offers (segments/*.yaml: pay in full, settlement discount with a deadline, instalment plans with
a minimum instalment, promise to pay within a window) become concrete amounts and dates here, once, in
Decimal, rounded once to the currency's minor unit. E-mail, letter, page and video all read the same
:class:`OfferSet`, so a customer never sees two different instalment amounts.

Instalments: the balance is split into equal instalments rounded down to the minor unit; the last one
absorbs the remainder, so the schedule always sums to the balance exactly. A plan whose regular instalment
falls below the segment's minimum is not offered. Due dates are monthly from the first due date, clamped to
the month's last day (Jan 31 -> Feb 28 -> Mar 31).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from ..render.formatting import round_money
from babel.numbers import get_currency_precision

FIRST_INSTALMENT_AFTER_DAYS = 7


def add_months(start: date, months: int) -> date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Settlement:
    percent: Decimal
    discount: Decimal
    pay: Decimal
    deadline: date


@dataclass(frozen=True)
class InstalmentPlan:
    months: int
    instalment: Decimal
    schedule: tuple[tuple[date, Decimal], ...]

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.schedule), Decimal(0))


@dataclass(frozen=True)
class OfferSet:
    balance: Decimal
    currency: str
    pay_in_full: bool
    settlement: Settlement | None
    plans: tuple[InstalmentPlan, ...]
    promise_latest: date | None

    def plan(self, months: int) -> InstalmentPlan | None:
        return next((p for p in self.plans if p.months == months), None)


def instalment_plan(balance: Decimal, currency: str, months: int, first_due: date) -> InstalmentPlan:
    quantum = Decimal(1).scaleb(-get_currency_precision(currency))
    regular = (balance / months).quantize(quantum, rounding=ROUND_DOWN)
    last = balance - regular * (months - 1)
    schedule = tuple((add_months(first_due, i), regular if i < months - 1 else last) for i in range(months))
    return InstalmentPlan(months=months, instalment=regular, schedule=schedule)


def offers_for(balance: Decimal, currency: str, offers, as_of: date) -> OfferSet:
    """The concrete offers for one balance. ``offers`` is a segment's ``Offers`` (comms.segment.config)."""
    balance = round_money(balance, currency)
    settlement = None
    if offers.settlement_discount is not None and balance > 0:
        pct = Decimal(offers.settlement_discount.percent)
        discount = round_money(balance * pct / 100, currency)
        settlement = Settlement(percent=pct, discount=discount, pay=balance - discount,
                                deadline=as_of + timedelta(days=offers.settlement_discount.deadline_days))
    plans: list[InstalmentPlan] = []
    if offers.instalments is not None and balance > 0:
        first_due = as_of + timedelta(days=FIRST_INSTALMENT_AFTER_DAYS)
        for months in offers.instalments.months:
            plan = instalment_plan(balance, currency, months, first_due)
            if plan.instalment >= Decimal(offers.instalments.minimum) and plan.instalment > 0:
                plans.append(plan)
    promise = as_of + timedelta(days=offers.promise_to_pay.max_days) if offers.promise_to_pay else None
    return OfferSet(balance=balance, currency=currency, pay_in_full=offers.pay_in_full,
                    settlement=settlement, plans=tuple(plans), promise_latest=promise)
