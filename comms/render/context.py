"""The one place where a customer, their segment's offers and their signed link become a template context.

Every channel (e-mail, letter, page, video) renders from the same context, built from one snapshot, so
the amount in the e-mail, on the letter, on the page and in the video is the same string. Amounts, dates
and numbers are formatted here for the customer's locale (comms.render.formatting); templates only place
them. Raw values stay available (``*_amount``, ``*_iso``) for channels that compute with them.

Context (what templates may use; ``comms lint`` renders every template against it):

    customer   id, name, greeting_name, email, locale, lang, dir ("ltr"/"rtl"), country, currency,
               address_lines (list), postal_code
    balance    formatted balance; balance_amount (Decimal); days_past_due; oldest_due (formatted or "")
    invoices   list of {number, issue_date, due_date, amount, open_amount, days_overdue}
    offers     pay_in_full (bool), settlement {percent, discount, pay, deadline} | None,
               plans [{months, instalment, total, schedule: [{date, amount}]}], promise_latest | None
    links      page, pay, video, letter, unsubscribe (https URLs carrying the signed token)
    treatment  name, title, tone;  campaign: name
    segment    name, channels (what this customer gets in this campaign: the segment's channels that the
               campaign sends; an e-mail shows the video poster only when "video" is among them)
    creditor   name, address_lines, email, phone, website, iban, bic
    today      formatted as-of date
    t          the treatment's words in the customer's language, already rendered: each message is a
               sandboxed Jinja snippet over this same context (no HTML in messages: templates autoescape
               them, so a customer's name inside a message is escaped exactly once)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from collections.abc import Mapping
from typing import Any, Iterable

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import Settings
from ..models import Customer, Invoice
from ..payments.offers import offers_for
from . import formatting as fmt
from .sandbox import compile_template, render_limited
from .strings import strings_for


class Messages(Mapping):
    """A treatment's words, rendered on first use: ``t.settlement`` may name ``offers.settlement.pay``
    because a template only reads it inside ``{% if offers.settlement %}``. Each message source is compiled
    once per builder, then rendered in the sandbox with this customer's context."""

    def __init__(self, sources: dict, context: dict[str, Any], compiled: dict, prefix: str = ""):
        self._sources = sources
        self._context = context
        self._compiled = compiled
        self._prefix = prefix
        self._done: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        source = self._sources[key]
        if isinstance(source, dict):
            value: Any = Messages(source, self._context, self._compiled, f"{self._prefix}{key}.")
        elif "{" not in source:
            value = source
        else:
            name = f"message {self._prefix}{key}"
            template = self._compiled.get(source)
            if template is None:
                template = self._compiled[source] = compile_template(source, html=False, name=name)
            value = render_limited(template, self._context, max_bytes=20_000, name=name)
        self._done[key] = value
        return value

    def __iter__(self):
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


@dataclass(frozen=True)
class Creditor:
    name: str
    address_lines: tuple[str, ...]
    email: str
    phone: str
    website: str
    iban: str
    bic: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "Creditor":
        get = settings.get
        return cls(
            name=get("creditor_name", default="Example Collections Ltd (demo)"),
            address_lines=tuple(str(get("creditor_address", default="1 Example Street|10115 Berlin|Germany"))
                                .split("|")),
            email=get("creditor_email", default="help@example.com"),
            phone=get("creditor_phone", default="+49 30 0000000"),
            website=get("creditor_website", default="https://example.com"),
            iban=get("creditor_iban", default="DE89370400440532013000"),
            bic=get("creditor_bic", default="COBADEFFXXX"),
        )


def _opt(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


def invoice_from_row(r: dict) -> Invoice:
    """An invoices.parquet row as an Invoice (open amount defaults to the amount)."""
    amount = r.get("amount") or Decimal(0)
    open_amount = r.get("open_amount")
    return Invoice(number=r.get("invoice_number") or "", issue_date=r.get("issue_date"),
                   due_date=r.get("due_date"), amount=amount,
                   open_amount=amount if open_amount is None else open_amount)


def customer_from_row(r: dict, invoices: Iterable[Invoice] = ()) -> Customer:
    """A customers.parquet row (and its invoices) as a Customer: the one place that knows the mapping."""
    lines = tuple(x for x in (r.get("address_line1"), r.get("address_line2"),
                              " ".join(p for p in (r.get("postal_code"), r.get("city")) if p),
                              r.get("region")) if x)
    return Customer(
        customer_id=r["customer_id"], name=r["name"], country=r["country"], locale=r["locale"],
        timezone=r["timezone"], currency=r["currency"], given_name=_opt(r.get("given_name")),
        email=_opt(r.get("email")), phone=_opt(r.get("phone")), address_lines=lines,
        postal_code=_opt(r.get("postal_code")),
        consents={c: bool(r.get(f"consent_{c}")) for c in ("email", "sms", "letter")},
        do_not_contact=bool(r.get("do_not_contact")), dispute=bool(r.get("dispute")),
        balance=r.get("balance") or Decimal("0.00"), days_past_due=int(r.get("days_past_due") or 0),
        invoices=tuple(sorted(invoices, key=lambda i: (i.due_date or date.min, i.number))),
    )


def customers_from_snapshot(snapshot, customer_ids: Iterable[str] | None = None) -> dict[str, Customer]:
    """Customers of a snapshot with their open invoices, as plain objects (batch-load, then render)."""
    ids = None if customer_ids is None else list(customer_ids)
    filt = None if ids is None else pc.field("customer_id").isin(ids)
    cust = pq.read_table(snapshot.customers_path, filters=filt).to_pylist()
    inv_rows = pq.read_table(snapshot.invoices_path, filters=filt).to_pylist() \
        if snapshot.invoices_path.exists() else []
    invoices: dict[str, list[Invoice]] = {}
    for r in inv_rows:
        invoices.setdefault(r["customer_id"], []).append(invoice_from_row(r))
    return {r["customer_id"]: customer_from_row(r, invoices.get(r["customer_id"], ())) for r in cust}


class ContextBuilder:
    """Builds contexts for one campaign (or a preview): shared parts once, the personal part per customer."""

    def __init__(self, settings: Settings, segments, signer, campaign: str, as_of: date | None = None,
                 channels: Iterable[str] | None = None):
        self.settings = settings
        self.segments = {s.name: s for s in segments.segments}
        self.treatments = dict(segments.treatments)
        self.signer = signer
        self.campaign = campaign
        self.as_of = as_of or date.today()
        self.creditor = Creditor.from_settings(settings)
        self.channels = None if channels is None else frozenset(channels)
        self._compiled: dict[str, Any] = {}

    def _messages(self, treatment: str, locale: str, context: dict[str, Any]) -> "Messages":
        return Messages(strings_for(self.settings.templates_dir, treatment, locale), context, self._compiled)

    def links(self, customer_id: str, token: str | None = None) -> dict[str, str]:
        token = token or self.signer.sign(self.campaign, customer_id)
        page = self.signer.url(token)
        return {"page": page, "pay": f"{page}/pay", "video": f"{page}/video", "letter": f"{page}/letter.pdf",
                "unsubscribe": f"{self.settings.base_url}/u/{token}"}

    def build(self, customer: Customer, segment: str, *, token: str | None = None) -> dict[str, Any]:
        seg = self.segments[segment]
        treatment = self.treatments[seg.treatment]
        loc, cur = customer.locale, customer.currency
        money = lambda amount: fmt.money(amount, cur, loc)  # noqa: E731
        day = lambda d: fmt.day(d, loc) if d else ""  # noqa: E731
        offers = offers_for(customer.balance, cur, seg.offers, self.as_of)
        due_dates = [i.due_date for i in customer.invoices if i.due_date and i.open_amount > 0]
        context = {
            "customer": {
                "id": customer.customer_id, "name": customer.name,
                "greeting_name": customer.given_name or customer.name, "email": customer.email or "",
                "locale": loc, "lang": fmt.language(loc), "dir": fmt.text_direction(loc),
                "country": customer.country, "currency": cur, "address_lines": list(customer.address_lines),
                "postal_code": customer.postal_code or "",
            },
            "balance": money(offers.balance), "balance_amount": offers.balance,
            "days_past_due": customer.days_past_due, "oldest_due": day(min(due_dates)) if due_dates else "",
            "invoices": [{
                "number": i.number, "issue_date": day(i.issue_date), "due_date": day(i.due_date),
                "amount": money(i.amount), "open_amount": money(i.open_amount),
                "days_overdue": max((self.as_of - i.due_date).days, 0) if i.due_date else 0,
            } for i in customer.invoices],
            "offers": {
                "pay_in_full": offers.pay_in_full,
                "settlement": None if offers.settlement is None else {
                    "percent": fmt.percent(offers.settlement.percent / 100, loc),
                    "discount": money(offers.settlement.discount), "pay": money(offers.settlement.pay),
                    "pay_amount": offers.settlement.pay, "deadline": day(offers.settlement.deadline)},
                "plans": [{"months": p.months, "instalment": money(p.instalment), "total": money(p.total),
                           "schedule": [{"date": day(d), "amount": money(a)} for d, a in p.schedule]}
                          for p in offers.plans],
                "promise_latest": day(offers.promise_latest) if offers.promise_latest else None,
            },
            "links": self.links(customer.customer_id, token),
            "treatment": {"name": seg.treatment, "title": treatment.title_for(loc), "tone": treatment.tone},
            "segment": {"name": seg.name, "channels": [c.value for c in seg.channels
                                                       if self.channels is None or c.value in self.channels]},
            "campaign": {"name": self.campaign},
            "creditor": {"name": self.creditor.name, "address_lines": list(self.creditor.address_lines),
                         "email": self.creditor.email, "phone": self.creditor.phone,
                         "website": self.creditor.website, "iban": self.creditor.iban, "bic": self.creditor.bic},
            "today": day(self.as_of),
        }
        context["t"] = self._messages(seg.treatment, loc, context)
        return context
