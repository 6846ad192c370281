"""The customers the site can show, found by id in memory: one index per snapshot, built once per process.

Reading Parquet per request would cost milliseconds; instead each snapshot's customers and invoices are
read once (lazily, or at start-up), invoices sorted by customer, and a dict maps a customer id to its row and
its run of invoices. A request then slices one row (microseconds) and turns it into a
:class:`comms.models.Customer` exactly as :func:`comms.render.context.customers_from_snapshot` does (a test
checks that both agree). Customers asked for a second time are kept, up to a bound, for their next views (a
first view keeps nothing: most customers open their link once). The segment comes from the newest segment
run of that snapshot (checked again every few seconds, so a new ``comms segment`` is picked up without a
restart).

Which snapshot holds a customer comes from the ``customers`` table (the newest import that had them), read
with the customer's state in the same request; the index itself never decides that.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import StoreError
from ..models import Customer
from ..render.context import customer_from_row, invoice_from_row
from ..store import Store
from ..store.snapshots import Snapshot, get_segment_run, get_snapshot
from .cache import SeenBefore

CUSTOMER_COLUMNS = ["customer_id", "name", "given_name", "email", "phone", "address_line1", "address_line2",
                    "postal_code", "city", "region", "country", "locale", "timezone", "currency",
                    "consent_email", "consent_sms", "consent_letter", "do_not_contact", "dispute", "balance",
                    "days_past_due"]
INVOICE_COLUMNS = ["customer_id", "invoice_number", "issue_date", "due_date", "amount", "open_amount"]
RUN_RECHECK_SECONDS = 5.0


class SnapshotIndex:
    """One snapshot's customers and invoices, by customer id."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot
        names = set(pq.read_schema(snapshot.customers_path).names)
        self._customers = pq.read_table(snapshot.customers_path,
                                        columns=[c for c in CUSTOMER_COLUMNS if c in names]).combine_chunks()
        self._row = {cid: i for i, cid in enumerate(self._customers.column("customer_id").to_pylist())}
        self._columns = [(name, self._customers.column(name).chunk(0) if self._customers.num_rows else None)
                         for name in self._customers.column_names]
        self._invoices, self._runs = self._load_invoices(snapshot)

    @staticmethod
    def _load_invoices(snapshot: Snapshot) -> tuple[pa.Table | None, dict[str, tuple[int, int]]]:
        if not snapshot.invoices_path.exists():
            return None, {}
        names = set(pq.read_schema(snapshot.invoices_path).names)
        inv = pq.read_table(snapshot.invoices_path, columns=[c for c in INVOICE_COLUMNS if c in names])
        if inv.num_rows == 0:
            return None, {}
        inv = inv.take(pc.sort_indices(inv, sort_keys=[("customer_id", "ascending")])).combine_chunks()
        runs = pc.run_end_encode(inv.column("customer_id").combine_chunks())
        ends = runs.run_ends.to_pylist()
        starts = [0] + ends[:-1]
        return inv, dict(zip(runs.values.to_pylist(), zip(starts, ends)))

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self._row

    def __len__(self) -> int:
        return len(self._row)

    def customer(self, customer_id: str) -> Customer | None:
        i = self._row.get(customer_id)
        if i is None:
            return None
        r = {name: column[i].as_py() for name, column in self._columns}
        span = self._runs.get(customer_id)
        invoices = [] if span is None or self._invoices is None else [
            invoice_from_row(v) for v in self._invoices.slice(span[0], span[1] - span[0]).to_pylist()]
        return customer_from_row({**r, "customer_id": customer_id}, invoices)


class Portfolio:
    """Indexes of the snapshots customers live in, plus their segment assignments; thread-safe, bounded."""

    def __init__(self, store: Store, *, keep: int = 2, cache_customers: int = 20_000):
        self.store = store
        self.keep = keep
        self._indexes: OrderedDict[int, SnapshotIndex] = OrderedDict()
        self._segments: dict[int, tuple[float, int | None, dict[str, str]]] = {}
        self._customers: OrderedDict[tuple[int, str], Customer] = OrderedDict()
        self._cache_customers = cache_customers
        self._seen = SeenBefore()
        self._lock = threading.RLock()

    def index(self, snapshot_id: int) -> SnapshotIndex:
        with self._lock:
            idx = self._indexes.get(snapshot_id)
            if idx is None:
                idx = self._indexes[snapshot_id] = SnapshotIndex(get_snapshot(self.store, snapshot_id))
                while len(self._indexes) > self.keep:
                    old, _ = self._indexes.popitem(last=False)
                    self._segments.pop(old, None)
            else:
                self._indexes.move_to_end(snapshot_id)
            return idx

    def warm(self) -> int:
        """Load the newest snapshot and its segments now (at start-up); returns its customer count."""
        try:
            snap = get_snapshot(self.store)
        except StoreError:
            return 0
        self.segments(snap.id)
        return len(self.index(snap.id))

    def customer(self, snapshot_id: int, customer_id: str) -> Customer | None:
        key = (snapshot_id, customer_id)
        with self._lock:
            found = self._customers.get(key)
            if found is not None:
                self._customers.move_to_end(key)
                return found
        found = self.index(snapshot_id).customer(customer_id)
        if found is not None:
            with self._lock:
                if not self._seen(key):
                    return found
                self._customers[key] = found
                if len(self._customers) > self._cache_customers:
                    self._customers.popitem(last=False)
        return found

    def segments(self, snapshot_id: int) -> dict[str, str]:
        """customer id -> segment name from the newest segment run of the snapshot ({} if none)."""
        now = time.monotonic()
        with self._lock:
            cached = self._segments.get(snapshot_id)
            if cached is not None and now - cached[0] < RUN_RECHECK_SECONDS:
                return cached[2]
        try:
            run = get_segment_run(self.store, snapshot_id=snapshot_id)
        except StoreError:
            run = None
        run_id = run.id if run else None
        if cached is not None and cached[1] == run_id:
            mapping = cached[2]
        elif run is None:
            mapping = {}
        else:
            table = pq.read_table(run.data_path, columns=["customer_id", "segment"])
            mapping = dict(zip(table.column("customer_id").to_pylist(), table.column("segment").to_pylist()))
        with self._lock:
            self._segments[snapshot_id] = (now, run_id, mapping)
        return mapping

    def segment_of(self, snapshot_id: int, customer_id: str) -> str | None:
        return self.segments(snapshot_id).get(customer_id)


__all__ = ["Portfolio", "SnapshotIndex"]
