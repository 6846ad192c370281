"""Money and numbers: plain cells are cast straight to decimal128(18, 2) / int64 / float64; only the
others are looked at closely (decimal comma and thousands separators, too many decimals, too large,
not a number), and negative amounts are reasons where a negative makes no sense.

Money is never rounded silently: a cell with three decimals is a reason, not a guess. Money that a
mapping *derives* from floats is rounded half-even once, from the float's shortest decimal form.

Example: typed = convert_money(FIELDS["amount"], col, problems, Formats())
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..models import FieldSpec
from .problems import Formats, Problems, message
from .text import combine, odd_number_rows, patch_rows, rows_with_other_bytes, take_rows, to_numpy, trim

MONEY = pa.decimal128(18, 2)
NON_NEGATIVE = {"amount", "open_amount", "balance", "billed_history", "paid_history", "days_past_due",
                "broken_promises"}
PLAIN_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
COMMA_NUMBER = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"
THOUSANDS_NUMBER = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"


def normalize_numbers(col: pa.Array, formats: Formats) -> pa.Array:
    """Numbers as plain '1234.5' text, following the mapping's (or the detected) separators."""
    col = trim(col)
    decimal, thousands = formats.decimal, formats.thousands
    if decimal is None:
        if not len(col) or pc.all(pc.fill_null(pc.match_substring_regex(col, PLAIN_NUMBER), True)).as_py():
            return col
        comma = pc.sum(pc.match_substring_regex(col, r",\d{1,2}$")).as_py() or 0
        commas_ok = pc.sum(pc.match_substring_regex(col, COMMA_NUMBER)).as_py() or 0
        plain_ok = pc.sum(pc.match_substring_regex(col, PLAIN_NUMBER)).as_py() or 0
        thousands_ok = pc.sum(pc.match_substring_regex(col, THOUSANDS_NUMBER)).as_py() or 0
        if comma and commas_ok > plain_ok + thousands_ok:
            decimal, thousands = ",", "."
        else:
            decimal, thousands = ".", ","
    if thousands:
        pattern = COMMA_NUMBER if decimal == "," else THOUSANDS_NUMBER
        grouped = pc.fill_null(pc.match_substring_regex(col, pattern), False)
        if thousands in (" ", "\u00a0", "\u202f", "'"):
            grouped = pc.fill_null(pc.match_substring(col, thousands), False)
        col = pc.if_else(grouped, pc.replace_substring(col, thousands, ""), col)
    if decimal and decimal != ".":
        col = pc.replace_substring(col, decimal, ".")
    return col


SIMPLE_MONEY = r"^[+-]?\d{1,16}(\.\d{1,2})?$"


NUMBER_BYTES = b"0123456789.+-"


def _split_fast(col, pattern: str, target: pa.DataType, formats: Formats, slow, problems: Problems):
    """Cast the cells that are plain numbers directly; only the others go through ``slow`` (which
    finds their reasons). Plain cells are recognized from their bytes first, a regex only if needed."""
    if formats.decimal in (None, "."):
        try:
            return pc.cast(col, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        odd = odd_number_rows(col, 2 if target == MONEY else 0 if pa.types.is_integer(target) else None) \
            if target != pa.float64() else rows_with_other_bytes(col, NUMBER_BYTES + b"eE")
        try:
            fast = pc.cast(patch_rows(col, odd, pa.nulls(odd.size, pa.string())), target)
            simple = np.ones(len(col), dtype=bool)
            simple[odd] = False
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            simple = to_numpy(pc.fill_null(pc.match_substring_regex(col, pattern), True))
            fast = None
    else:
        simple = to_numpy(col.is_null())
        fast = None
    rest = np.flatnonzero(~simple)
    if not rest.size:
        return pc.cast(col, target) if fast is None else fast
    sub = Problems(rest.size)
    fixed = slow(take_rows(col, rest), sub)
    problems.extend(sub, rest)
    if fast is None:
        fast = pc.cast(pc.if_else(pa.array(simple), col, pa.scalar(None, pa.string())), target)
    return pc.replace_with_mask(combine(fast), pa.array(~simple), combine(fixed).cast(target))


def convert_money(spec: FieldSpec, col, problems: Problems, formats: Formats) -> pa.Array:
    def slow(col, problems):
        col = normalize_numbers(col, formats)
        plain = to_numpy(pc.fill_null(pc.match_substring_regex(col, PLAIN_NUMBER), True))
        decimals = to_numpy(pc.fill_null(pc.match_substring_regex(col, r"\.\d{3,}$"), False))
        intdigits = to_numpy(pc.fill_null(pc.match_substring_regex(col, r"^[+-]?0*\d{17,}"), False))
        bad = ~plain
        problems.add(bad, message(f"{spec.name}: not a number ", col.filter(pa.array(bad))), f"{spec.name}: not a number")
        zeros = to_numpy(pc.fill_null(pc.match_substring_regex(col, r"\.\d\d0+$"), False))
        many = plain & decimals & ~zeros
        problems.add(many, message(f"{spec.name}: more than 2 decimal places ", col.filter(pa.array(many))),
                     f"{spec.name}: more than 2 decimal places")
        big = plain & intdigits
        problems.add(big, f"{spec.name}: too large", f"{spec.name}: too large")
        keep = plain & ~many & ~big
        clean = pc.if_else(pa.array(keep), col, pa.scalar(None, pa.string()))
        clean = pc.replace_substring_regex(clean, r"(\.\d\d)0+$", r"\1")
        clean = pc.replace_substring_regex(clean, r"^([+-]?)\.", r"\10.")
        clean = pc.replace_substring_regex(clean, r"\.$", "")
        return pc.cast(clean, MONEY)

    typed = _split_fast(col, SIMPLE_MONEY, MONEY, formats, slow, problems)
    _negative(spec, typed, problems, pa.scalar(Decimal(0), MONEY))
    return typed


def _negative(spec: FieldSpec, typed, problems: Problems, zero) -> None:
    if spec.name in NON_NEGATIVE and len(typed):
        neg = to_numpy(pc.fill_null(pc.less(typed, zero), False))
        if neg.any():
            shown = pc.cast(typed.filter(pa.array(neg)), pa.string())
            problems.add(neg, pc.binary_join_element_wise(f"{spec.name}: negative (", shown, ")", ""),
                         f"{spec.name}: negative")


def convert_number(spec: FieldSpec, col, problems: Problems, formats: Formats, integer: bool) -> pa.Array:
    target = pa.int64() if integer else pa.float64()

    def slow(col, problems):
        col = normalize_numbers(col, formats)
        pattern = r"^[+-]?\d{1,18}(\.0*)?$" if integer else PLAIN_NUMBER
        ok = to_numpy(pc.fill_null(pc.match_substring_regex(col, pattern), True))
        what = "not a whole number" if integer else "not a number"
        problems.add(~ok, message(f"{spec.name}: {what} ", col.filter(pa.array(~ok))), f"{spec.name}: {what}")
        clean = pc.if_else(pa.array(ok), col, pa.scalar(None, pa.string()))
        if integer:
            clean = pc.replace_substring_regex(clean, r"\.0*$", "")
        else:
            clean = pc.replace_substring_regex(clean, r"^([+-]?)\.", r"\10.")
        return pc.cast(clean, target)

    pattern = r"^[+-]?\d{1,18}$" if integer else r"^[+-]?\d{1,15}(\.\d{1,15})?$"
    typed = _split_fast(col, pattern, target, formats, slow, problems)
    _negative(spec, typed, problems, 0)
    return typed


def money_text(values: np.ndarray) -> pa.Array:
    """Floats (from a derived expression) as money text, rounded half-even once from their shortest
    decimal form (2.675 -> 2.68), computed once per distinct value."""
    uniq, inverse = np.unique(values, return_inverse=True)
    out: list[str | None] = []
    cent = Decimal("0.01")
    for v in uniq.tolist():
        if v != v or v in (float("inf"), float("-inf")):
            out.append(None)
            continue
        try:
            out.append(str(Decimal(repr(v)).quantize(cent, rounding=ROUND_HALF_EVEN)))
        except InvalidOperation:
            out.append(None)
    return pa.array(out, pa.string()).take(pa.array(inverse.reshape(-1)))
