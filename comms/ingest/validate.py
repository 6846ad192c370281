"""Validation: text columns become typed columns, and every problem becomes a reason on its row.

:func:`convert` types one canonical field. Where a column has few distinct values (countries, locales,
zones, currencies, yes/no flags, dates) the check runs on the distinct values only and is mapped back, so
its cost scales with what is distinct, not with the number of rows; text checks (control characters,
lengths) read the raw bytes; e-mail and phone use one regex each. Dates live in :mod:`.dates`, money and
numbers in :mod:`.amounts`, the reasons list in :mod:`.problems`.

Example: problems = Problems(len(col)); amounts = convert(FIELDS["amount"], col, problems, Formats())
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..models import FieldSpec
from .amounts import convert_money, convert_number
from .dates import convert_date
from .problems import Formats, Problems, message
from .text import codes_of, combine, control_mask, take_rows, to_numpy

NOT_COUNTRIES = {"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB"}
TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0", "x")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
EMAIL_ASCII_RE = (r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                  r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# Internationalized addresses (RFC 6531): any non-ASCII character counts as a letter. Spelled as a byte
# range instead of \p{L}, which makes RE2 build a huge automaton (a thousand times slower).
_U = r"\x{80}-\x{10FFFF}"
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{_U}-]+"
_LABEL = rf"[A-Za-z0-9{_U}]([A-Za-z0-9{_U}-]{{0,61}}[A-Za-z0-9{_U}])?"
EMAIL_RE = rf"^{_ATOM}(\.{_ATOM})*@{_LABEL}(\.{_LABEL})+$"
PHONE_RE = r"^\+?([ ()./-]*[0-9]){5,20}[ ()./-]*$"


def _by_unique(col: pa.Array, check):
    """Run ``check(distinct values) -> (typed, bad mask, messages)`` on distinct values; map back to rows."""
    enc = combine(col.dictionary_encode())
    typed_d, bad_d, msg_d = check(enc.dictionary)
    indices = enc.indices
    typed = typed_d.take(indices)
    codes = codes_of(indices)
    bad_rows = np.flatnonzero(np.append(bad_d, False)[codes]) if bad_d.any() else np.zeros(0, np.int64)
    msgs = msg_d.take(pa.array(codes[bad_rows])) if bad_rows.size and msg_d is not None else None
    return typed, bad_rows, msgs


# --- kinds --------------------------------------------------------------------------------------------

def convert(spec: FieldSpec, col: pa.Array, problems: Problems, formats: Formats) -> pa.Array:
    """The typed column for ``spec`` (cells already trimmed, see text.trim); every bad cell adds its
    reason to ``problems``."""
    kind = spec.kind
    if kind in ("str", "email", "phone"):
        return _text(spec, col, problems)
    if kind in ("country", "locale", "timezone", "currency"):
        return _code(spec, col, problems)
    if kind in ("bool", "outcome"):
        return _flag(spec, col, problems)
    if kind == "date":
        return convert_date(spec, col, problems, formats.date_format)
    if kind == "money":
        return convert_money(spec, col, problems, formats)
    if kind in ("int", "number"):
        return convert_number(spec, col, problems, formats, integer=kind == "int")
    raise AssertionError(kind)


def _text(spec: FieldSpec, col: pa.Array, problems: Problems) -> pa.Array:
    ctrl = control_mask(col)
    problems.add(ctrl, f"{spec.name}: control character", f"{spec.name}: control character")
    lengths = to_numpy(pc.fill_null(pc.utf8_length(col), 0))
    long = np.flatnonzero(lengths > spec.max_length)
    if long.size:
        msgs = pa.array([f"{spec.name}: too long ({n} > {spec.max_length})" for n in lengths[long]])
        problems.add(long, msgs, f"{spec.name}: too long")
    if spec.kind in ("email", "phone") and col.null_count < len(col):
        pattern = EMAIL_ASCII_RE if spec.kind == "email" else PHONE_RE
        ok = to_numpy(pc.fill_null(pc.match_substring_regex(col, pattern), True))
        if spec.kind == "email" and not ok.all():  # international addresses: the slow Unicode check, on few
            other = np.flatnonzero(~ok)
            ok[other] = to_numpy(pc.fill_null(pc.match_substring_regex(take_rows(col, other), EMAIL_RE), True))
        bad = np.flatnonzero(~ok & ~ctrl)
        if bad.size:
            what = "not a valid address" if spec.kind == "email" else "not a phone number"
            problems.add(bad, message(f"{spec.name}: {what} ", take_rows(col, bad)), f"{spec.name}: {what}")
    return col


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    from babel import Locale
    return frozenset(k for k in Locale("en").territories if len(k) == 2 and k.isalpha()) - NOT_COUNTRIES


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    from babel.numbers import list_currencies
    return frozenset(list_currencies())


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


@lru_cache(maxsize=4096)
def normalize_locale(value: str) -> str | None:
    """'it_it' -> 'it-IT'; None when Babel does not know the locale (or the region is not a country)."""
    from babel import Locale, UnknownLocaleError
    parts = value.replace("_", "-").split("-")
    if not 1 <= len(parts) <= 3 or not all(p.isalnum() for p in parts):
        return None
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 4 and p.isalpha():
            out.append(p.title())
        elif (len(p) == 2 and p.isalpha() and p.upper() in _countries()) or (len(p) == 3 and p.isdigit()):
            out.append(p.upper())
        else:
            return None
    text = "-".join(out)
    try:
        Locale.parse(text, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return text


def check_code(kind: str, values: list[str | None]) -> list[str | None]:
    """Normalized code for each value (None = unknown); also used to check a mapping's constants."""
    if kind == "country":
        return [v.upper() if v and v.upper() in _countries() else None for v in values]
    if kind == "currency":
        return [v.upper() if v and v.upper() in _currencies() else None for v in values]
    if kind == "timezone":
        zones = _zones()
        return [zones.get(v.lower()) if v else None for v in values]
    return [normalize_locale(v) if v else None for v in values]


def _code(spec: FieldSpec, col: pa.Array, problems: Problems) -> pa.Array:
    what = {"country": "unknown ISO 3166 country", "currency": "unknown ISO 4217 code",
            "timezone": "unknown", "locale": "unknown"}[spec.kind]

    def check(values: pa.Array):
        raw = values.to_pylist()
        normal = check_code(spec.kind, raw)
        bad = np.array([n is None for n in normal], dtype=bool)
        return pa.array(normal, pa.string()), bad, message(f"{spec.name}: {what} ", values)

    typed, bad_rows, msgs = _by_unique(col, check)
    problems.add(bad_rows, msgs, f"{spec.name}: {what}")
    return typed


def _flag(spec: FieldSpec, col: pa.Array, problems: Problems) -> pa.Array:
    out_type = pa.int8() if spec.kind == "outcome" else pa.bool_()
    what = "not 0 or 1" if spec.kind == "outcome" else "not a yes/no value"

    def check(values: pa.Array):
        low = pc.utf8_lower(values)
        yes, no = pc.is_in(low, pa.array(TRUE_WORDS)), pc.is_in(low, pa.array(FALSE_WORDS))
        bad = ~np.asarray(pc.or_(yes, no))
        typed = pc.if_else(yes, True, pc.if_else(no, False, pa.scalar(None, pa.bool_())))
        return typed.cast(out_type), bad, message(f"{spec.name}: {what} ", values)

    typed, bad_rows, msgs = _by_unique(col, check)
    problems.add(bad_rows, msgs, f"{spec.name}: {what}")
    return typed


