"""Plain data types shared by every stage, and the canonical portfolio schema.

A portfolio arrives in one of two layouts, both mapped onto the canonical field names below:

* **customer rows**: one row per customer, with ``balance`` (and ``days_past_due`` or ``due_date``) or
  one invoice's fields on the same row;
* **invoice rows**: one row per open invoice (the usual aged-receivables export); customer fields repeat on
  every row of that customer and must agree.

Money is :class:`decimal.Decimal` everywhere in Python, ``decimal128(18, 2)`` in Arrow/Parquet and
``Numeric(18, 2)`` in the store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

FieldKind = Literal["str", "email", "phone", "country", "locale", "timezone", "currency", "bool", "date",
                    "money", "int", "number", "outcome"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    level: Literal["customer", "invoice"]
    required: bool = False
    max_length: int = 200
    help: str = ""


# The canonical schema. Order is the order of columns in snapshots and rejects files.
SCHEMA: tuple[FieldSpec, ...] = (
    FieldSpec("customer_id", "str", "customer", True, 64, "the customer's id in the creditor's CRM"),
    FieldSpec("name", "str", "customer", True, 200, "full name or company name, any script"),
    FieldSpec("given_name", "str", "customer", False, 100, "the name used in the greeting"),
    FieldSpec("email", "email", "customer", False, 254),
    FieldSpec("phone", "phone", "customer", False, 32),
    FieldSpec("address_line1", "str", "customer", False, 200),
    FieldSpec("address_line2", "str", "customer", False, 200),
    FieldSpec("postal_code", "str", "customer", False, 20),
    FieldSpec("city", "str", "customer", False, 100),
    FieldSpec("region", "str", "customer", False, 100),
    FieldSpec("country", "country", "customer", True, 2, "ISO 3166-1 alpha-2"),
    FieldSpec("locale", "locale", "customer", True, 35, "BCP 47, e.g. it-IT, he-IL, zh-CN"),
    FieldSpec("timezone", "timezone", "customer", True, 64, "IANA, e.g. Europe/Rome"),
    FieldSpec("currency", "currency", "customer", True, 3, "ISO 4217"),
    FieldSpec("consent_email", "bool", "customer"),
    FieldSpec("consent_sms", "bool", "customer"),
    FieldSpec("consent_letter", "bool", "customer"),
    FieldSpec("do_not_contact", "bool", "customer"),
    FieldSpec("dispute", "bool", "customer"),
    FieldSpec("customer_since", "date", "customer"),
    FieldSpec("billed_history", "money", "customer", help="amount billed over the history window"),
    FieldSpec("paid_history", "money", "customer", help="amount paid over the history window"),
    FieldSpec("broken_promises", "int", "customer"),
    FieldSpec("balance", "money", "customer", help="customer rows only: open balance"),
    FieldSpec("days_past_due", "int", "customer", help="customer rows only: days past the oldest due date"),
    FieldSpec("outcome", "outcome", "customer", help="1 if the customer defaulted (training only)"),
    FieldSpec("invoice_number", "str", "invoice", False, 64),
    FieldSpec("issue_date", "date", "invoice"),
    FieldSpec("due_date", "date", "invoice"),
    FieldSpec("amount", "money", "invoice"),
    FieldSpec("open_amount", "money", "invoice"),
)
FIELDS = {f.name: f for f in SCHEMA}
CUSTOMER_FIELDS = tuple(f.name for f in SCHEMA if f.level == "customer")
INVOICE_FIELDS = tuple(f.name for f in SCHEMA if f.level == "invoice")

# Defaults for optional flags when the export has no such column (reported as defaulted by ingest).
FLAG_DEFAULTS = {"consent_email": True, "consent_sms": False, "consent_letter": True,
                 "do_not_contact": False, "dispute": False, "broken_promises": 0}

# Features derived per customer; rules, clustering and scoring read these names.
FEATURES: dict[str, str] = {
    "balance": "open balance in the customer's currency",
    "days_past_due": "days since the oldest open invoice fell due (0 if none overdue)",
    "aging_bucket": "current, 1-30, 31-60, 61-90, 91-180, 181+",
    "payment_ratio": "paid_history / billed_history, 0..1 (1 when there is no history)",
    "broken_promises": "promises to pay not kept",
    "tenure_months": "months since customer_since (0 when unknown)",
    "invoice_count": "number of open invoices",
    "dispute": "an open dispute",
    "do_not_contact": "do not contact at all",
}
AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "91-180", "181+")
AGING_EDGES = (0, 30, 60, 90, 180)  # days_past_due <= edge falls in the bucket at that index

Band = Literal["green", "yellow", "red"]


def band_for(score: float) -> Band:
    """The three bands credit teams use: green >= 80, yellow 60-79, red < 60."""
    return "green" if score >= 80 else "yellow" if score >= 60 else "red"


class Channel(str, enum.Enum):
    EMAIL = "email"
    LETTER = "letter"
    PAGE = "page"
    VIDEO = "video"


@dataclass(frozen=True)
class Invoice:
    number: str
    issue_date: date | None
    due_date: date | None
    amount: Decimal
    open_amount: Decimal


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    country: str
    locale: str
    timezone: str
    currency: str
    given_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address_lines: tuple[str, ...] = ()
    postal_code: str | None = None
    consents: dict[str, bool] = field(default_factory=dict)
    do_not_contact: bool = False
    dispute: bool = False
    balance: Decimal = Decimal("0.00")
    days_past_due: int = 0
    invoices: tuple[Invoice, ...] = ()


@dataclass(frozen=True)
class Assignment:
    customer_id: str
    score: float
    band: Band
    reasons: tuple[str, ...]
    segment: str
    treatment: str
    cluster: int | None = None
