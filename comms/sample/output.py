"""Writing a generated portfolio to .csv, .parquet, .jsonl or .xlsx, streaming chunk by chunk.

Every writer takes an iterable of tables (chunks of whole customers), so a million customers never sit in
memory twice, and writes to ``<file>.part`` first, renaming at the end: a failed run leaves no half file
under the real name. Output is deterministic: no timestamps, no file-level metadata.

* CSV: UTF-8, comma, header, each cell neutralized by :mod:`comms.csvsafe` (a name like
  ``=HYPERLINK(...)`` or a phone ``+1 ...`` gets a leading quote that ingest removes). Same bytes as
  ``csvsafe.write_table`` on the whole table (a test holds the two together).
* Parquet: zstd, the table's column types (text, booleans, integer).
* JSON Lines: one object per row, UTF-8 (not ``\\u`` escaped), built with Arrow string kernels.
* Excel: small portfolios only. Money and dates are real numbers and dates where they parse, text cells
  never become formulas. XML cannot hold most ASCII control characters, so in .xlsx a name's control
  character is written as DEL (U+007F), which still is one; the row stays bad for the same reason.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..csvsafe import neutralize_array
from ..errors import FileFormatError, InputError

FORMATS = (".csv", ".parquet", ".jsonl", ".xlsx")
XLSX_MAX_ROWS = 1_000_000   # Excel's sheet limit is 1,048,576 rows including the header
_MONEY_COLUMNS = {"billed_history", "paid_history", "amount", "open_amount"}
_DATE_COLUMNS = {"customer_since", "issue_date", "due_date"}
_MONEY_RE = re.compile(r"-?\d+\.\d{2}")
_XML_ILLEGAL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_path(path: str | Path) -> str:
    """The output format for ``path`` (its suffix), or one clear error before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise FileFormatError(f"cannot write {Path(path).name!r}: the file name must end in "
                              f"{', '.join(FORMATS)}")
    return suffix


def write(tables: pa.Table | Iterable[pa.Table], path: str | Path) -> Path:
    """Write a table, or chunks of one, to ``path`` in the format its extension names."""
    suffix = check_path(path)
    path = Path(path)
    chunks = [tables] if isinstance(tables, pa.Table) else tables
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        {".csv": _csv, ".parquet": _parquet, ".jsonl": _jsonl, ".xlsx": _xlsx}[suffix](chunks, part)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _plain(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


def _csv(chunks: Iterable[pa.Table], path: Path) -> None:
    writer = None
    try:
        for table in chunks:
            safe = pa.table([neutralize_array(col) for col in table.columns], names=table.column_names)
            if writer is None:   # the options of csvsafe.write_table, so both give the same bytes
                writer = pacsv.CSVWriter(str(path), safe.schema,
                                         write_options=pacsv.WriteOptions(quoting_style="needed"))
            writer.write_table(safe)
    finally:
        if writer is not None:
            writer.close()


def _parquet(chunks: Iterable[pa.Table], path: Path) -> None:
    writer = None
    try:
        for table in chunks:
            table = _plain(table)
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _json_values(arr: pa.Array) -> pa.Array:
    """Each value as a JSON literal (text): strings escaped and quoted, null as null."""
    if pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type):
        return pc.coalesce(pc.cast(arr, pa.string()), "null")
    text = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    controls = pc.match_substring_regex(text, r"[\x00-\x1f]")
    if pc.any(controls).as_py():   # a handful of bad rows: let json.dumps write the \u escapes
        mask = controls.fill_null(False)
        fixed = [json.dumps(v, ensure_ascii=False)[1:-1] for v in arr.filter(mask).to_pylist()]
        text = pc.replace_with_mask(text, mask, pa.array(fixed, pa.string()))
    return pc.coalesce(pc.binary_join_element_wise('"', text, '"', ""), "null")


def _jsonl(chunks: Iterable[pa.Table], path: Path) -> None:
    with path.open("wb") as fh:
        for table in chunks:
            for batch in table.to_batches(max_chunksize=100_000):
                parts: list = []
                for i, name in enumerate(batch.schema.names):
                    parts += [("{" if i == 0 else ",") + json.dumps(name) + ":", _json_values(batch.column(i))]
                lines = pc.binary_join_element_wise(*parts, "}\n", "")
                if len(lines) == 0:
                    continue
                offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
                fh.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])


def _xlsx_value(column: str, value):
    if value is None or not isinstance(value, str):
        return value
    if column in _MONEY_COLUMNS and _MONEY_RE.fullmatch(value):
        return Decimal(value)
    if column in _DATE_COLUMNS:
        try:
            return date.fromisoformat(value) if len(value) == 10 else value
        except ValueError:
            return value
    return _XML_ILLEGAL_RE.sub("\x7f", value)


def _xlsx_text(ws, value: str):
    """A cell that stays text even though it starts with '=' (openpyxl would make it a formula)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _xlsx(chunks: Iterable[pa.Table], path: Path) -> None:
    from openpyxl import Workbook

    tables = list(chunks)
    rows = sum(t.num_rows for t in tables)
    if rows > XLSX_MAX_ROWS:
        raise InputError(f"{rows:,} rows do not fit in an Excel sheet (limit {XLSX_MAX_ROWS:,}): "
                         "write .csv or .parquet instead")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("portfolio")
    names = tables[0].column_names if tables else []
    ws.append(names)
    for table in tables:
        columns = [[_xlsx_value(name, v) for v in table.column(name).to_pylist()] for name in names]
        for values in zip(*columns):
            ws.append([_xlsx_text(ws, v) if isinstance(v, str) and v.startswith("=") else v for v in values])
    raw = path.with_name(path.name + ".raw")
    try:
        wb.save(raw)
        _without_timestamps(raw, path)
    finally:
        raw.unlink(missing_ok=True)


def _without_timestamps(src: Path, dst: Path) -> None:
    """Copy an .xlsx with fixed zip entry times and document dates: openpyxl stamps both with 'now',
    which would make two runs with the same seed differ."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z", data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(entry, data)
