"""CSV that is safe to open in a spreadsheet.

Every CSV this project writes (rejects files, sample portfolios, manifests, exports) goes through here:
a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single
quote, so Excel, LibreOffice and Google Sheets show it as text instead of running it as a formula
(OWASP "CSV injection"). Ingest undoes exactly this prefix, so a file we wrote reads back unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_RE = r"^[=+\-@\t\r]"
_UNDO_RE = r"^'([=+\-@\t\r])"


def neutralize(value: object) -> str:
    """One cell as text that no spreadsheet will evaluate."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(TRIGGERS) else text


def neutralize_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Vectorized :func:`neutralize` for a column (any type is cast to string first)."""
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.replace_substring_regex(arr, pattern=_TRIGGER_RE, replacement="'\\0")


def restore_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Undo :func:`neutralize_array` on a string column read back from a CSV."""
    return pc.replace_substring_regex(arr, pattern=_UNDO_RE, replacement="\\1")


def write_table(table: pa.Table | pd.DataFrame, path: str | Path) -> Path:
    """Write a whole table as UTF-8 CSV with every cell neutralized (fast path for large tables)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    cols = [neutralize_array(col) for col in table.columns]
    safe = pa.table(cols, names=table.column_names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(safe, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return path


def write_rows(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write rows one by one (for small files and streams) with every cell neutralized."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([neutralize(h) for h in header])
        for row in rows:
            writer.writerow([neutralize(v) for v in row])
    return path
