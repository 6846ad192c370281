"""CSV as exports really are: the delimiter (, ; tab |) and encoding (UTF-8 with or without BOM, UTF-16
with BOM, else cp1252) sniffed, CRLF, quoted fields, no final newline, an empty or repeated header cell.

The fast path is ``pyarrow.csv`` with every column read as text; a line count (read in a thread
while Arrow parses) proves that every physical line is one record, so a row's line number is its index
plus two. When that is not so (a quoted field holding a newline, blank lines, a row with the wrong number
of fields) Python's ``csv`` module reads the file instead and knows each record's real first line; a row
that does not fit the header becomes a bad row for the rejects file, never a guess.

Example: raw = read_csv(Path("export.csv"), ReadOptions(delimiter=";"))
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import FileFormatError
from .readers import BadRow, RawTable, ReadOptions, unique_names

DELIMITERS = (",", ";", "\t", "|")
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
SAMPLE_BYTES = 1 << 16
csv.field_size_limit(1 << 24)  # absurd lengths are a validation reason, not a reader crash


def _sniff_encoding(path: Path, head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return _cp1252_or_fail(path, "utf-8")


def _cp1252_or_fail(path: Path, tried: str) -> str:
    """cp1252 decodes every byte except five; a file holding one of them is neither encoding."""
    with path.open("rb") as fh:
        offset = 0
        while chunk := fh.read(1 << 24):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            bad = np.flatnonzero(np.isin(arr, CP1252_UNDEFINED))
            if bad.size:
                pos = offset + int(bad[0])
                raise FileFormatError(
                    f"{path}: cannot decode the text: it is not {tried} and not cp1252 (byte 0x{arr[bad[0]]:02X} "
                    f"at offset {pos}); save it as UTF-8 or set read: {{encoding: ...}} in a mapping")
            offset += len(chunk)
    return "cp1252"


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields most often."""
    lines = text.splitlines()[:50]
    if len(lines) > 1 and len(text) >= SAMPLE_BYTES - 4:
        lines = lines[:-1]  # the last sampled line may be cut short
    best, best_score = ",", (0, 0)
    for delim in DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts), counts[0])
        if score > best_score:
            best, best_score = delim, score
    return best


def _decode_head(head: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(head, final=False)


def read_csv(path: Path, options: ReadOptions) -> RawTable:
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    encoding = options.encoding or _sniff_encoding(path, head)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FileFormatError(f"{path}: unknown encoding {encoding!r} in the mapping's read.encoding") from None
    text = _decode_head(head, encoding)
    delimiter = options.delimiter or _sniff_delimiter(text)
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise FileFormatError(f"{path}: the delimiter must be one character, got {delimiter!r}")
    header_reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = next(header_reader, None)
    if not header:
        raise FileFormatError(f"{path}: the first line (the header) is empty")
    header_lines = header_reader.line_num
    names = unique_names(header)
    if encoding.replace("-", "").lower() in ("utf8", "utf8sig", "cp1252", "windows1252", "latin1", "iso88591",
                                              "ascii", "usascii"):
        counter = _LineCount(path)
        counter.start()
        try:
            table = _arrow_csv(path, names, header_lines, delimiter, encoding)
        except UnicodeDecodeError:
            table = None
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) and not options.encoding:
                counter.join()
                encoding = _cp1252_or_fail(path, "utf-8")
                return read_csv(path, ReadOptions(delimiter=delimiter, encoding=encoding))
            table = None  # a parse problem: Python's reader shows which row it is
        finally:
            counter.join()
        if table is not None and counter.lines == table.num_rows + header_lines:
            lines = np.arange(header_lines + 1, header_lines + 1 + table.num_rows, dtype=np.int64)
            return RawTable(table, lines, [], "csv", encoding, delimiter)
        del table
    return _python_csv(path, names, delimiter, encoding)


# 8 MiB blocks: a block and the columns parsed from it stay in the CPU caches (32 MiB blocks took about
# 1.5 times the CPU on a 1 GB export).
BLOCK_BYTES = 1 << 23


def _arrow_csv(path: Path, names: list[str], header_lines: int, delimiter: str, encoding: str) -> pa.Table | None:
    """The fast parse, or None when a row does not fit the header. ``newlines_in_values`` stays off (it
    costs a fifth of the parse): a quoted newline inside a block still parses as one record, so the line
    count differs; one that straddles two blocks ends in a parse error, a row that does not fit or too few
    rows. Every one of these falls back to Python's reader."""
    bad: list[int] = []

    def on_invalid(row) -> str:
        bad.append(1)
        return "skip"

    # memory-mapped: blocks are parsed straight from the page cache instead of being copied into fresh
    # buffers first (a gigabyte less to fault in); the parsed columns do not point into the mapping
    with pa.memory_map(str(path)) as source:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=header_lines, block_size=BLOCK_BYTES,
                                           encoding="utf8" if encoding.startswith("utf") else encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid,
                                             newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True))
    return None if bad else table


def count_lines(path: Path) -> int:
    """Physical lines in the file (a last line without a newline counts). Read 1 MiB at a time into one
    reused buffer and mask: they stay in the CPU cache, and no fresh memory is faulted in per step."""
    newlines, last = 0, None
    buffer = bytearray(1 << 20)
    data = np.frombuffer(buffer, dtype=np.uint8)
    mask = np.empty(len(buffer), dtype=bool)
    with path.open("rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            newlines += int(np.count_nonzero(np.equal(data[:size], 10, out=mask[:size])))
            last = int(data[size - 1])
    if last is None:
        return 0
    return newlines + (0 if last == 10 else 1)


class _LineCount(threading.Thread):
    """Counts lines while pyarrow parses (numpy releases the GIL), so the check costs no wall time."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.lines = path, -1

    def run(self) -> None:
        try:
            self.lines = count_lines(self.path)
        except (OSError, ValueError):
            self.lines = -1


def _python_csv(path: Path, names: list[str], delimiter: str, encoding: str) -> RawTable:
    """The careful path: real first line of every record, wrong-width rows set aside as bad rows."""
    width = len(names)
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    bad: list[BadRow] = []
    try:
        with path.open("r", encoding=encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=False)
            next(reader, None)
            previous_end = reader.line_num
            for record in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if not record:
                    continue
                if len(record) != width:
                    bad.append(BadRow(start, tuple(record),
                                      f"row has {len(record)} field{'s' if len(record) != 1 else ''}, "
                                      f"the header has {width}"))
                    continue
                lines.append(start)
                for col, value in zip(columns, record):
                    col.append(value if value != "" else None)
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: cannot decode the text as {encoding} (byte 0x{exc.object[exc.start]:02X}); "
                              f"save it as UTF-8 or set read: {{encoding: ...}} in a mapping") from None
    except csv.Error as exc:
        raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    table = pa.table([pa.array(c, pa.string()) for c in columns], names=names)
    return RawTable(table, np.asarray(lines, dtype=np.int64), bad, "csv", encoding, delimiter)
