"""Amounts, dates and numbers as the customer's locale writes them (Babel, CLDR pinned by the Babel pin).

Money is rounded once, here, to the currency's digits with ROUND_HALF_UP (commercial rounding; Babel's own
rounding is half-to-even), then formatted without further rounding. Output keeps CLDR's non-breaking
spaces (U+00A0, U+202F) and, for Hebrew, its right-to-left marks: templates must not strip them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision

RTL_LANGUAGES = frozenset({"he", "ar", "fa", "ur", "yi"})


@lru_cache(maxsize=256)
def locale_for(tag: str) -> Locale:
    """'he-IL' or 'he_IL' -> Locale; unknown tags raise ValueError (ingest has rejected those already)."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"unknown locale {tag!r}") from exc


@lru_cache(maxsize=64)
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round once, to the currency's minor unit (2 for EUR, 0 for JPY), half up."""
    return Decimal(amount).quantize(_quantum(currency), rounding=ROUND_HALF_UP)


@lru_cache(maxsize=65536)
def money(amount: Decimal | int | str, currency: str, locale: str) -> str:
    """'1.234,50 €' for it-IT, '$1,234.50' for en-US, '¥1,234.50' for zh-CN."""
    value = round_money(amount, currency)
    return format_currency(value, currency, locale=locale_for(locale), currency_digits=True,
                           decimal_quantization=True)


def number(value: Decimal | int | float, locale: str, digits: int | None = None) -> str:
    if digits is not None:
        value = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return format_decimal(value, locale=locale_for(locale))


def percent(value: Decimal | float, locale: str) -> str:
    """0.1 -> '10%' (en), '10 %' (it, with a non-breaking space)."""
    return format_percent(value, locale=locale_for(locale))


@lru_cache(maxsize=16384)
def day(value: date | datetime, locale: str, style: str = "long") -> str:
    """'March 5, 2026', '5 marzo 2026', '2026年3月5日'."""
    if isinstance(value, datetime):
        value = value.date()
    return _format_date(value, format=style, locale=locale_for(locale))


def text_direction(locale: str) -> str:
    """'rtl' for Hebrew (and other right-to-left scripts), else 'ltr'."""
    return "rtl" if locale_for(locale).language in RTL_LANGUAGES else "ltr"


def language(locale: str) -> str:
    """The BCP 47 language tag for the lang attribute: 'he-IL' -> 'he-IL', 'zh_CN' -> 'zh-CN'."""
    loc = locale_for(locale)
    return f"{loc.language}-{loc.territory}" if loc.territory else loc.language
