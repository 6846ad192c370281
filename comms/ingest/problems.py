"""Reasons collected per row: what validation found, kept as (rows, message) pairs until the end.

Nothing in validation raises for a bad cell. Each check adds ``(rows, message)`` to a :class:`Problems`
list, so a row collects *every* reason it has (not just the first); at the end the rejected rows get their
reasons joined in check order, and the counts per kind of reason feed the summary.

Example: p = Problems(3); p.add(np.array([1]), "email: not a valid address 'x'", "email: not a valid address")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .text import combine, quoted


@dataclass
class Problems:
    """Every reason found, as (row indices, message or per-row messages, counting key)."""

    n: int
    items: list[tuple[np.ndarray, pa.Array | str, str]] = field(default_factory=list)

    def add(self, rows: np.ndarray, message: pa.Array | str, key: str) -> None:
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64, copy=False)
        if rows.size:
            if isinstance(message, pa.ChunkedArray):
                message = combine(message)
            self.items.append((rows, message, key))

    def extend(self, other: "Problems", rows: np.ndarray) -> None:
        """Add another Problems list found on a subset: its row i is our row ``rows[i]``."""
        for r, m, k in other.items:
            self.items.append((rows[r], m, k))

    def merge(self, other: "Problems") -> None:
        self.items.extend(other.items)

    def mask(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for rows, _, _ in self.items:
            out[rows] = True
        return out

    def reasons(self, rejected: np.ndarray) -> pa.Array:
        """The '; '-joined reasons of each row in ``rejected`` (sorted row indices), in check order."""
        if not rejected.size:
            return pa.array([], pa.string())
        parts = []
        for rows, message, _ in self.items:
            pos = np.searchsorted(rejected, rows)
            if isinstance(message, str):
                values = pa.array([message, None], pa.string())
                idx = np.full(rejected.size, 1, dtype=np.int64)
                idx[pos] = 0
            else:
                values = pa.concat_arrays([message.cast(pa.string()), pa.nulls(1, pa.string())])
                idx = np.full(rejected.size, len(message), dtype=np.int64)
                idx[pos] = np.arange(len(message))
            parts.append(values.take(pa.array(idx)))
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, "; ", null_handling="skip")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rows, _, key in self.items:
            out[key] = out.get(key, 0) + int(rows.size)
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class Formats:
    """How numbers and dates are written in this file (None = detect per column)."""

    decimal: str | None = None
    thousands: str | None = None
    date_format: str | None = None


def message(prefix: str, values: pa.Array, suffix: str = "") -> pa.Array:
    """Per-cell messages such as ``email: not a valid address 'foo@'``."""
    return pc.binary_join_element_wise(prefix, quoted(values), suffix, "")
