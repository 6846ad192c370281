"""Readers: any supported file becomes one Arrow table of *text* columns plus each row's original line.

Everything is read as strings first, so that the rejects file can show a row exactly as it arrived and
validation (not the reader) decides what a bad number or date is. Formats:

* CSV/TSV/TXT (:mod:`.csv_reader`): the delimiter (``,`` ``;`` tab ``|``) and the encoding (UTF-8 with or without BOM, UTF-16
  with BOM, else cp1252) are sniffed; CRLF, quoted fields and a missing final newline are fine. An empty
  header cell becomes ``column_<position>``, a repeated one ``<name>_<position>``. The fast path is
  ``pyarrow.csv``; when the file's physical lines do not match its records one to one (a quoted field
  holding a newline, blank lines, a row with the wrong number of fields) the reader falls back to Python's
  ``csv`` module, which knows each record's real first line. A row with the wrong number of fields is
  not guessed at: it becomes a *bad row* that goes to the rejects file.
* XLSX (openpyxl, read-only; the first sheet unless ``read.sheet``), Parquet, JSON Lines: cells are
  turned into text the way a person would type them (``12.5``, ``2024-05-31``, ``true``); the line
  number is the spreadsheet row (header = 1), the Parquet row (first = 1) or the JSON line.

Example: raw = read_raw(Path("portfolio.csv"), ReadOptions()); raw.table.num_rows + len(raw.bad_rows)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..errors import FileFormatError


@dataclass(frozen=True)
class ReadOptions:
    """The ``read:`` section of a mapping; None means sniff it."""

    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    format: str | None = None  # csv | xlsx | parquet | jsonl


@dataclass(frozen=True)
class BadRow:
    """A record that cannot be lined up with the header (or is not JSON): rejected as it stands."""

    line: int
    fields: tuple[str, ...]
    reason: str


@dataclass
class RawTable:
    table: pa.Table            # every column a string array, names unique and non-empty, source order
    lines: np.ndarray          # int64, the original line (or row) number of each table row
    bad_rows: list[BadRow] = field(default_factory=list)
    format: str = "csv"
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def rows_in(self) -> int:
        return self.table.num_rows + len(self.bad_rows)


def ids_in_bad_rows(raw: RawTable, column: str) -> tuple[list[str], list[int]]:
    """Best effort: the value each bad row holds at ``column``'s position (or under its key in a JSON
    line), with the row's line; rows where nothing can be read there are left out."""
    names = raw.table.column_names
    if not raw.bad_rows or column not in names:
        return [], []
    pos = names.index(column)
    pattern = re.compile(r'"%s"\s*:\s*"?([^",}]*)' % re.escape(column))
    ids, lines = [], []
    for b in raw.bad_rows:
        if raw.format == "jsonl":
            hit = pattern.search(b.fields[0]) if b.fields else None
            value = hit.group(1) if hit else None
        else:
            value = b.fields[pos] if pos < len(b.fields) else None
        if value and value.strip():
            ids.append(value.strip())
            lines.append(b.line)
    return ids, lines


def read_raw(path: Path, options: ReadOptions | None = None) -> RawTable:
    """Read ``path`` as text columns; FileFormatError (one line) when it cannot be read at all."""
    options = options or ReadOptions()
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not a portfolio file")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path} is empty")
    kind = options.format or detect_format(path)
    from .csv_reader import read_csv
    reader = {"csv": read_csv, "xlsx": _read_xlsx, "parquet": _read_parquet, "jsonl": _read_jsonl}.get(kind)
    if reader is None:
        raise FileFormatError(f"{path}: unknown format {kind!r} (use csv, xlsx, parquet or jsonl)")
    try:
        raw = reader(path, options)
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if raw.rows_in == 0:
        raise FileFormatError(f"{path} has a header but no data rows")
    return raw


def detect_format(path: Path) -> str:
    """By extension, else by the first bytes (zip = xlsx, PAR1 = parquet, '{' = JSON Lines)."""
    suffix = path.suffix.lower()
    by_suffix = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                 ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "jsonl"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    if suffix == ".xls":
        raise FileFormatError(f"{path}: old Excel .xls files are not supported; save it as .xlsx or .csv")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK"):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return "csv"


def unique_names(names: list[str]) -> list[str]:
    """Header cells as usable, unique column names (empty -> column_<n>, repeats -> name_<n>)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        name = (name or "").strip()
        if not name:
            name = f"column_{i}"
        if name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        out.append(name)
    return out


# --- XLSX, Parquet, JSON Lines --------------------------------------------------------------------------

def cell_text(value: object) -> str | None:
    """A typed cell as the text a person would have typed into a CSV."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    return text if text != "" else None


def _read_xlsx(path: Path, options: ReadOptions) -> RawTable:
    import zipfile

    import openpyxl
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable XLSX workbook ({str(exc).splitlines()[0]})") from None
    try:
        sheet_names = book.sheetnames
        wanted = options.sheet if options.sheet is not None else 0
        if isinstance(wanted, int):
            if not 0 <= wanted < len(sheet_names):
                raise FileFormatError(f"{path}: there is no sheet number {wanted} (sheets: {', '.join(sheet_names)})")
            sheet = book[sheet_names[wanted]]
        elif wanted in sheet_names:
            sheet = book[wanted]
        else:
            raise FileFormatError(f"{path}: there is no sheet {wanted!r} (sheets: {', '.join(sheet_names)})")
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise FileFormatError(f"{path}: the sheet {sheet.title!r} is empty")
        header = list(header)
        while header and header[-1] is None:
            header.pop()
        names = unique_names([cell_text(h) or "" for h in header])
        width = len(names)
        columns: list[list[str | None]] = [[] for _ in names]
        lines: list[int] = []
        bad: list[BadRow] = []
        for number, row in enumerate(rows, start=2):
            cells = [cell_text(v) for v in row]
            if not any(c is not None for c in cells):
                continue  # formatting-only rows at the end of a sheet hold no data
            if any(c is not None for c in cells[width:]):
                bad.append(BadRow(number, tuple(c or "" for c in cells),
                                  f"row has values beyond the {width} header columns"))
                continue
            cells = (cells + [None] * width)[:width]
            lines.append(number)
            for col, value in zip(columns, cells):
                col.append(value)
    finally:
        book.close()
    table = pa.table([pa.array(c, pa.string()) for c in columns], names=names)
    return RawTable(table, np.asarray(lines, dtype=np.int64), bad, "xlsx")


def _as_text_column(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return arr.cast(pa.string()) if pa.types.is_large_string(typ) else arr
    if pa.types.is_dictionary(typ):
        return _as_text_column(arr.cast(typ.value_type))
    if pa.types.is_timestamp(typ):
        midnight = pc.equal(pc.cast(arr, pa.date32()).cast(typ), arr)
        as_date = pc.strftime(arr, format="%Y-%m-%d")
        return pc.if_else(midnight, as_date, pc.strftime(arr, format="%Y-%m-%d %H:%M:%S"))
    if pa.types.is_boolean(typ):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_floating(typ):  # 0.1 + 0.2 as a person typed it (15 digits), once per distinct value
        enc = arr.combine_chunks().dictionary_encode()
        texts = pa.array([cell_text(v) for v in enc.dictionary.to_pylist()], pa.string())
        return pa.chunked_array([texts.take(enc.indices)])
    if pa.types.is_nested(typ):
        return pa.chunked_array([pa.array([cell_text(v) for v in chunk.to_pylist()], pa.string())
                                 for chunk in arr.chunks], pa.string())
    try:
        return arr.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.chunked_array([pa.array([cell_text(v) for v in chunk.to_pylist()], pa.string())
                                 for chunk in arr.chunks], pa.string())


def _text_table(table: pa.Table) -> pa.Table:
    names = unique_names([str(n) for n in table.column_names])
    return pa.table([_as_text_column(c) for c in table.columns], names=names)


def _read_parquet(path: Path, options: ReadOptions) -> RawTable:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    text = _text_table(table)
    return RawTable(text, np.arange(1, text.num_rows + 1, dtype=np.int64), [], "parquet")


def _read_jsonl(path: Path, options: ReadOptions) -> RawTable:
    from .csv_reader import count_lines
    try:
        table = pajson.read_json(path)
        if count_lines(path) == table.num_rows and not any(pa.types.is_nested(c.type) for c in table.columns):
            text = _text_table(table)
            return RawTable(text, np.arange(1, text.num_rows + 1, dtype=np.int64), [], "jsonl", "utf-8")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        pass
    return _python_jsonl(path)


def _python_jsonl(path: Path) -> RawTable:
    records: list[tuple[int, dict]] = []
    bad: list[BadRow] = []
    names: dict[str, None] = {}
    try:
        with path.open("r", encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad.append(BadRow(number, (line.rstrip("\r\n"),), f"not valid JSON ({exc.msg})"))
                    continue
                if not isinstance(obj, dict):
                    bad.append(BadRow(number, (line.rstrip("\r\n"),), "not a JSON object"))
                    continue
                names.update(dict.fromkeys(map(str, obj)))
                records.append((number, obj))
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: JSON Lines must be UTF-8 (byte 0x{exc.object[exc.start]:02X} "
                              f"at offset {exc.start} is not)") from None
    cols = list(names)
    table = pa.table([pa.array([cell_text(obj.get(n)) for _, obj in records], pa.string()) for n in cols],
                     names=unique_names(cols)) if cols else pa.table({})
    lines = np.asarray([n for n, _ in records], dtype=np.int64)
    if not cols:
        table = pa.table({"column_1": pa.nulls(len(records), pa.string())})
    return RawTable(table, lines, bad, "jsonl", "utf-8")
