"""Synthetic customer-feature tables for tests and benchmarks of scoring and segmentation.

They have the columns a snapshot's customers.parquet has after ingestion (canonical fields plus derived
features), built with numpy in one pass so a million rows take about a second. The optional outcome is
drawn from a known logistic model of lateness, payment history and broken promises, so a trained model
has something real to learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..models import AGING_BUCKETS, AGING_EDGES

LOCALES = (("en-GB", "GB", "Europe/London", "GBP"), ("it-IT", "IT", "Europe/Rome", "EUR"),
           ("pl-PL", "PL", "Europe/Warsaw", "PLN"), ("he-IL", "IL", "Asia/Jerusalem", "ILS"))


def synthetic_table(n: int, seed: int = 7, outcome: bool = False, currency: str | None = "EUR") -> pa.Table:
    """``n`` customers as an Arrow table (money as decimal128(18, 2)).

    Example: synthetic_table(1000, outcome=True).to_pandas()
    """
    rng = np.random.default_rng(seed)
    ids = pa.array(np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7)))
    loc = rng.integers(0, len(LOCALES), n)
    pick = lambda i: np.asarray([row[i] for row in LOCALES], dtype=object)[loc]  # noqa: E731
    dpd = np.where(rng.random(n) < 0.35, 0, rng.gamma(1.3, 55, n).astype(np.int64))
    ratio = np.clip(rng.beta(4, 1.6, n) - dpd / 900, 0, 1).round(4)
    promises = rng.poisson(np.where(dpd > 60, 1.2, 0.2), n)
    invoices = 1 + rng.poisson(1.5, n)
    cents = (rng.lognormal(6.3, 1.1, n) * 100).astype(np.int64) + 100
    max_cents = np.minimum(cents, (cents / invoices * 1.5).astype(np.int64) + 1)
    tenure = rng.integers(0, 180, n)
    dispute = rng.random(n) < 0.03
    bucket = np.asarray(AGING_BUCKETS, dtype=object)[np.searchsorted(AGING_EDGES, dpd, side="left")]
    billed_cents = cents * 4 + 10_000
    cols = {
        "customer_id": ids,
        "name": pa.array(np.char.add("Customer ", np.arange(n).astype(str))),
        "email": pa.array(np.char.add(np.char.add("c", np.arange(n).astype(str)), "@example.com")),
        "country": pa.array(pick(1), pa.string()),
        "locale": pa.array(pick(0), pa.string()),
        "timezone": pa.array(pick(2), pa.string()),
        "currency": pa.array(pick(3) if currency is None else np.full(n, currency, dtype=object), pa.string()),
        "consent_email": pa.array(np.ones(n, dtype=bool)),
        "consent_sms": pa.array(np.zeros(n, dtype=bool)),
        "consent_letter": pa.array(np.ones(n, dtype=bool)),
        "do_not_contact": pa.array(rng.random(n) < 0.01),
        "dispute": pa.array(dispute),
        "broken_promises": pa.array(promises.astype(np.int32)),
        "billed_history": _cents_to_decimal(billed_cents),
        "paid_history": _cents_to_decimal((billed_cents * ratio).astype(np.int64)),
        "balance": _cents_to_decimal(cents),
        "days_past_due": pa.array(dpd.astype(np.int32)),
        "aging_bucket": pa.array(bucket, pa.string()),
        "payment_ratio": pa.array(ratio),
        "customer_since": pa.array(np.datetime64("2026-01-01") - (tenure * 30.44).astype("timedelta64[D]"),
                                   pa.date32()),
        "tenure_months": pa.array(tenure.astype(np.int32)),
        "invoice_count": pa.array(invoices.astype(np.int32)),
        "max_invoice_amount": _cents_to_decimal(max_cents),
    }
    if outcome:
        logit = -2.2 + 0.018 * dpd + 2.5 * (1 - ratio) + 0.6 * promises - 0.004 * tenure
        cols["outcome"] = pa.array((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8))
    return pa.table(cols)


def _cents_to_decimal(cents: np.ndarray) -> pa.Array:
    """Exact integer cents to decimal128(18, 2) without Python Decimal objects (16-byte little-endian)."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words.tobytes())])


def synthetic_features(n: int, seed: int = 7, outcome: bool = False) -> pd.DataFrame:
    """The same as a pandas frame, as load_customers returns it (Decimal objects for money)."""
    return synthetic_table(n, seed, outcome).to_pandas()


def blobs(n_per: int = 300, seed: int = 3) -> pd.DataFrame:
    """Three well separated groups in (balance, days_past_due, payment_ratio) for clustering tests."""
    rng = np.random.default_rng(seed)
    centers = [(200.0, 5.0, 0.95), (5000.0, 60.0, 0.5), (20000.0, 200.0, 0.1)]
    scale = [(50.0, 2.0, 0.02), (400.0, 5.0, 0.03), (900.0, 10.0, 0.02)]
    parts = [rng.normal(c, s, (n_per, 3)) for c, s in zip(centers, scale)]
    data = np.vstack(parts)
    return pd.DataFrame({"balance": data[:, 0], "days_past_due": data[:, 1], "payment_ratio": data[:, 2]})


def save_synthetic_snapshot(store, table: pa.Table):
    """Record ``table`` as a snapshot with no invoices, as ingestion would (tests and benchmarks)."""
    from datetime import date

    from ..store.snapshots import save_snapshot
    invoices = pa.table({"customer_id": pa.array([], pa.string())})
    n = table.num_rows
    return save_snapshot(store, table, invoices, as_of=date.today(), source_name="synthetic", source_sha256="0" * 64,
                         mapping_name=None, layout="customer", rows_in=n, rows_accepted=n, rows_rejected=0,
                         filled_fields={}, defaulted_fields=[])
