"""Readers: CSV in its many dialects, XLSX, Parquet and JSON Lines give the same portfolio, and every
rejected row keeps the line a person would find it on."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from comms.errors import FileFormatError
from comms.ingest import read_and_validate

AS_OF = date(2024, 6, 30)
COLUMNS = ["customer_id", "name", "email", "country", "locale", "timezone", "currency", "invoice_number",
           "issue_date", "due_date", "amount", "open_amount"]
ROWS = [
    ["C1", "Zoë Müller-Lüdenscheidt", "zoe@example.com", "DE", "de-DE", "Europe/Berlin", "EUR", "R-1",
     "2024-01-02", "2024-02-01", "1234.50", "1234.50"],
    ["C1", "Zoë Müller-Lüdenscheidt", "zoe@example.com", "DE", "de-DE", "Europe/Berlin", "EUR", "R-2",
     "2024-03-02", "2024-04-01", "10.00", "5.25"],
    ["C2", "José Pérez; \"Pepe\"", "jose@example.com", "ES", "es-ES", "Europe/Madrid", "EUR", "R-3",
     "2024-05-02", "2024-06-01", "99.99", "99.99"],
]


def csv_text(delimiter: str = ",", newline: str = "\n", final: bool = True, rows=ROWS) -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in (delimiter, '"', "\n")) else v
    lines = [delimiter.join(COLUMNS)] + [delimiter.join(cell(v) for v in r) for r in rows]
    return newline.join(lines) + (newline if final else "")


def summary(customers, invoices):
    return (customers.select(["customer_id", "name", "balance", "days_past_due"]).to_pylist(),
            invoices.select(["invoice_number", "amount", "open_amount", "due_date"]).to_pylist())


@pytest.fixture
def expected(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(csv_text(), encoding="utf-8")
    customers, invoices, rejects, _ = read_and_validate(path, None, AS_OF)
    assert rejects.num_rows == 0
    got = summary(customers, invoices)
    assert got[0][0]["balance"] == Decimal("1239.75") and got[0][1]["name"] == 'José Pérez; "Pepe"'
    return got


def test_semicolon_crlf_bom_without_final_newline(tmp_path, expected):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(";", "\r\n", final=False).encode("utf-8"))
    customers, invoices, _, stats = read_and_validate(path, None, AS_OF)
    assert summary(customers, invoices) == expected
    assert (stats.delimiter, stats.encoding) == (";", "utf-8-sig")


def test_cp1252_file_keeps_its_accents(tmp_path, expected):
    path = tmp_path / "windows.csv"
    path.write_bytes(csv_text(";", "\r\n").encode("cp1252"))
    customers, invoices, _, stats = read_and_validate(path, None, AS_OF)
    assert summary(customers, invoices) == expected and stats.encoding == "cp1252"


def test_tab_delimited(tmp_path, expected):
    path = tmp_path / "export.tsv"
    path.write_text(csv_text("\t"), encoding="utf-8")
    customers, invoices, _, _ = read_and_validate(path, None, AS_OF)
    assert summary(customers, invoices) == expected


def test_quoted_newline_and_blank_line_keep_real_line_numbers(tmp_path):
    rows = [list(r) for r in ROWS]
    rows[0][1] = "Zoë\nMüller"          # a two-line cell: line 2 and 3 of the file
    rows[1][1] = "Zoë\nMüller"          # starts on line 4
    rows[2][10] = "oops"                # starts on line 6 (after the blank line 5)
    text = csv_text(rows=rows).split("\n")
    text.insert(5, "")                  # a blank line before the last record
    path = tmp_path / "multi.csv"
    path.write_text("\n".join(text), encoding="utf-8")
    _, _, rejects, stats = read_and_validate(path, None, AS_OF)
    assert rejects.column("line").to_pylist() == [2, 4, 7]
    assert rejects.column("reasons").to_pylist() == ["name: control character"] * 2 + ["amount: not a number 'oops'"]
    assert rejects.column("name").to_pylist()[0] == "Zoë\nMüller" and stats.rows_in == 3


@pytest.mark.parametrize("block", [128, 200, 228, 256])
def test_quoted_newline_across_a_parse_block_still_reads_every_record(tmp_path, monkeypatch, block):
    """The fast parser does not look for newlines inside quotes: a cell split by a block boundary must
    fall back to the careful reader, never become two records."""
    from comms.ingest import csv_reader
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", block)
    rows = [list(r) for r in ROWS]
    rows[1][1] = "Zoë\nMüller"
    path = tmp_path / "split.csv"
    path.write_text(csv_text(rows=rows), encoding="utf-8")
    _, _, rejects, stats = read_and_validate(path, None, AS_OF)
    assert stats.rows_in == 3
    assert rejects.column("line").to_pylist() == [2, 3]  # C1's other invoice is held back with it
    assert rejects.column("name").to_pylist()[1] == "Zoë\nMüller"


def test_row_with_wrong_field_count_is_rejected_not_guessed(tmp_path):
    text = csv_text().split("\n")
    text[2] = text[2] + ",surplus"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(text), encoding="utf-8")
    _, _, rejects, stats = read_and_validate(path, None, AS_OF)
    row = rejects.to_pylist()
    lines = {r["line"]: r["reasons"] for r in row}
    assert lines[3] == "row has 13 fields, the header has 12"
    assert lines[2] == "customer C1 has a rejected row (line 3)" and stats.accepted == 1
    assert stats.rows_in == 3 == stats.accepted + stats.rejected
    assert [r["extra_fields"] for r in row if r["line"] == 3] == ["surplus"]


def test_xlsx_parquet_and_jsonl_read_like_csv(tmp_path, expected):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for r in ROWS:  # typed cells, as a spreadsheet holds them
        sheet.append(r[:8] + [date.fromisoformat(r[8]), date.fromisoformat(r[9]), float(r[10]), float(r[11])])
    book.save(tmp_path / "p.xlsx")
    table = pa.table({c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)})
    table = table.set_column(10, "amount", pa.array([Decimal(r[10]) for r in ROWS], pa.decimal128(18, 2)))
    table = table.set_column(9, "due_date", pa.array([date.fromisoformat(r[9]) for r in ROWS]))
    pq.write_table(table, tmp_path / "p.parquet")
    with (tmp_path / "p.jsonl").open("w", encoding="utf-8") as fh:
        for r in ROWS:
            obj = dict(zip(COLUMNS, r))
            obj["amount"] = float(obj["amount"])
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    for name in ("p.xlsx", "p.parquet", "p.jsonl"):
        customers, invoices, rejects, stats = read_and_validate(tmp_path / name, None, AS_OF)
        assert rejects.num_rows == 0, name
        assert summary(customers, invoices) == expected, name
    assert stats.format == "jsonl"


def test_line_numbers_in_xlsx_and_jsonl_point_at_the_row(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for r in ROWS:
        sheet.append(r)
    sheet.cell(row=4, column=11, value="n/a!")
    book.save(tmp_path / "p.xlsx")
    _, _, rejects, _ = read_and_validate(tmp_path / "p.xlsx", None, AS_OF)
    assert rejects.column("line").to_pylist() == [4]
    lines = [json.dumps(dict(zip(COLUMNS, r))) for r in ROWS]
    lines[1] = lines[1][:-5]  # cut short: C1's second invoice is not JSON any more
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, _, rejects, stats = read_and_validate(tmp_path / "p.jsonl", None, AS_OF)
    got = dict(zip(rejects.column("line").to_pylist(), rejects.column("reasons").to_pylist()))
    assert got[2].startswith("not valid JSON") and got[1] == "customer C1 has a rejected row (line 2)"
    assert stats.rows_in == 3 == stats.accepted + stats.rejected


def test_undecodable_file_is_one_clear_error(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(csv_text().encode("utf-8") + b"C9,\x81\xff\xfe,x\n")
    with pytest.raises(FileFormatError) as err:
        read_and_validate(path, None, AS_OF)
    assert "not utf-8 and not cp1252" in str(err.value) and "\n" not in str(err.value)


def test_missing_and_empty_files_are_one_clear_error(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_and_validate(tmp_path / "nope.csv", None, AS_OF)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(FileFormatError, match="is empty"):
        read_and_validate(tmp_path / "empty.csv", None, AS_OF)
    (tmp_path / "header.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(FileFormatError, match="no data rows"):
        read_and_validate(tmp_path / "header.csv", None, AS_OF)


def test_a_file_written_through_csvsafe_reads_back_unchanged(tmp_path):
    from comms import csvsafe
    tricky = ["=1+2", "-Anna", "@handle", "+Plus", "'quoted", "\tTab Name", "O'Brien & Sons", "<script>"]
    n = len(tricky)
    table = pa.table({"customer_id": [f"K{i}" for i in range(n)], "name": tricky,
                      "phone": ["+39 02 1234 5678"] * n, "country": ["IT"] * n, "locale": ["it-IT"] * n,
                      "timezone": ["Europe/Rome"] * n, "currency": ["EUR"] * n, "balance": ["-0.00"] * n,
                      "days_past_due": ["0"] * n})
    path = csvsafe.write_table(table, tmp_path / "safe.csv")
    assert "'=1+2" in path.read_text(encoding="utf-8")
    customers, _, rejects, _ = read_and_validate(path, None, AS_OF)
    by_id = dict(zip(customers.column("customer_id").to_pylist(), customers.column("name").to_pylist()))
    expected = {f"K{i}": v.strip() for i, v in enumerate(tricky)}
    assert by_id == expected and rejects.num_rows == 0
    assert set(customers.column("phone").to_pylist()) == {"+39 02 1234 5678"}
