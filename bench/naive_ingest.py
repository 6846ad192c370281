"""The naive way to import a portfolio: Python's csv module, one row at a time.

What a developer writes first: for each row, check every field with the standard library (re, Decimal,
datetime.strptime, zoneinfo, Babel), keep the good rows in dicts grouped by customer, then compute each
customer's features in a loop. Used only by the benchmark, as the baseline ours is compared with.

It applies the rules ours applies (see comms/ingest/pipeline.py and README "Importing a portfolio"), so the
two do the same work and reject the same rows (the benchmark compares their reject counts):

* every cell: the csvsafe quote undone, white space trimmed, no control character, no absurd length;
* required fields present; e-mail and phone well formed; country, locale, time zone and currency known;
  yes/no flags, dates, amounts (not negative, at most two decimals) and whole numbers readable;
* invoice rows: a number, unique within the customer; the customer's fields agree on every row of theirs;
* a customer with any rejected row is held back whole (every row of theirs counts as rejected).

It still does less than ours: no scoring, no segmentation, no store, no rejects file.
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

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?([ ()./-]*[0-9]){5,20}[ ()./-]*$")
CURRENCIES = set(list_currencies())
ZONES = zoneinfo.available_timezones()
COUNTRIES = {k for k in Locale("en").territories if len(k) == 2 and k.isalpha()}
YES, NO = {"true", "t", "yes", "y", "1", "x"}, {"false", "f", "no", "n", "0"}
MAX_LENGTH = {"customer_id": 64, "given_name": 100, "email": 254, "phone": 32, "postal_code": 20, "city": 100,
              "region": 100, "country": 2, "locale": 35, "timezone": 64, "currency": 3, "invoice_number": 64}
REQUIRED = ("customer_id", "name", "country", "locale", "timezone", "currency", "invoice_number", "due_date")
FLAGS = ("consent_email", "consent_sms", "consent_letter", "do_not_contact", "dispute")
DATES = ("customer_since", "issue_date", "due_date")
MONEY = ("billed_history", "paid_history", "amount", "open_amount")
INVOICE_FIELDS = {"invoice_number", "issue_date", "due_date", "amount", "open_amount"}


def _clean(value: str) -> str:
    if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        value = value[1:]  # comms.csvsafe's quote before a formula-like cell
    return value.strip()


def _date(value: str, errors: list[str], field: str) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        errors.append(f"{field}: not a date {value!r}")
        return None


def _money(value: str, errors: list[str], field: str) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        errors.append(f"{field}: not a number {value!r}")
        return None
    if not amount.is_finite() or amount < 0:
        errors.append(f"{field}: negative or not a number")
    elif amount.as_tuple().exponent < -2:
        errors.append(f"{field}: more than two decimals")
    return amount


def validate_row(row: dict[str, str]) -> list[str]:
    errors: list[str] = []
    for field, value in row.items():
        if value and any(unicodedata.category(ch) == "Cc" for ch in value):
            errors.append(f"{field}: control character")
        if len(value) > MAX_LENGTH.get(field, 200):
            errors.append(f"{field}: too long")
    for field in REQUIRED:
        if not row.get(field):
            errors.append(f"{field}: missing")
    if row["email"] and not EMAIL.match(row["email"]):
        errors.append("email: invalid")
    if row["phone"] and not PHONE.match(row["phone"]):
        errors.append("phone: not a phone number")
    if row["country"] and row["country"].upper() not in COUNTRIES:
        errors.append("country: unknown")
    if row["currency"] and row["currency"].upper() not in CURRENCIES:
        errors.append("currency: unknown")
    if row["timezone"] and row["timezone"] not in ZONES:
        errors.append("timezone: unknown")
    if row["locale"]:
        try:
            Locale.parse(row["locale"], sep="-")
        except (ValueError, UnknownLocaleError, TypeError):
            errors.append("locale: unknown")
    for field in FLAGS:
        if row[field] and row[field].lower() not in YES | NO:
            errors.append(f"{field}: not a yes/no value")
    for field in DATES:
        _date(row[field], errors, field)
    for field in MONEY:
        _money(row[field], errors, field)
    if row["broken_promises"]:
        try:
            if int(row["broken_promises"]) < 0:
                errors.append("broken_promises: negative")
        except ValueError:
            errors.append("broken_promises: not a whole number")
    return errors


def naive_ingest(path: str, as_of: date, limit: int | None = None) -> tuple[int, int, int]:
    """Returns (rows in, rows accepted, customers accepted)."""
    customers: dict[str, dict] = {}
    held_back: set[str] = set()  # customers with a rejected row
    rows_in = rejected_alone = 0
    with open(path, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            rows_in += 1
            if limit and rows_in > limit:
                rows_in -= 1
                break
            row = {field: _clean(value or "") for field, value in raw.items()}
            errors = validate_row(row)
            cid = row["customer_id"]
            if not cid:
                rejected_alone += 1
                continue
            cust = customers.get(cid)
            if cust is None:
                cust = customers[cid] = {"fields": {k: v for k, v in row.items() if k not in INVOICE_FIELDS},
                                         "invoices": [], "numbers": set(), "rows": 0}
            else:
                for field, value in cust["fields"].items():
                    if row[field] != value:
                        errors.append(f"{field}: differs between rows of one customer")
                if row["invoice_number"] in cust["numbers"]:
                    errors.append("invoice_number: duplicate for this customer")
            cust["rows"] += 1
            if errors or cid in held_back:
                held_back.add(cid)
                continue
            cust["numbers"].add(row["invoice_number"])
            cust["invoices"].append((datetime.strptime(row["due_date"], "%Y-%m-%d").date(),
                                     Decimal(row["open_amount"] or row["amount"]), Decimal(row["amount"] or 0)))
    accepted = 0
    for cid, cust in customers.items():
        if cid in held_back:
            continue
        accepted += cust["rows"]
        fields, invoices = cust["fields"], cust["invoices"]
        cust["balance"] = sum(open_amount for _, open_amount, _ in invoices)
        owing = [due for due, open_amount, _ in invoices if open_amount > 0]
        cust["days_past_due"] = max((as_of - min(owing)).days, 0) if owing else 0
        dpd = cust["days_past_due"]
        cust["aging_bucket"] = ("current" if dpd == 0 else "1-30" if dpd <= 30 else "31-60" if dpd <= 60
                                else "61-90" if dpd <= 90 else "90+")
        billed = Decimal(fields["billed_history"] or 0)
        cust["payment_ratio"] = float(Decimal(fields["paid_history"] or 0) / billed) if billed else 1.0
        since = datetime.strptime(fields["customer_since"], "%Y-%m-%d").date() if fields["customer_since"] else None
        cust["tenure_months"] = (as_of.year - since.year) * 12 + as_of.month - since.month if since else 0
        cust["invoice_count"] = len(invoices)
        cust["max_invoice_amount"] = max(amount for _, _, amount in invoices)
    assert rows_in == accepted + rejected_alone + sum(
        customers[cid]["rows"] for cid in held_back)  # counts reconcile here too
    return rows_in, accepted, len(customers) - len(held_back)
