"""The pure ingest pipeline: file -> (customers, invoices, rejects, stats), no store involved.

Steps: read every cell as text (readers, csv_reader), apply the mapping (mapping, derive, fake), decide the
layout, group rows into customers (groups), type and check each field (validate, dates, amounts), derive
the features (features) and cut the outputs (output). Columns are checked in parallel threads; nothing
loops over rows in Python. A 3-million-row invoice export keeps well under 3 GB: the source text is
released before the output tables are built.

Rules that protect customers:

* A row collects every reason it has; rejected rows keep their original line number and raw cells.
* In the invoice layout, a customer with *any* rejected row is rejected whole (its other rows say
  "customer C1 has a rejected row (line N)"): a customer must never be contacted with a wrong balance.
* Customer fields repeat on every invoice row and must agree ("email: differs from line 17 ...").
* In the customer layout, every row of a repeated id is rejected: which of two rows is right is not ours
  to guess. A row that does not fit the header holds back the customer whose id it seems to carry; an
  invoice row without an id holds back the customer of the adjacent row with the same e-mail (or name).
* ``rows_in == accepted + rejected`` always; it is asserted, not hoped for.

Example: customers, invoices, rejects, stats = read_and_validate("portfolio.csv", None, date(2024, 6, 30))
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MappingError
from ..models import FIELDS, FLAG_DEFAULTS, FieldSpec
from .features import cents, day_numbers, invoice_sums, money
from .groups import differing_rows, group_rows, orphan_owners, repeated_numbers
from .output import CUSTOMER_LEVEL, IngestStats, build_tables, make_stats, rejects_table
from .mapping import Mapped, Mapping, shorten
from .mapping_file import as_mapping
from .parallel import parallel_map
from .problems import Problems
from .readers import RawTable, ids_in_bad_rows, read_raw
from .text import codes_of, take_rows, to_numpy
from .validate import convert

INVOICE_LEVEL = ("invoice_number", "issue_date", "due_date", "amount", "open_amount")


class _Clock:
    """Stage timings (wall and CPU) for the stats, and the progress callback."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._stage, self._t, self._c = None, time.perf_counter(), time.process_time()

    def __call__(self, stage: str) -> None:
        pa.default_memory_pool().release_unused()  # hand freed buffers back: keeps the peak footprint low
        now, cpu = time.perf_counter(), time.process_time()
        if self._stage:
            self.seconds[self._stage] = round(now - self._t, 3)
            self.cpu[self._stage] = round(cpu - self._c, 3)
        self._stage, self._t, self._c = stage, now, cpu
        if self.progress and stage != "done":
            self.progress(stage)


def read_and_validate(path: str | Path, mapping: Mapping | str | Path | None = None, as_of: date | None = None,
                      progress: Callable[[str], None] | None = None, on_read: Callable[[], None] | None = None
                      ) -> tuple[pa.Table, pa.Table, pa.Table, IngestStats]:
    """Read, map, validate, group and derive features, without touching the store. ``on_read`` is called
    once the file is parsed (the parse keeps every core busy; the checks after it leave one idle at times).

    Returns (customers: pa.Table, invoices: pa.Table, rejects: pa.Table, stats: IngestStats).
    """
    path = Path(path)
    mapping = as_mapping(mapping)
    as_of = as_of or date.today()
    clock = _Clock(progress)
    clock("reading")
    raw = read_raw(path, mapping.read)
    if on_read:
        on_read()
    clock("mapping columns")
    mapped = mapping.apply(raw, path)
    clock("validating")
    run = _Run(raw, mapped, mapping, as_of, path)
    del raw, mapped  # the run frees the source columns once the rejects are cut out of them
    customers, invoices = run.execute(clock)
    rejects = run.rejects
    clock("done")
    stats = make_stats(run, customers.num_rows, invoices.num_rows)
    stats.seconds = clock.seconds
    stats.cpu_seconds = clock.cpu
    return customers, invoices, rejects, stats


class _Run:
    """One file's validation state: the problems found and the typed columns, level by level."""

    def __init__(self, raw: RawTable, mapped: Mapped, mapping: Mapping, as_of: date, path: Path):
        self.raw, self.mapped, self.mapping, self.as_of, self.path = raw, mapped, mapping, as_of, path
        self.n = raw.table.num_rows
        self.rows_in = raw.rows_in
        self.problems = Problems(self.n)
        self.formats = mapping.formats
        self.notes: list[str] = []
        self.defaulted_rows: dict[str, int] = {}   # empty cells set to the default, per field
        self.defaulted_absent: list[str] = []       # fields not in the file at all
        self.layout = "customer"
        self.accepted = 0

    # --- setup ----------------------------------------------------------------------------------------

    def _require(self, names, why: str = "") -> None:
        missing = [n for n in names if not (isinstance(n, tuple) and any(self.mapped.has(x) for x in n))
                   and not (isinstance(n, str) and self.mapped.has(n))]
        if missing:
            shown = ", ".join(n if isinstance(n, str) else " or ".join(n) for n in missing)
            cols = shorten(self.raw.table.column_names)
            how = (f"not mapped by {self.mapping.where}" if self.mapping.path
                   else "no such column; name them in a mapping file (--mapping)")
            raise MappingError(f"{self.path.name}: required field(s) {shown} missing{why} ({how}); "
                               f"the file's columns are {cols}")

    def _defaults(self) -> None:
        m = self.mapped
        for name, default in FLAG_DEFAULTS.items():
            text = ("true" if default else "false") if isinstance(default, bool) else str(default)
            if not m.has(name):
                m.constants[name] = text
                self.defaulted_absent.append(name)
            elif name in m.fields and m.fields[name].null_count:  # empty cells get the default, counted
                self.defaulted_rows[name] = m.fields[name].null_count
                m.fields[name] = pc.fill_null(m.fields[name], text)
        if m.has("amount") and not m.has("open_amount"):
            m.fields["open_amount"] = m.column("amount")
            self.notes.append("open_amount: taken from amount (no open amount in the file)")
        elif "open_amount" in m.fields and m.has("amount"):
            col = m.fields["open_amount"]
            if col.null_count:
                self.defaulted_rows["open_amount"] = col.null_count
                m.fields["open_amount"] = pc.coalesce(col, m.column("amount"))

    # --- the run --------------------------------------------------------------------------------------

    def execute(self, clock) -> tuple[pa.Table, pa.Table]:
        m, p = self.mapped, self.problems
        self._require(["customer_id", "name", "country", "locale", "timezone", "currency"])
        self._defaults()
        ids = m.column("customer_id")
        missing = to_numpy(ids.is_null())
        p.add(missing, "customer_id: missing", "customer_id: missing")
        self.ids = convert(FIELDS["customer_id"], ids, p, self.formats)
        self.groups = g = group_rows(self.ids)
        self.unreadable = self._unreadable_row_groups()
        repeated = g.n < int((~missing).sum()) or self.unreadable[0].size > 0
        has_invoice = m.has("invoice_number") or m.has("due_date")
        self.layout = self.mapping.layout or ("invoice" if repeated and has_invoice else "customer")
        if self.layout == "invoice":
            self._require(["due_date", ("open_amount", "amount")], " for one row per invoice")
            if "days_past_due" in m.fields:
                self.notes.append(f"days_past_due: computed from due_date as of {self.as_of}; the column is ignored")
        else:
            self._require([("balance", "open_amount", "amount"), ("days_past_due", "due_date")],
                          " for one row per customer")
        clock("checking fields")
        self.unit_rows = g.first_row if self.layout == "invoice" else np.arange(self.n)
        self._check_fields()
        clock("checking customers")
        if self.layout == "invoice":
            _, self.sums = parallel_map(lambda step: step(), [self._invoice_duplicates, self._invoice_sums])
            self._check_given_balance()
            self._propagate()
        else:
            self._customer_duplicates()
            self._propagate()
            self._row_amounts()
        rejected = self.problems.mask()
        self.rejected_rows = np.flatnonzero(rejected)
        self.accepted = self.n - int(self.rejected_rows.size)
        clock("writing rejects table")
        self.rejects = rejects_table(self)
        self._release()
        clock("building customers")
        return build_tables(self, rejected)

    def _release(self) -> None:
        """Drop the source text columns (most of the memory) before the output tables are built; what
        the outputs still need was taken or typed already."""
        m = self.mapped
        self.present = set(m.fields) | set(m.constants)
        self.extra_names = list(m.extras)
        m.fields.clear()
        m.extras.clear()
        self.raw.table = None

    def _invoice_field(self, name: str) -> tuple[pa.Array, Problems]:
        local = Problems(self.n)
        col = self.mapped.column(name)
        if self.layout == "invoice" and name in ("due_date", "invoice_number", "open_amount"):
            local.add(to_numpy(col.is_null()), f"{name}: missing", f"{name}: missing")
        return convert(FIELDS[name], col, local, self.formats), local

    def _specs(self):
        for name in CUSTOMER_LEVEL:
            if self.mapped.has(name):
                yield FIELDS[name], name in self.mapped.constants
        for name in self.mapped.extras:
            yield FieldSpec(name, "number", "customer"), False

    def _check_fields(self) -> None:
        """Every field typed and checked: customer fields once per customer (its first row, problems
        broadcast to its rows), invoice fields on every row. Fields are independent, so several are
        checked at once (Arrow and numpy release the GIL); each collects its own reasons, merged in
        schema order so the output does not depend on thread timing. Invoice fields (every row, the
        longest tasks) are started first, so that no thread is left alone with one at the end."""
        g = self.groups
        g.sorted_rows(), g.row_starts()  # computed once, before threads share them
        tasks = [("customer", spec, constant) for spec, constant in self._specs()]
        tasks += [("invoice", name, False) for name in INVOICE_LEVEL if self.mapped.has(name)]

        def run(task):
            level, what, constant = task
            return self._customer_field(what, constant) if level == "customer" else self._invoice_field(what)

        order = sorted(range(len(tasks)), key=lambda i: tasks[i][0] != "invoice")
        done = dict(zip(order, parallel_map(run, [tasks[i] for i in order])))
        results = [done[i] for i in range(len(tasks))]
        self.cust_typed, self.invoice_typed = {}, {}
        for (level, what, _), (typed, local) in zip(tasks, results):
            self.problems.merge(local)
            if level == "customer":
                self.cust_typed[what.name] = typed
            else:
                self.invoice_typed[what] = typed

    def _customer_field(self, spec: FieldSpec, constant: bool) -> tuple[pa.Array, Problems]:
        m, g = self.mapped, self.groups
        name, k = spec.name, len(self.unit_rows)
        invoice = self.layout == "invoice"
        local = Problems(self.n)
        if constant:
            one = convert(spec, pa.array([m.constants[name]], pa.string()), Problems(1), self.formats)
            return pa.repeat(one[0], k), local
        col = m.extras[name] if name in m.extras else m.fields[name]
        if not pa.types.is_string(col.type):  # a derived extra is already numeric
            return (take_rows(col, self.unit_rows) if invoice else col), local
        differ = np.zeros(0, np.int64)
        if invoice:
            differ = differing_rows(col, g)
            if differ.size:
                ref = g.first_row[g.codes[differ]]
                msg = pc.binary_join_element_wise(
                    f"{name}: differs from line ", pc.cast(pa.array(self.raw.lines[ref]), pa.string()),
                    " for customer ", take_rows(self.ids, differ), "")
                local.add(differ, msg, f"{name}: differs between rows of one customer")
            col = take_rows(col, self.unit_rows)
        sub = Problems(k) if invoice else local
        if name in FIELDS and FIELDS[name].required:
            sub.add(to_numpy(col.is_null()), f"{name}: missing", f"{name}: missing")
        typed = convert(spec, col, sub, self.formats)
        if invoice:
            self._broadcast(sub, differ, local)
        return typed, local

    def _broadcast(self, sub: Problems, skip: np.ndarray, into: Problems | None = None) -> None:
        """Group-level problems onto every row of the group (except rows reported as differing)."""
        into = self.problems if into is None else into
        for gidx, message, key in sub.items:
            rows, owner = self.groups.rows_of(gidx)
            keep = ~np.isin(rows, skip) if skip.size else np.ones(rows.size, bool)
            order = np.argsort(rows[keep], kind="stable")
            if isinstance(message, str):
                into.add(rows[keep][order], message, key)
            else:
                into.add(rows[keep][order], message.take(pa.array(owner[keep][order])), key)

    def _invoice_duplicates(self) -> None:
        if "invoice_number" not in self.mapped.fields:
            return
        dup_rows, first_rows = repeated_numbers(self.groups, self.invoice_typed["invoice_number"])
        if dup_rows.size:
            msg = pc.binary_join_element_wise("invoice_number: duplicate for this customer (line ",
                                              pc.cast(pa.array(self.raw.lines[first_rows]), pa.string()), ")", "")
            self.problems.add(dup_rows, msg, "invoice_number: duplicate for this customer")

    def _customer_duplicates(self) -> None:
        g = self.groups
        dup_groups = np.flatnonzero(g.count > 1)
        if not dup_groups.size:
            return
        rows, owner = g.rows_of(dup_groups)
        first = g.first_row[dup_groups][owner]
        later = rows != first
        lines = self.raw.lines
        second = np.zeros(dup_groups.size, np.int64)
        second[owner[later][::-1]] = rows[later][::-1]  # the earliest later row of each group
        msg_first = pc.binary_join_element_wise("customer_id: repeated on line ",
                                                pc.cast(pa.array(lines[second[owner[~later]]]), pa.string()), "")
        self.problems.add(rows[~later], msg_first, "customer_id: duplicate")
        msg_later = pc.binary_join_element_wise("customer_id: duplicate of line ",
                                                pc.cast(pa.array(lines[first[later]]), pa.string()), "")
        self.problems.add(rows[later], msg_later, "customer_id: duplicate")

    def _invoice_sums(self) -> dict[str, np.ndarray]:
        """Per-group sums (indexed by group), over every row; only accepted groups are used later."""
        g, t = self.groups, self.invoice_typed
        open_c, _ = cents(t["open_amount"]) if "open_amount" in t else cents(t["amount"])
        amount_c, _ = cents(t["amount"]) if "amount" in t else (open_c, None)
        due, due_valid = day_numbers(t["due_date"])
        rows = None if g.identity else g.sorted_rows()
        by_rank = invoice_sums(rows, g.row_starts(), open_c, amount_c, due, due_valid, self.as_of)
        return by_rank if g.ranked_as_found else {k: v[g.rank] for k, v in by_rank.items()}

    def _check_given_balance(self) -> None:
        given = self.cust_typed.get("balance")
        if given is None or "balance" in self.mapped.constants:
            return
        given_c, valid = cents(given)
        bad = np.flatnonzero(valid & (given_c != self.sums["balance"]))
        if bad.size:
            sub = Problems(self.groups.n)
            shown = pc.cast(money(self.sums["balance"][bad]), pa.string())
            sub.add(bad, pc.binary_join_element_wise("balance: ", pc.cast(take_rows(given, bad), pa.string()),
                                                     " is not the sum of open amounts ", shown, ""),
                    "balance: not the sum of open amounts")
            self._broadcast(sub, np.zeros(0, np.int64))

    def _unreadable_row_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Groups (and lines) of rows that could not be lined up with the header, by the id they seem to
        carry: that customer is held back too rather than imported with an invoice missing."""
        src = self.mapped.sources.get("customer_id")
        ids, lines = ids_in_bad_rows(self.raw, src) if src else ([], [])
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        codes = codes_of(pc.index_in(pa.array(ids, pa.string()), value_set=self.groups.ids))
        return codes[codes >= 0], np.asarray(lines, dtype=np.int64)[codes >= 0]

    def _orphan_row_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Invoice rows without a customer id hold back the customer they seem to belong to."""
        key = next((f for f in ("email", "name") if f in self.mapped.fields), None)
        if self.layout != "invoice" or key is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        groups, rows = orphan_owners(self.groups, self.mapped.fields[key])
        return groups, self.raw.lines[rows]

    def _propagate(self) -> None:
        g, p = self.groups, self.problems
        bad = p.mask()
        bad_rows = np.flatnonzero(bad & (g.codes >= 0))
        orphan_groups, orphan_lines = self._orphan_row_groups()
        extra_groups = np.concatenate([self.unreadable[0], orphan_groups])
        extra_lines = np.concatenate([self.unreadable[1], orphan_lines])
        if not bad_rows.size and not extra_groups.size:
            self.bad_group = np.zeros(g.n, bool)
            return
        first_bad = np.full(g.n, np.iinfo(np.int64).max)
        np.minimum.at(first_bad, g.codes[bad_rows], self.raw.lines[bad_rows])
        np.minimum.at(first_bad, extra_groups, extra_lines)
        self.bad_group = first_bad < np.iinfo(np.int64).max
        rows, owner = g.rows_of(np.flatnonzero(self.bad_group))
        innocent = ~bad[rows]
        rows = rows[innocent]
        if rows.size:
            codes = g.codes[rows]
            msg = pc.binary_join_element_wise("customer ", take_rows(g.ids, codes), " has a rejected row (line ",
                                              pc.cast(pa.array(first_bad[codes]), pa.string()), ")", "")
            order = np.argsort(rows)
            p.add(rows[order], msg.take(pa.array(order)), "customer has a rejected row")

    # --- customer layout ------------------------------------------------------------------------------

    def _row_amounts(self) -> None:
        """Customer layout: each row's balance and days past due, given or from the row's invoice."""
        t, c, p = self.invoice_typed, self.cust_typed, self.problems
        source = "balance" if "balance" in c else "open_amount" if "open_amount" in t else "amount"
        bal = c[source] if source in c else t[source]
        self.row_balance, bal_valid = cents(bal)
        p.add(~bal_valid & ~np.asarray(self.problems_rows_for(source)), f"{source}: missing", f"{source}: missing")
        if "days_past_due" in c:
            dpd = c["days_past_due"]
            valid = to_numpy(dpd.is_valid())
            p.add(~valid & ~self.problems_rows_for("days_past_due"), "days_past_due: missing",
                  "days_past_due: missing")
            self.row_dpd = to_numpy(pc.fill_null(dpd, 0)).astype(np.int64)
        else:
            due, due_valid = day_numbers(t["due_date"])
            owing = self.row_balance > 0
            p.add(owing & ~due_valid & ~self.problems_rows_for("due_date"), "due_date: missing (balance is open)",
                  "due_date: missing")
            today = (self.as_of - date(1970, 1, 1)).days
            self.row_dpd = np.where(owing & due_valid, np.clip(today - due, 0, None), 0).astype(np.int64)

    def problems_rows_for(self, name: str) -> np.ndarray:
        """Rows that already have a reason about ``name`` (so 'missing' is not said twice)."""
        out = np.zeros(self.n, bool)
        for rows, _, key in self.problems.items:
            if key.startswith(name + ":"):
                out[rows] = True
        return out
