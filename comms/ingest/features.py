"""The derived features every later stage reads: balance, days past due, aging bucket, payment ratio,
tenure, open invoice count, largest invoice.

Money is summed as integer cents (the decimal128 buffers read as int64), so balances are exact and fast;
per-customer sums are ``reduceat`` over rows sorted by customer (see :mod:`.groups`).

Example: sums = invoice_sums(rows, owner, n, open_cents, amount_cents, due_days, due_valid, date(2025, 6, 30))
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..models import AGING_BUCKETS, AGING_EDGES
from .text import chunks, to_numpy

MONEY = pa.decimal128(18, 2)
NO_DATE = np.iinfo(np.int64).max


def _cents(arr: pa.Array) -> np.ndarray:
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset * 2:(arr.offset + len(arr)) * 2]
    return words[0::2]


def cents(arr) -> tuple[np.ndarray, np.ndarray]:
    """(int64 cents, valid mask) of a decimal128(18, 2) column, read straight from its buffers."""
    if not len(arr):
        return np.zeros(0, np.int64), np.zeros(0, bool)
    parts = [_cents(c) for c in chunks(arr) if len(c)]
    low = np.concatenate(parts) if len(parts) != 1 else parts[0].copy()
    valid = to_numpy(arr.is_valid()) if arr.null_count else np.ones(len(arr), bool)
    low[~valid] = 0
    return low, valid


def money(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """int64 cents -> decimal128(18, 2) without Python objects."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    words = np.empty(values.size * 2, dtype=np.int64)
    words[0::2] = values
    words[1::2] = values >> 63
    validity = None
    null_count = 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        null_count = int((~valid).sum())
    return pa.Array.from_buffers(MONEY, values.size, [validity, pa.py_buffer(words.tobytes())], null_count)


def day_numbers(arr) -> tuple[np.ndarray, np.ndarray]:
    """(days since 1970 as int64, valid mask) of a date32 column."""
    valid = to_numpy(arr.is_valid()) if arr.null_count else np.ones(len(arr), bool)
    days = to_numpy(pc.fill_null(arr.cast(pa.int32()), 0)).astype(np.int64)
    return days, valid


def aging_bucket(days_past_due: np.ndarray) -> pa.Array:
    index = np.searchsorted(np.asarray(AGING_EDGES), days_past_due, side="left")
    return pa.array(list(AGING_BUCKETS), pa.string()).take(pa.array(index.astype(np.int64)))


def tenure_months(since: pa.Array, as_of: date) -> np.ndarray:
    days, valid = day_numbers(since)
    d = days.astype("datetime64[D]")
    months = d.astype("datetime64[M]").astype(np.int64)
    day_of_month = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    now = (as_of.year - 1970) * 12 + as_of.month - 1
    out = now - months - (as_of.day < day_of_month)
    return np.where(valid, np.clip(out, 0, None), 0).astype(np.int64)


def payment_ratio(billed: pa.Array | None, paid: pa.Array | None, n: int) -> np.ndarray:
    """paid / billed in 0..1; 1.0 when there is no history to judge by."""
    if billed is None or paid is None:
        return np.ones(n)
    b, bv = cents(billed)
    p, pv = cents(paid)
    known = bv & pv & (b > 0)
    ratio = np.ones(n)
    ratio[known] = np.clip(p[known] / b[known], 0.0, 1.0)
    return ratio


def invoice_sums(rows: np.ndarray | None, starts: np.ndarray, open_cents: np.ndarray, amount_cents: np.ndarray,
                 due_days: np.ndarray, due_valid: np.ndarray, as_of: date) -> dict[str, np.ndarray]:
    """Per-customer balance, days past due, open invoice count and largest invoice. ``rows`` lists the
    invoice rows sorted by customer (None: the file already is), ``starts`` where each customer begins."""
    if not starts.size:
        return {k: np.zeros(0, np.int64) for k in ("balance", "days_past_due", "invoice_count", "max_invoice_amount")}
    o = open_cents if rows is None else open_cents[rows]
    is_open = o > 0
    due = due_days if rows is None else due_days[rows]
    valid = due_valid if rows is None else due_valid[rows]
    oldest = np.minimum.reduceat(np.where(is_open & valid, due, NO_DATE), starts)
    today = (as_of - date(1970, 1, 1)).days
    dpd = np.where(oldest == NO_DATE, 0, np.clip(today - oldest, 0, None))
    amounts = amount_cents if rows is None else amount_cents[rows]
    return {
        "balance": np.add.reduceat(o, starts),
        "days_past_due": dpd.astype(np.int64),
        "invoice_count": np.add.reduceat(is_open.astype(np.int64), starts),
        "max_invoice_amount": np.maximum.reduceat(amounts, starts),
    }
