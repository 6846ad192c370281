"""The outputs of one ingest run: the customers table (canonical fields, typed, plus features and extra
columns), the invoices table (sorted by customer id), the rejects table (line, raw cells, reasons) and
the stats that reconcile them.

Example: customers, invoices = build_tables(run, rejected)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from ..models import FIELDS, SCHEMA
from .features import aging_bucket, cents, money, payment_ratio, tenure_months
from .parallel import parallel_map
from .text import take_rows

CUSTOMER_LEVEL = tuple(f.name for f in SCHEMA if f.level == "customer" and f.name != "customer_id")
ARROW_TYPES = {"str": pa.string(), "email": pa.string(), "phone": pa.string(), "country": pa.string(),
               "locale": pa.string(), "timezone": pa.string(), "currency": pa.string(), "bool": pa.bool_(),
               "date": pa.date32(), "money": pa.decimal128(18, 2), "int": pa.int64(), "number": pa.float64(),
               "outcome": pa.int8()}
INVOICE_SCHEMA = pa.schema([("customer_id", pa.string()), ("invoice_number", pa.string()), ("issue_date", pa.date32()),
                            ("due_date", pa.date32()), ("amount", pa.decimal128(18, 2)),
                            ("open_amount", pa.decimal128(18, 2))])


@dataclass
class IngestStats:
    """What one file gave: counts that reconcile (rows_in == accepted + rejected), what was filled or
    defaulted, the reasons by kind (most frequent first), and how long each stage took."""

    source: str
    format: str
    layout: str
    mapping_name: str | None
    as_of: date
    rows_in: int
    accepted: int
    rejected: int
    customers: int
    invoices: int
    filled_fields: dict[str, str] = field(default_factory=dict)
    filled_rows: dict[str, int] = field(default_factory=dict)
    defaulted_fields: list[str] = field(default_factory=list)
    defaulted_rows: dict[str, int] = field(default_factory=dict)
    reasons_count: dict[str, int] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)       # wall time per stage
    cpu_seconds: dict[str, float] = field(default_factory=dict)   # CPU time per stage (all threads)


def build_tables(run, rejected: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Accepted customers (one row each, sorted by id, with features) and their invoices (sorted by id).
    In the customer layout, a customer with no open invoice on its row still counts one open item when
    its balance is positive, and its largest invoice is its balance."""
    g = run.groups
    rows = g.sorted_rows()
    rows = rows[~rejected[rows]]
    if run.layout == "invoice":
        units = g.group_order()
        units = units[~run.bad_group[units]]
        ids = take_rows(g.ids, units)
        feats = {k: v[units] for k, v in run.sums.items()}
    else:
        units = rows
        ids = take_rows(run.ids, rows)
        t = run.invoice_typed
        amount = cents(t["amount"])[0][rows] if "amount" in t else run.row_balance[rows]
        feats = {"balance": run.row_balance[rows], "days_past_due": run.row_dpd[rows],
                 "invoice_count": (run.row_balance[rows] > 0).astype(np.int64), "max_invoice_amount": amount}
    customers = _customer_table(run, units, ids, feats)
    if run.layout == "customer" and not run.invoice_typed:
        invoices = INVOICE_SCHEMA.empty_table()
    else:
        invoices = _invoice_table(run, rows)
    return customers, invoices


def _customer_table(run, units: np.ndarray, ids: pa.Array, feats: dict[str, np.ndarray]) -> pa.Table:
    k = len(units)
    names = [n for n in CUSTOMER_LEVEL if n not in ("balance", "days_past_due")
             and (n != "outcome" or "outcome" in run.present)]

    def column(name: str) -> pa.Array:
        typ = ARROW_TYPES[FIELDS[name].kind]
        typed = run.cust_typed.pop(name, None)
        return take_rows(typed, units).cast(typ) if typed is not None else pa.nulls(k, typ)

    cols: dict[str, pa.Array] = {"customer_id": ids}
    cols.update(zip(names, parallel_map(column, names)))
    cols["balance"] = money(feats["balance"])
    cols["days_past_due"] = pa.array(feats["days_past_due"], pa.int64())
    cols["aging_bucket"] = aging_bucket(feats["days_past_due"])
    billed = cols["billed_history"] if "billed_history" in run.present else None
    paid = cols["paid_history"] if "paid_history" in run.present else None
    cols["payment_ratio"] = pa.array(payment_ratio(billed, paid, k), pa.float64())
    cols["tenure_months"] = pa.array(tenure_months(cols["customer_since"], run.as_of), pa.int64())
    cols["invoice_count"] = pa.array(feats["invoice_count"], pa.int64())
    cols["max_invoice_amount"] = money(feats["max_invoice_amount"])
    extras = parallel_map(lambda n: take_rows(run.cust_typed.pop(n), units).cast(pa.float64()), run.extra_names)
    cols.update(zip(run.extra_names, extras))
    return pa.table(cols)


def _invoice_table(run, rows: np.ndarray) -> pa.Table:
    def column(f: str) -> pa.Array:
        typ = INVOICE_SCHEMA.field(f).type
        if f == "customer_id":
            return take_rows(run.ids, rows)
        return take_rows(run.invoice_typed[f], rows).cast(typ) if f in run.invoice_typed else pa.nulls(len(rows), typ)

    return pa.table(dict(zip(INVOICE_SCHEMA.names, parallel_map(column, INVOICE_SCHEMA.names))), schema=INVOICE_SCHEMA)


def rejects_table(run) -> pa.Table:
    """Rejected rows as they arrived: line, every original column, and all their reasons."""
    raw = run.raw
    names = raw.table.column_names
    line_col = "line" if "line" not in names else "_line"
    reasons_col = "reasons" if "reasons" not in names else "_reasons"
    rows = run.rejected_rows
    cols = {line_col: pa.array(raw.lines[rows], pa.int64())}
    cols.update({n: take_rows(raw.table.column(n), rows) for n in names})
    cols[reasons_col] = run.problems.reasons(rows)
    table = pa.table(cols)
    if raw.bad_rows:
        width = len(names)
        bad: dict[str, list] = {line_col: [b.line for b in raw.bad_rows]}
        for i, n in enumerate(names):
            bad[n] = [b.fields[i] if i < len(b.fields) else None for b in raw.bad_rows]
        overflow = [(raw.delimiter or ",").join(b.fields[width:]) or None for b in raw.bad_rows]
        bad[reasons_col] = [b.reason for b in raw.bad_rows]
        extra = pa.table({k: pa.array(v, table.schema.field(k).type) for k, v in bad.items()})
        if any(overflow):
            table = table.append_column("extra_fields", pa.nulls(table.num_rows, pa.string()))
            extra = extra.append_column("extra_fields", pa.array(overflow, pa.string()))
        extra = extra.select(table.column_names)
        table = pa.concat_tables([table, extra]).sort_by(line_col)
    return table


def make_stats(run, customers: int, invoices: int) -> IngestStats:
    counts = run.problems.counts()
    for b in run.raw.bad_rows:
        key = "row does not fit the header" if "field" in b.reason or "beyond" in b.reason else b.reason.split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    rows_in = run.rows_in
    rejected = int(run.rejected_rows.size) + len(run.raw.bad_rows)
    assert rows_in == run.accepted + rejected, (rows_in, run.accepted, rejected)
    return IngestStats(
        source=str(run.path), format=run.raw.format, layout=run.layout, mapping_name=run.mapping.name,
        as_of=run.as_of, rows_in=rows_in, accepted=run.accepted, rejected=rejected, customers=customers,
        invoices=invoices, filled_fields=dict(run.mapped.filled), filled_rows=dict(run.mapped.filled_rows),
        defaulted_fields=run.defaulted_absent + list(run.defaulted_rows), defaulted_rows=dict(run.defaulted_rows),
        reasons_count=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        extras=list(run.extra_names), notes=run.notes, encoding=run.raw.encoding,
        delimiter=run.raw.delimiter)
