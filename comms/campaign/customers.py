"""A snapshot's customers by id for the chunks of a campaign, without decoding Parquet for every chunk.

A chunk needs 4 to 500 customers of a snapshot that may hold millions. The snapshot's Parquet files are one
row group each, so reading them with a filter decodes the whole file every time: about 30 ms per chunk at
10,000 customers, seconds at a million. Instead, the first process that needs a snapshot converts it once
into Arrow IPC files sorted by customer id (under ``<home>/cache/snapshots``; each customer row carries the
start and length of its run of invoices), and every process memory-maps them: the operating system shares
the pages between processes and reads them on demand. A chunk's customers (nearly consecutive ids: jobs are
planned in customer order) are found by binary search, one slice and one filter; their invoices by one take.

The Customer objects are made by :func:`comms.render.context.customer_from_row`, exactly as
:func:`comms.render.context.customers_from_snapshot` makes them (a test checks that both agree).
"""

from __future__ import annotations

import fcntl
import os
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import Settings
from ..models import Customer
from ..render.context import customer_from_row, invoice_from_row

START, LENGTH = "_invoices_start", "_invoices_length"
KEEP = 2  # snapshots kept open per process (a campaign uses one)


class SnapshotCustomers:
    """The customers of one snapshot, memory-mapped from its sorted Arrow copy."""

    def __init__(self, settings: Settings, snapshot):
        folder = Path(settings.home) / "cache" / "snapshots"
        stem = f"{snapshot.id}-{snapshot.data_sha256[:16]}"
        customers, invoices = folder / f"{stem}.customers.arrow", folder / f"{stem}.invoices.arrow"
        if not (customers.exists() and invoices.exists()):
            _build_once(snapshot, folder, customers, invoices)
        self._customers = pa.ipc.open_file(pa.memory_map(str(customers))).read_all().combine_chunks()
        self._invoices = pa.ipc.open_file(pa.memory_map(str(invoices))).read_all().combine_chunks()
        self._ids = self._customers.column("customer_id").combine_chunks()

    def get(self, customer_ids) -> dict[str, Customer]:
        """The customers among ``customer_ids`` that the snapshot holds, by id."""
        wanted = sorted(set(customer_ids))
        if not wanted or not len(self._ids):
            return {}
        key = pa.StringScalar.as_py
        lo = bisect_left(self._ids, wanted[0], key=key)
        hi = bisect_right(self._ids, wanted[-1], lo=lo, key=key)
        part = self._customers.slice(lo, hi - lo)  # the wanted ids and those between them
        part = part.filter(pc.is_in(part.column("customer_id"), value_set=pa.array(wanted, pa.string())))
        rows = part.to_pylist()
        lengths = [r.pop(LENGTH) for r in rows]
        starts = [r.pop(START) for r in rows]
        taken = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)] or [np.zeros(0, np.int64)])
        invoices = [invoice_from_row(v) for v in self._invoices.take(taken).to_pylist()]
        out, at = {}, 0
        for row, n in zip(rows, lengths):
            out[row["customer_id"]] = customer_from_row(row, invoices[at:at + n])
            at += n
        return out


def _build_once(snapshot, folder: Path, customers: Path, invoices: Path) -> None:
    """Write the sorted copies, one process at a time (the others wait, then find them written)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if customers.exists() and invoices.exists():
            return
        cust, inv = sorted_tables(snapshot)
        for table, path in ((inv, invoices), (cust, customers)):  # customers last: its presence means both
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        _forget_old(folder)


def _forget_old(folder: Path, keep: int = 3) -> None:
    """Delete the copies of all but the newest few snapshots (a process still reading one keeps its pages)."""
    files = [(int(f.name.split("-", 1)[0]), f) for f in folder.glob("*.arrow") if f.name.split("-", 1)[0].isdigit()]
    newest = sorted({n for n, _ in files})[-keep:]
    for n, f in files:
        if n not in newest:
            f.unlink(missing_ok=True)


def sorted_tables(snapshot) -> tuple[pa.Table, pa.Table]:
    """(customers sorted by id with the start and length of their invoices, invoices sorted by customer)."""
    cust = pq.read_table(snapshot.customers_path)
    cust = cust.take(pc.sort_indices(cust, sort_keys=[("customer_id", "ascending")]))
    ids = cust.column("customer_id")
    if snapshot.invoices_path.exists():
        inv = pq.read_table(snapshot.invoices_path)
        inv = inv.filter(pc.is_in(inv.column("customer_id"), value_set=ids))
        inv = inv.take(pc.sort_indices(inv, sort_keys=[("customer_id", "ascending")]))
    else:
        inv = pa.table({"customer_id": pa.array([], pa.string())})
    start = np.zeros(len(ids), np.int64)
    length = np.zeros(len(ids), np.int64)
    if inv.num_rows:
        runs = pc.run_end_encode(inv.column("customer_id").combine_chunks())
        ends = runs.run_ends.to_numpy().astype(np.int64)
        at = pc.index_in(ids, value_set=runs.values).to_numpy(zero_copy_only=False)
        has = ~np.isnan(at)
        pos = at[has].astype(np.int64)
        length[has] = ends[pos] - np.concatenate([[0], ends[:-1]])[pos]
        start[has] = ends[pos] - length[has]
    cust = cust.append_column(START, pa.array(start)).append_column(LENGTH, pa.array(length))
    return cust.combine_chunks(), inv.combine_chunks()


_open: OrderedDict[tuple, SnapshotCustomers] = OrderedDict()


def snapshot_customers(settings: Settings, snapshot) -> SnapshotCustomers:
    """This process's reader of a snapshot's customers (opened once, the last few kept)."""
    key = (str(settings.home), snapshot.id, snapshot.data_sha256)
    reader = _open.get(key)
    if reader is None:
        reader = _open[key] = SnapshotCustomers(settings, snapshot)
        while len(_open) > KEEP:
            _open.popitem(last=False)
    else:
        _open.move_to_end(key)
    return reader
