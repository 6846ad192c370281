"""Ingest validation: every bad row lands in the rejects table with its line and all its reasons,
counts reconcile, customers are grouped and their features derived, and nothing is guessed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from comms.errors import MappingError
from comms.ingest import read_and_validate

AS_OF = date(2024, 6, 30)
HEADER = "customer_id,name,email,country,locale,timezone,currency,invoice_number,issue_date,due_date,amount,open_amount"
GOOD = "C{n},Anna Rossi,anna{n}@example.com,IT,it-IT,Europe/Rome,EUR,F{n},2024-01-01,2024-05-31,100.00,60.00"


def write(tmp_path: Path, lines: list[str], name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reasons_by_line(rejects) -> dict[int, str]:
    return dict(zip(rejects.column("line").to_pylist(), rejects.column("reasons").to_pylist()))


def test_every_bad_input_kind_is_rejected_with_its_line_and_all_reasons(tmp_path):
    rows = [HEADER, GOOD.format(n=1),
            ",No Id,x@example.com,IT,it-IT,Europe/Rome,EUR,F2,2024-01-01,2024-05-31,1,1",               # line 3
            "C3,Bad Mail,foo@,IT,it-IT,Europe/Rome,EUR,F3,2024-01-01,2024-05-31,1,1",                    # line 4
            "C4,Neg,n@example.com,IT,it-IT,Europe/Rome,EUR,F4,2024-01-01,2024-05-31,-12,abc",            # line 5
            "C5,Cur,c@example.com,IT,it-IT,Europe/Rome,XYZ,F5,2024-01-01,2024-02-30,1,1",                # line 6
            "C6,Dates,d@example.com,IT,xx-YY,Mars/Base,EUR,F6,someday,2024-05-31,1,1",                   # line 7
            'C7,"Ctl\x07Name",e@example.com,ZZ,it-IT,Europe/Rome,EUR,F7,2024-01-01,2024-05-31,1,1',      # line 8
            "C8," + "x" * 251 + ",f@example.com,IT,it-IT,Europe/Rome,EUR,F8,2024-01-01,2024-05-31,1,1",  # line 9
            "C9,Too,many,fields,IT,it-IT,Europe/Rome,EUR,F9,2024-01-01,2024-05-31,1,1"]                  # line 10
    customers, _, rejects, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    got = reasons_by_line(rejects)
    assert got[3] == "customer_id: missing"
    assert got[4] == "email: not a valid address 'foo@'"
    assert "amount: negative (-12.00)" in got[5] and "open_amount: not a number 'abc'" in got[5]
    assert "currency: unknown ISO 4217 code 'XYZ'" in got[6] and "due_date: impossible date '2024-02-30'" in got[6]
    assert {"locale: unknown 'xx-YY'", "timezone: unknown 'Mars/Base'",
            "issue_date: not a date 'someday' (expected %Y-%m-%d)"} <= set(got[7].split("; "))
    assert "name: control character" in got[8] and "country: unknown ISO 3166 country 'ZZ'" in got[8]
    assert got[9] == "name: too long (251 > 200)"
    assert got[10] == "row has 13 fields, the header has 12"
    assert stats.rows_in == 9 == stats.accepted + stats.rejected
    assert (stats.accepted, stats.rejected) == (1, 8)
    assert customers.column("customer_id").to_pylist() == ["C1"]
    assert stats.reasons_count["customer_id: missing"] == 1


def test_rejected_row_keeps_its_raw_cells(tmp_path):
    rows = [HEADER, "C4,  Neg  ,n@example.com,it,it-IT,Europe/Rome,EUR,F4,2024-01-01,2024-05-31,-12,abc"]
    _, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    row = rejects.to_pylist()[0]
    assert row["line"] == 2 and row["name"] == "  Neg  " and row["amount"] == "-12" and row["open_amount"] == "abc"


def test_one_bad_invoice_rejects_the_whole_customer(tmp_path):
    rows = [HEADER, GOOD.format(n=1),
            "C2,Bob,b@example.com,US,en-US,America/New_York,USD,F1,2024-01-01,2024-05-31,10,10",
            "C2,Bob,b@example.com,US,en-US,America/New_York,USD,F2,2024-01-01,not-a-date,10,10",
            "C2,Bob,b@example.com,US,en-US,America/New_York,USD,F3,2024-01-01,2024-05-31,10,10"]
    customers, invoices, rejects, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    got = reasons_by_line(rejects)
    assert got == {3: "customer C2 has a rejected row (line 4)",
                   4: "due_date: not a date 'not-a-date' (expected %Y-%m-%d)",
                   5: "customer C2 has a rejected row (line 4)"}
    assert customers.column("customer_id").to_pylist() == ["C1"]
    assert invoices.num_rows == 1 and stats.layout == "invoice"


def test_customer_fields_must_agree_across_invoice_rows(tmp_path):
    rows = [HEADER, GOOD.format(n=1), GOOD.format(n=1).replace("F1", "F2").replace("anna1@", "other@")]
    customers, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    got = reasons_by_line(rejects)
    assert got[3] == "email: differs from line 2 for customer C1"
    assert got[2] == "customer C1 has a rejected row (line 3)"
    assert customers.num_rows == 0


def test_invoice_number_twice_for_one_customer_is_rejected(tmp_path):
    rows = [HEADER, GOOD.format(n=1), GOOD.format(n=1).replace("100.00,60.00", "5.00,5.00"),
            GOOD.format(n=2)]
    _, _, rejects, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert reasons_by_line(rejects)[3] == "invoice_number: duplicate for this customer (line 2)"
    assert stats.accepted == 1


def test_repeated_customer_id_in_customer_rows_rejects_both(tmp_path):
    header = "customer_id,name,country,locale,timezone,currency,balance,days_past_due"
    rows = [header, "A,Ann,IT,it-IT,Europe/Rome,EUR,10.00,3", "B,Bo,IT,it-IT,Europe/Rome,EUR,5,0",
            "A,Ann2,IT,it-IT,Europe/Rome,EUR,99.00,3"]
    customers, invoices, rejects, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert reasons_by_line(rejects) == {2: "customer_id: repeated on line 4", 4: "customer_id: duplicate of line 2"}
    assert customers.column("customer_id").to_pylist() == ["B"] and stats.layout == "customer"
    assert invoices.num_rows == 0


def test_invoice_rows_become_customers_with_features(tmp_path):
    header = HEADER + ",customer_since,billed_history,paid_history,broken_promises"
    rows = [header,
            "C2,Bo,b@example.com,US,en-US,America/New_York,USD,X9,2024-05-01,2024-07-15,40.00,40.00,,,,",
            "C1,Anna,a@example.com,IT,it-IT,Europe/Rome,EUR,F1,2024-01-01,2024-02-01,100.00,100.00,2022-07-15,1000,250.5,2",
            "C1,Anna,a@example.com,IT,it-IT,Europe/Rome,EUR,F2,2024-02-01,2024-03-01,50.50,20.25,2022-07-15,1000,250.5,2",
            "C1,Anna,a@example.com,IT,it-IT,Europe/Rome,EUR,F3,2024-03-01,2024-01-10,10.00,0.00,2022-07-15,1000,250.5,2"]
    customers, invoices, _, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    c1, c2 = customers.to_pylist()
    assert c1["customer_id"] == "C1" and c2["customer_id"] == "C2"  # sorted by id
    assert c1["balance"] == Decimal("120.25")
    assert c1["days_past_due"] == 150  # oldest *open* invoice: 2024-02-01 (the paid one is older)
    assert c1["aging_bucket"] == "91-180" and c2["aging_bucket"] == "current" and c2["days_past_due"] == 0
    assert c1["invoice_count"] == 2 and c1["max_invoice_amount"] == Decimal("100.00")
    assert c1["payment_ratio"] == pytest.approx(0.2505) and c2["payment_ratio"] == 1.0
    assert c1["tenure_months"] == 23 and c2["tenure_months"] == 0
    assert c1["broken_promises"] == 2 and c2["broken_promises"] == 0
    assert invoices.column("customer_id").to_pylist() == ["C1", "C1", "C1", "C2"]
    assert str(customers.schema.field("balance").type) == "decimal128(18, 2)"
    assert str(customers.schema.field("customer_since").type) == "date32[day]"
    assert "broken_promises" in stats.defaulted_rows and "consent_email" in stats.defaulted_fields


def test_given_balance_must_match_the_open_invoices(tmp_path):
    paid = GOOD.format(n=1).replace("F1", "F0").replace("60.00", "0.00")
    rows = [HEADER + ",balance", GOOD.format(n=1) + ",60.00", paid + ",60.00", GOOD.format(n=2) + ",61.00"]
    customers, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert reasons_by_line(rejects) == {4: "balance: 61.00 is not the sum of open amounts 60.00"}
    assert customers.column("customer_id").to_pylist() == ["C1"]


def test_cells_neutralized_by_csvsafe_read_back_as_written(tmp_path):
    rows = [HEADER, "C1,'=HYPERLINK(\"x\"),a@example.com,IT,it-IT,Europe/Rome,EUR,F1,2024-01-01,2024-05-31,'-5,1"]
    customers, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert reasons_by_line(rejects) == {2: "amount: negative (-5.00)"}
    rows[1] = rows[1].replace("'-5", "5")
    customers, _, _, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert customers.column("name").to_pylist() == ['=HYPERLINK("x")']


def test_na_is_empty_but_na_as_a_country_is_namibia(tmp_path):
    header = "customer_id,name,email,country,locale,timezone,currency,balance,days_past_due"
    rows = [header, "A,Ann,NA,NA,en-NA,Africa/Windhoek,NAD,10,0"]
    customers, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert rejects.num_rows == 0
    assert customers.column("country").to_pylist() == ["NA"] and customers.column("email").to_pylist() == [None]


def test_missing_required_columns_without_a_mapping_is_one_error_listing_them(tmp_path):
    path = write(tmp_path, ["id,full name,e-mail", "1,Ann,a@example.com"])
    with pytest.raises(MappingError) as err:
        read_and_validate(path, None, AS_OF)
    message = str(err.value)
    assert "customer_id, name, country, locale, timezone, currency" in message and "'full name'" in message
    assert "\n" not in message


def test_column_names_match_ignoring_case_spaces_and_dashes(tmp_path):
    header = "Customer ID,NAME,Country,Locale,TimeZone,Currency,Balance,Days-Past-Due"
    path = write(tmp_path, [header, "A,Ann,IT,it_it,europe/rome,eur,10.5,0"])
    customers, _, _, _ = read_and_validate(path, None, AS_OF)
    row = customers.to_pylist()[0]
    assert (row["locale"], row["timezone"], row["currency"], row["balance"]) == \
        ("it-IT", "Europe/Rome", "EUR", Decimal("10.50"))


def test_ambiguous_day_month_dates_ask_for_a_format(tmp_path):
    rows = [HEADER, GOOD.format(n=1).replace("2024-01-01,2024-05-31", "01/02/2024,03/04/2024")]
    with pytest.raises(MappingError, match="day-first or month-first"):
        read_and_validate(write(tmp_path, rows), None, AS_OF)
    rows.append(GOOD.format(n=2).replace("2024-01-01,2024-05-31", "25/02/2024,13/04/2024"))
    _, invoices, _, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert str(invoices.column("due_date")[0]) == "2024-04-03"


def test_interleaved_rows_of_a_customer_are_grouped_and_sorted(tmp_path):
    c1 = GOOD.format(n=1)
    rows = [HEADER, GOOD.format(n=9), c1, GOOD.format(n=2), c1.replace("F1", "F7").replace("60.00", "5.00"),
            GOOD.format(n=2).replace("F2", "F3").replace("Anna Rossi", "Anna R.")]
    customers, invoices, rejects, stats = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert stats.layout == "invoice"
    assert customers.column("customer_id").to_pylist() == ["C1", "C9"]
    assert customers.column("balance").to_pylist() == [Decimal("65.00"), Decimal("60.00")]
    assert invoices.column("invoice_number").to_pylist() == ["F1", "F7", "F9"]
    assert reasons_by_line(rejects) == {4: "customer C2 has a rejected row (line 6)",
                                        6: "name: differs from line 4 for customer C2"}


def test_invoice_row_without_id_holds_back_the_customer_it_sits_with(tmp_path):
    orphan = "," + GOOD.format(n=1).split(",", 1)[1].replace("F1", "F5")
    rows = [HEADER, GOOD.format(n=1), orphan, GOOD.format(n=1).replace("F1", "F2"), GOOD.format(n=2)]
    customers, _, rejects, _ = read_and_validate(write(tmp_path, rows), None, AS_OF)
    assert reasons_by_line(rejects) == {2: "customer C1 has a rejected row (line 3)", 3: "customer_id: missing",
                                        4: "customer C1 has a rejected row (line 3)"}
    assert customers.column("customer_id").to_pylist() == ["C2"]
