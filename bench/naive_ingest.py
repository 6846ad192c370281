"""The naive way to import a portfolio: Python's csv module, one row at a time.

What a developer writes first: for each row, check every field with the standard library (re, Decimal,
datetime.strptime, zoneinfo, Babel), keep the good rows in dicts grouped by customer, then compute each
customer's features in a loop. Used only by the benchmark, as the baseline ours is compared with.
"""

from __future__ import annotations

import csv
import re
import unicodedata
import zoneinfo
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
CURRENCIES = set(list_currencies())
ZONES = zoneinfo.available_timezones()


def _date(value: str, errors: list[str], field: str) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        errors.append(f"{field}: not a date {value!r}")
        return None


def _money(value: str, errors: list[str], field: str) -> Decimal | None:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        errors.append(f"{field}: not a number {value!r}")
        return None
    if amount < 0:
        errors.append(f"{field}: negative")
    return amount.quantize(Decimal("0.01"))


def validate_row(row: dict[str, str]) -> list[str]:
    errors: list[str] = []
    if not row.get("customer_id"):
        errors.append("customer_id: missing")
    for field, value in row.items():
        if value and any(unicodedata.category(ch) == "Cc" for ch in value):
            errors.append(f"{field}: control character")
        if value and len(value) > 200:
            errors.append(f"{field}: too long")
    if row.get("email") and not EMAIL.match(row["email"]):
        errors.append("email: invalid")
    if row.get("currency") not in CURRENCIES:
        errors.append("currency: unknown")
    if row.get("timezone") not in ZONES:
        errors.append("timezone: unknown")
    try:
        Locale.parse(row.get("locale", ""), sep="-")
    except (ValueError, UnknownLocaleError, TypeError):
        errors.append("locale: unknown")
    for field in ("issue_date", "due_date", "customer_since"):
        _date(row.get(field, ""), errors, field)
    for field in ("amount", "open_amount"):
        _money(row.get(field, "0"), errors, field)
    return errors


def naive_ingest(path: str, as_of: date, limit: int | None = None) -> tuple[int, int, int]:
    """Returns (rows in, rows accepted, customers)."""
    customers: dict[str, dict] = {}
    rows_in = accepted = 0
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows_in += 1
            if limit and rows_in > limit:
                rows_in -= 1
                break
            if validate_row(row):
                continue
            accepted += 1
            cust = customers.setdefault(row["customer_id"], {"invoices": [], **row})
            cust["invoices"].append((datetime.strptime(row["due_date"], "%Y-%m-%d").date(),
                                     Decimal(row["open_amount"])))
    for cust in customers.values():
        cust["balance"] = sum(amount for _, amount in cust["invoices"])
        oldest = min(due for due, _ in cust["invoices"])
        cust["days_past_due"] = max((as_of - oldest).days, 0)
        billed = Decimal(cust.get("billed_history") or 0)
        cust["payment_ratio"] = float(Decimal(cust.get("paid_history") or 0) / billed) if billed else 1.0
    return rows_in, accepted, len(customers)
