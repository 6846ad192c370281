"""Sample customers for previews and lint: one per shipped locale, plus hostile input.

Templates must be checkable before any portfolio is imported, in every language the product speaks, and
against the names that break naive templates (markup, quotes, ampersands, spreadsheet formulas, Jinja).
These customers are fixed, so a lint result never depends on the data of the day.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from ..models import Customer, Invoice

LOCALES = ("en-US", "it-IT", "pl-PL", "ru-RU", "he-IL", "zh-CN")

_PEOPLE = {
    "en-US": ("S-EN", "Jordan Miller", "Jordan", "USD", "US", "America/Chicago",
              ("742 Evergreen Terrace", "Springfield, IL 62704")),
    "it-IT": ("S-IT", "Giulia Bianchi", "Giulia", "EUR", "IT", "Europe/Rome",
              ("Via Giuseppe Verdi 12", "20121 Milano MI")),
    "pl-PL": ("S-PL", "Łukasz Wiśniewski", "Łukasz", "PLN", "PL", "Europe/Warsaw",
              ("ul. Świętokrzyska 18", "00-052 Warszawa")),
    "ru-RU": ("S-RU", "Анна Смирнова", "Анна", "RUB", "RU", "Europe/Moscow",
              ("ул. Тверская, д. 7, кв. 15", "125009 Москва")),
    "he-IL": ("S-HE", "שרה כהן", "שרה", "ILS", "IL", "Asia/Jerusalem",
              ("רחוב הרצל 25", "6511101 תל אביב-יפו")),
    "zh-CN": ("S-ZH", "王秀英", "秀英", "CNY", "CN", "Asia/Shanghai",
              ("朝阳区建国路88号", "100022 北京市")),
}
HOSTILE_NAME = "<script>alert(1)</script> O'Brien & Sons {{ 7*7 }} =HYPERLINK(\"http://x\")"


def _invoices(currency: str, as_of: date, n: int) -> tuple[Invoice, ...]:
    scale = {"RUB": 40, "CNY": 7, "PLN": 4, "ILS": 4}.get(currency, 1)
    out = []
    for i in range(n):
        amount = (Decimal("120.50") + Decimal(i * 37)) * scale
        due = as_of - timedelta(days=75 - i * 20)
        out.append(Invoice(number=f"INV-2026-{1001 + i}", issue_date=due - timedelta(days=30), due_date=due,
                           amount=amount, open_amount=amount))
    return tuple(out)


def _customer(cid: str, name: str, given: str, currency: str, country: str, tz: str, address, locale: str,
              as_of: date, invoices: int = 3) -> Customer:
    inv = _invoices(currency, as_of, invoices)
    overdue = [i.due_date for i in inv if i.due_date < as_of]
    return Customer(customer_id=cid, name=name, given_name=given, country=country, locale=locale, timezone=tz,
                    currency=currency, email=f"{cid.lower()}@example.com", phone=None, address_lines=address,
                    consents={"email": True, "sms": False, "letter": True},
                    balance=sum((i.open_amount for i in inv), Decimal(0)),
                    days_past_due=(as_of - min(overdue)).days if overdue else 0, invoices=inv)


def sample_customer(locale: str = "en-US", as_of: date | None = None, invoices: int = 3) -> Customer:
    """The fixed sample customer of a locale (its language's, for a locale not shipped: en-US's)."""
    as_of = as_of or date.today()
    key = locale if locale in _PEOPLE else next((k for k in _PEOPLE if k.split("-")[0] == locale.split("-")[0]),
                                                "en-US")
    cid, name, given, currency, country, tz, address = _PEOPLE[key]
    return _customer(cid, name, given, currency, country, tz, address, key, as_of, invoices)


def hostile_customer(as_of: date | None = None) -> Customer:
    """A customer whose name is every injection at once; every channel must show it as plain text."""
    as_of = as_of or date.today()
    return _customer("S-HOSTILE", HOSTILE_NAME, HOSTILE_NAME, "USD", "US", "America/New_York",
                     ("1 <b>Main</b> St & Co", "New York, NY 10001"), "en-US", as_of)


def sample_customers(as_of: date | None = None) -> list[Customer]:
    return [sample_customer(loc, as_of) for loc in LOCALES] + [hostile_customer(as_of)]
