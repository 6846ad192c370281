"""`comms ingest` and `comms snapshots` as a user runs them: the real command, the real data sets,
one-line errors with exit status 2, a rejects file that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import random
from datetime import date

from comms.ingest import read_and_validate

from conftest import DATASETS, ROOT

UCI = DATASETS / "uci_default_credit_card_numeric.csv"
GERMAN = DATASETS / "german_credit_data.csv"
UCI_MAPPING = ROOT / "mappings" / "uci_credit_card.yaml"
GERMAN_MAPPING = ROOT / "mappings" / "german_credit.yaml"
HEADER = "customer_id,name,email,country,locale,timezone,currency,invoice_number,issue_date,due_date,amount,open_amount"
ROW = "C{n},Anna Rossi,anna{n}@example.com,IT,it-IT,Europe/Rome,EUR,F{n},2024-01-01,2024-05-31,100.00,60.00"


def one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_uci_data_set_imports_through_the_shipped_mapping(cli):
    proc = cli("ingest", str(UCI), "--mapping", str(UCI_MAPPING), "--as-of", "2005-10-01", check=True)
    out = proc.stdout
    assert "rows in 30000 = accepted 30000 + rejected 0" in out
    assert "customers 30000, invoices 0 (customer layout, as of 2005-10-01)" in out
    assert "filled with fake values: name, given_name, email, phone, address_line1, postal_code, city (seed 7)" in out
    assert "snapshot 1" in out
    listing = cli("snapshots", check=True).stdout
    assert "uci_default_credit_card_numeric.csv" in listing and "30000" in listing


def test_german_data_set_imports_with_its_semicolons_crlf_and_empty_header_cell():
    customers, invoices, rejects, stats = read_and_validate(GERMAN, GERMAN_MAPPING, date(1994, 6, 30))
    assert (stats.rows_in, stats.accepted, stats.rejected) == (1000, 1000, 0)
    assert stats.delimiter == ";" and customers.num_rows == 1000 and rejects.num_rows == 0
    assert set(stats.filled_fields) == {"name", "given_name", "email", "phone", "address_line1", "postal_code", "city"}
    first = customers.to_pylist()[0]
    assert first["customer_id"] == "GC-0" and first["outcome"] == 0 and first["age"] == 67.0
    assert first["email"].endswith(("@example.com", "@example.net", "@example.org"))
    assert first["savings"] is None and customers.column("currency").to_pylist()[0] == "EUR"
    assert customers.column("outcome").to_pylist().count(1) == 300  # the set's 300 "bad" risks


def test_fake_contact_data_depends_on_the_customer_not_on_row_order(tmp_path):
    lines = GERMAN.read_bytes().split(b"\r\n")
    body = lines[1:]
    random.Random(3).shuffle(body)
    shuffled = tmp_path / "german_shuffled.csv"
    shuffled.write_bytes(b"\r\n".join([lines[0]] + body))
    a, _, _, _ = read_and_validate(GERMAN, GERMAN_MAPPING, date(1994, 6, 30))
    b, _, _, _ = read_and_validate(shuffled, GERMAN_MAPPING, date(1994, 6, 30))
    cols = ["customer_id", "name", "email", "phone", "city"]
    assert a.select(cols).to_pylist() == b.select(cols).to_pylist()
    assert len(set(a.column("name").to_pylist())) > 900


def test_rejects_file_has_lines_reasons_and_neutralized_formulas(cli, home, tmp_path):
    path = tmp_path / "portfolio.csv"
    path.write_text("\n".join([HEADER, ROW.format(n=1),
                               'C2,=HYPERLINK("http://x"),@me,IT,it-IT,Europe/Rome,EUR,F2,2024-01-01,2024-05-31,-3,1',
                               ROW.format(n=3)]) + "\n", encoding="utf-8")
    proc = cli("ingest", str(path), "--as-of", "2024-06-30", check=True)
    assert "rows in 3 = accepted 2 + rejected 1" in proc.stdout
    rejects = next((home / "rejects").glob("*-portfolio.rejects.csv"))
    assert f"rejects file: {rejects}" in proc.stdout
    with rejects.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["line"] == "3"
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\")" and rows[0]["email"] == "'@me" and rows[0]["amount"] == "'-3"
    assert rows[0]["reasons"] == "email: not a valid address '@me'; amount: negative (-3.00)"
    assert "1  email: not a valid address" in proc.stdout


def test_explicit_rejects_path_is_used(cli, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("\n".join([HEADER, ROW.format(n=1), ROW.format(n=2).replace("EUR", "XYZ")]) + "\n")
    target = tmp_path / "out" / "bad.csv"
    cli("ingest", str(path), "--rejects", str(target), check=True)
    assert "currency: unknown ISO 4217 code 'XYZ'" in target.read_text(encoding="utf-8")


def test_mapping_naming_a_missing_column_is_one_line(cli, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  customer_id: KUNDENNR\n", encoding="utf-8")
    line = one_line_error(cli("ingest", str(GERMAN), "--mapping", str(mapping)))
    assert "'KUNDENNR'" in line and str(mapping) in line and "'Age'" in line and "'Credit amount'" in line


def test_missing_file_is_one_line(cli, tmp_path):
    line = one_line_error(cli("ingest", str(tmp_path / "nope.csv")))
    assert "nope.csv: no such file" in line


def test_undecodable_file_is_one_line(cli, tmp_path):
    path = tmp_path / "weird.csv"
    path.write_bytes(HEADER.encode() + b"\nC1,\x81\x8d\x8f,x\n")
    line = one_line_error(cli("ingest", str(path)))
    assert "cannot decode" in line and "0x81" in line


def test_bad_mapping_file_and_bad_date_are_one_line(cli, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("derive:\n  balance: 'max(BILL_AMT1,'\n", encoding="utf-8")
    assert "derive balance" in one_line_error(cli("ingest", str(UCI), "--mapping", str(mapping)))
    mapping.write_text("columns: [a, b]\n", encoding="utf-8")
    assert "columns must be a mapping" in one_line_error(cli("ingest", str(UCI), "--mapping", str(mapping)))
    assert "--as-of" in one_line_error(cli("ingest", str(UCI), "--as-of", "yesterday"))
    assert "no such file" in one_line_error(cli("ingest", str(UCI), "--mapping", str(tmp_path / "none.yaml")))


def test_file_where_nothing_is_accepted_imports_nothing(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, ROW.format(n=1).replace("EUR", "XYZ")]) + "\n")
    proc = cli("ingest", str(path))
    assert "rows in 1 = accepted 0 + rejected 1" in proc.stdout
    assert "nothing imported" in one_line_error(proc)
    assert "no snapshots yet" in cli("snapshots", check=True).stdout
