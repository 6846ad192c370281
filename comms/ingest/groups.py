"""Rows grouped into customers: who is who, where each customer's rows are, which rows disagree.

An export sorted by customer id (the usual case) is grouped by comparing each id with the one before:
no hashing at all. Otherwise the ids are dictionary-encoded once; the codes are the groups, numbered in
order of first appearance, so each customer's first row falls out of a running maximum instead of a
sort. Rows sorted by customer id come from ranking the distinct ids once and a stable integer sort of
the rows, skipped when the file is already in that order.

Example: groups = group_rows(ids); rows, owner = groups.rows_of(np.array([0, 5]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .text import codes_of, combine, take_rows, to_numpy


@dataclass
class Groups:
    codes: np.ndarray        # int64 group of each row, -1 when the row has no id
    ids: pa.Array            # distinct ids, group k = ids[k]
    first_row: np.ndarray    # first row of each group
    count: np.ndarray        # rows per group
    contiguous: bool         # every group's rows are adjacent in the file
    _rank: np.ndarray | None = None
    _sorted: np.ndarray | None = None
    _starts: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.first_row)

    @property
    def rank(self) -> np.ndarray:
        """Position of each group when groups are sorted by id."""
        if self._rank is None:
            order = np.asarray(pc.sort_indices(self.ids))
            rank = np.empty(self.n, dtype=np.int64)
            rank[order] = np.arange(self.n)
            self._rank = rank
        return self._rank

    def group_order(self) -> np.ndarray:
        """Groups sorted by customer id."""
        order = np.empty(self.n, dtype=np.int64)
        order[self.rank] = np.arange(self.n)
        return order

    def sorted_rows(self) -> np.ndarray:
        """Rows with an id, sorted by customer id, file order within a customer (stable)."""
        if self._sorted is None:
            has_id = self.codes >= 0
            in_order = self.contiguous and bool(np.all(np.diff(self.rank) > 0)) if self.n else True
            if in_order:
                rows = np.flatnonzero(has_id)
            else:
                key = np.where(has_id, self.rank[np.maximum(self.codes, 0)], self.n)
                rows = np.argsort(key, kind="stable")[: int(has_id.sum())]
            self._sorted = rows
        return self._sorted

    @property
    def identity(self) -> bool:
        """The file's rows are already sorted by customer id, and every row has one."""
        rows = self.sorted_rows()  # ascending when the file is in id order, a permutation otherwise
        return rows.size == self.codes.size and bool(np.all(rows[1:] > rows[:-1]))

    @property
    def ranked_as_found(self) -> bool:
        """Groups numbered in id order already (rank is the identity)."""
        return self._rank is not None and bool(np.array_equal(self._rank, np.arange(self.n)))

    def row_starts(self) -> np.ndarray:
        """Where each group's rows begin in sorted_rows(), indexed by rank."""
        if self._starts is None:
            self._starts = np.concatenate([[0], np.cumsum(self.count[self.group_order()])])[:-1]
        return self._starts

    def rows_of(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All rows of the given groups, and for each row its position in ``groups``."""
        rows = self.sorted_rows()
        start = self.row_starts()[self.rank[groups]]
        length = self.count[groups]
        owner = np.repeat(np.arange(groups.size), length)
        offset = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
        return rows[start[owner] + offset], owner


def _sorted_groups(ids: pa.Array) -> Groups | None:
    """Groups of an export already sorted by id (the usual case): boundaries from comparing each id
    with the one before, no hashing. None when the ids are not in order."""
    valid = to_numpy(ids.is_valid()) if ids.null_count else None
    sub = ids.filter(pa.array(valid)) if valid is not None else ids
    m = len(sub)
    if m < 2:
        return None
    left, right = sub.slice(1), sub.slice(0, m - 1)
    if not pc.all(pc.greater_equal(left, right)).as_py():
        return None
    starts = np.concatenate([[True], to_numpy(pc.not_equal(left, right))])
    sub_codes = np.cumsum(starts, dtype=np.int64) - 1
    if valid is None:
        codes = sub_codes
    else:
        codes = np.full(len(ids), -1, dtype=np.int64)
        codes[valid] = sub_codes
    first_sub = np.flatnonzero(starts)
    first = first_sub if valid is None else np.flatnonzero(valid)[first_sub]
    count = np.diff(np.append(first_sub, m))
    groups = Groups(codes, sub.filter(pa.array(starts)), first, count, True)
    groups._rank = np.arange(len(first), dtype=np.int64)
    return groups


def group_rows(ids: pa.Array) -> Groups:
    ids = combine(ids)
    fast = _sorted_groups(ids)
    if fast is not None:
        return fast
    enc = ids.dictionary_encode()
    codes = codes_of(enc.indices)
    n_groups = len(enc.dictionary)
    running = np.maximum.accumulate(codes) if codes.size else codes
    previous = np.concatenate([[-1], running[:-1]])
    first = np.flatnonzero(codes > previous)
    count = np.bincount(codes[codes >= 0], minlength=n_groups)
    valid = codes[codes >= 0]
    contiguous = bool(np.all(np.diff(valid) >= 0)) if valid.size else True
    return Groups(codes, enc.dictionary, first, count, contiguous)


def equal_rows(col: pa.Array, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """col[a] == col[b] element-wise, where two empty cells are equal."""
    left, right = take_rows(col, a), take_rows(col, b)
    eq = to_numpy(pc.fill_null(pc.equal(left, right), False))
    if left.null_count or right.null_count:
        eq |= to_numpy(left.is_null()) & to_numpy(right.is_null())
    return eq


def differing_rows(col: pa.Array, groups: Groups) -> np.ndarray:
    """Rows whose value differs from their customer's first row (a customer field must agree)."""
    codes = groups.codes
    if groups.contiguous and len(col) > 1:
        same = (codes[1:] == codes[:-1]) & (codes[1:] >= 0)
        left, right = col.slice(1), col.slice(0, len(col) - 1)
        eq = to_numpy(pc.fill_null(pc.equal(left, right), False))
        if col.null_count:
            nulls = to_numpy(col.is_null())
            eq |= nulls[1:] & nulls[:-1]
        suspects = np.flatnonzero(same & ~eq) + 1
        if not suspects.size:
            return suspects
        rows, _ = groups.rows_of(np.unique(codes[suspects]))
    else:
        rows = np.flatnonzero(codes >= 0)
    ref = groups.first_row[codes[rows]]
    return np.sort(rows[~equal_rows(col, rows, ref)])




def orphan_owners(groups: Groups, col) -> tuple[np.ndarray, np.ndarray]:
    """Rows without a customer id, attributed (best effort) to the customer of the row just above or
    below with the same value in ``col`` (the e-mail, say): (their groups, those rows)."""
    codes = groups.codes
    orphans = np.flatnonzero(codes < 0)
    known = np.flatnonzero(codes >= 0)
    if not orphans.size or not known.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.searchsorted(known, orphans)
    above, below = known[np.maximum(pos - 1, 0)], known[np.minimum(pos, known.size - 1)]
    values = take_rows(col, orphans)

    def same(rows):
        return to_numpy(pc.fill_null(pc.equal(values, take_rows(col, rows)), False))
    group = np.where(same(above) & (pos > 0), codes[above],
                     np.where(same(below) & (pos < known.size), codes[below], -1))
    return group[group >= 0], orphans[group >= 0]


def repeated_numbers(groups: Groups, numbers) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose invoice number already appeared for the same customer, and that earlier row (both
    ascending by duplicate row). Rows of a customer are adjacent once sorted, so for the usual few
    invoices per customer comparing each row with the k rows before it is enough; a customer with very
    many invoices switches to hashing."""
    g = groups
    biggest = int(g.count.max()) if g.n else 0
    empty = np.zeros(0, np.int64)
    if biggest < 2:
        return empty, empty
    rows = g.sorted_rows()
    owner = g.codes[rows]
    if biggest > 32:
        found = _repeats_by_hash(take_rows(numbers, rows), owner)
    else:
        identity = rows.size == len(numbers) and np.array_equal(rows, np.arange(rows.size))
        seq = numbers if identity else take_rows(numbers, rows)
        found = np.full(rows.size, -1, dtype=np.int64)
        for k in range(1, biggest):
            same = owner[k:] == owner[:-k]
            if not same.any():
                break
            eq = to_numpy(pc.fill_null(pc.equal(seq.slice(k), seq.slice(0, len(seq) - k)), False)) & same
            hit = np.flatnonzero(eq & (found[k:] < 0)) + k
            found[hit] = hit - k
    pos = np.flatnonzero(found >= 0)
    dup_rows, first_rows = rows[pos], rows[found[pos]]
    order = np.argsort(dup_rows)
    return dup_rows[order], first_rows[order]


def _repeats_by_hash(seq: pa.Array, owner: np.ndarray) -> np.ndarray:
    """For each position, the earlier position with the same (customer, number), else -1."""
    enc = combine(seq.dictionary_encode())
    codes = codes_of(enc.indices)
    key = owner * (len(enc.dictionary) + 1) + codes
    order = np.argsort(key, kind="stable")
    skey = key[order]
    dup = np.concatenate([[False], (skey[1:] == skey[:-1]) & (codes[order][1:] >= 0)])
    first = np.maximum.accumulate(np.where(~dup, np.arange(dup.size), 0))
    found = np.full(len(seq), -1, dtype=np.int64)
    found[order[dup]] = order[first[dup]]
    return found
