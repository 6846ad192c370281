"""The synthetic portfolio generator: realistic, deterministic, with exactly the bad rows it claims."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
import zoneinfo
from datetime import date
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from comms import csvsafe
from comms.errors import FileFormatError, InputError
from comms.models import CUSTOMER_FIELDS, FIELDS
from comms.sample import COLUMNS, DEFECTS, generate, summary_of, write
from comms.sample import output as sample_output
from comms.sample.defects import ADVERSARIAL_NAMES

AS_OF = date(2025, 6, 30)
SCRIPTS = {"he-IL": "HEBREW", "zh-CN": "CJK", "ru-RU": "CYRILLIC"}
CURRENCY = {"en-US": "USD", "it-IT": "EUR", "pl-PL": "PLN", "ru-RU": "RUB", "he-IL": "ILS", "zh-CN": "CNY"}
COUNTRY = {"en-US": "US", "it-IT": "IT", "pl-PL": "PL", "ru-RU": "RU", "he-IL": "IL", "zh-CN": "CN"}
MONEY = re.compile(r"\d+\.\d{2}")
EMAIL = re.compile(r"[a-z0-9.]+@example\.(com|net|org)")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ZONES = zoneinfo.available_timezones()  # scans the disk: once


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """20,000 customers: the size a demo uses, big enough for every rare case to show up."""
    return generate(20_000, seed=11, as_of=AS_OF)


@pytest.fixture(scope="module")
def portfolio(table) -> pd.DataFrame:
    return table.to_pandas()


def _valid_date(text) -> bool:
    try:
        return isinstance(text, str) and date.fromisoformat(text) is not None and len(text) == 10
    except ValueError:
        return False


def _defects(record: dict) -> list[str]:
    """What an independent reader finds wrong with one row (the test's own idea of a bad row)."""
    row = SimpleNamespace(**record)
    found = []
    if row.customer_id is None:
        found.append("missing_customer_id")
    if row.email is not None and not EMAIL.fullmatch(row.email):
        found.append("bad_email")
    if row.currency not in CURRENCY.values():
        found.append("unknown_currency")
    if row.locale not in CURRENCY:
        found.append("unknown_locale")
    if row.timezone not in ZONES:
        found.append("unknown_timezone")
    if CONTROL.search(row.name):
        found.append("control_char_in_name")
    if len(row.name) > FIELDS["name"].max_length:
        found.append("name_too_long")
    if row.amount.startswith("-"):
        found.append("negative_amount")
    elif not MONEY.fullmatch(row.amount):
        found.append("non_numeric_amount")
    for col in ("issue_date", "due_date"):
        value = getattr(row, col)
        if not _valid_date(value):
            found.append("impossible_date" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else "unparseable_date")
    return found


@pytest.fixture(scope="module")
def flagged(table, portfolio) -> pd.Series:
    return pd.Series([_defects(r) for r in table.to_pylist()], index=portfolio.index)


def test_same_seed_and_as_of_give_byte_identical_files_and_another_seed_does_not(tmp_path):
    for ext in ("csv", "parquet", "jsonl", "xlsx"):
        n = 300 if ext == "xlsx" else 3000
        a = write(generate(n, seed=5, as_of=AS_OF), tmp_path / f"a.{ext}").read_bytes()
        b = write(generate(n, seed=5, as_of=AS_OF), tmp_path / f"b.{ext}").read_bytes()
        c = write(generate(n, seed=6, as_of=AS_OF), tmp_path / f"c.{ext}").read_bytes()
        assert a == b, ext
        assert a != c, ext


def test_files_are_identical_across_processes_whatever_the_hash_seed(tmp_path):
    script = ("import sys; from datetime import date; from comms.sample import generate, write; "
              "write(generate(2000, seed=9, as_of=date(2025, 6, 30)), sys.argv[1])")
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}.csv"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed})
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_columns_are_the_canonical_invoice_layout(portfolio):
    assert list(portfolio.columns) == list(COLUMNS)
    assert set(COLUMNS) <= set(FIELDS)
    assert "balance" not in portfolio and "days_past_due" not in portfolio


def test_every_locale_has_its_country_currency_and_real_time_zones(portfolio, flagged):
    good = portfolio[flagged.str.len() == 0]
    assert set(good.locale) == set(CURRENCY)
    for locale, rows in good.groupby("locale"):
        assert set(rows.country) == {COUNTRY[locale]}
        assert set(rows.currency) == {CURRENCY[locale]}
        assert set(rows.timezone) <= ZONES
    zones = good.groupby("locale").timezone.unique()
    assert {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
            "America/Phoenix"} <= set(zones["en-US"])
    assert {"Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "Asia/Vladivostok"} <= set(zones["ru-RU"])
    assert set(zones["he-IL"]) == {"Asia/Jerusalem"} and set(zones["zh-CN"]) == {"Asia/Shanghai"}


@pytest.mark.parametrize("locale", sorted(SCRIPTS))
def test_names_are_written_in_their_own_script(portfolio, locale):
    customers = portfolio[portfolio.locale == locale].drop_duplicates("customer_id")
    script = SCRIPTS[locale]
    for text in pd.concat([customers.name, customers.given_name.dropna(), customers.city]):
        letters = [ch for ch in text if ch.isalpha()]
        assert letters and all(unicodedata.name(ch).startswith(script) for ch in letters), text


def test_polish_names_keep_their_diacritics(portfolio):
    names = portfolio[portfolio.locale == "pl-PL"].drop_duplicates("customer_id").name
    assert names.str.contains("[ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]").mean() > 0.2


def test_customer_fields_repeat_identically_on_every_invoice_row(portfolio):
    with_id = portfolio[portfolio.customer_id.notna()]
    customer_cols = [c for c in COLUMNS if c in CUSTOMER_FIELDS and c != "customer_id"]
    distinct = with_id[["customer_id", *customer_cols]].groupby("customer_id").nunique(dropna=False)
    assert (distinct == 1).all().all()
    counts = with_id.groupby("customer_id").size()
    assert counts.min() == 1 and counts.max() == 6 and 2.7 < counts.mean() < 3.3
    assert portfolio.invoice_number.is_unique


def test_bad_rows_are_about_the_share_asked_with_one_defect_each(table, portfolio, flagged):
    summary = summary_of(table)
    bad = flagged[flagged.str.len() > 0]
    assert len(bad) == summary.bad_rows
    assert abs(len(bad) / len(portfolio) - 0.005) < 0.001
    assert (bad.str.len() == 1).all()
    assert bad.str[0].value_counts().to_dict() == {k: v for k, v in summary.defects.items() if v}
    assert set(bad.str[0]) == set(DEFECTS)


def test_bad_share_option_changes_the_number_of_bad_rows():
    none = summary_of(generate(2000, seed=1, as_of=AS_OF, bad_share=0))
    many = summary_of(generate(2000, seed=1, as_of=AS_OF, bad_share=0.05))
    assert none.bad_rows == 0
    assert abs(many.bad_rows / many.rows - 0.05) < 0.005


def test_hostile_names_are_present_and_otherwise_valid(portfolio, flagged):
    hostile = portfolio[portfolio.name.isin([n for n, _ in ADVERSARIAL_NAMES])]
    assert set(hostile.name) == {n for n, _ in ADVERSARIAL_NAMES}
    assert (flagged[hostile.index].str.len() == 0).all()


def test_emails_are_ascii_on_reserved_domains(portfolio, flagged):
    emails = portfolio[flagged.str.len() == 0].email.dropna()
    assert emails.str.fullmatch(EMAIL.pattern).all()
    assert emails.str.endswith("@example.org").any() and emails.str.endswith("@example.com").any()


def test_amounts_are_plausible_for_each_currency(portfolio, flagged):
    good = portfolio[flagged.str.len() == 0]
    median = good.assign(a=good.amount.astype(float)).groupby("currency").a.median()
    assert 30 < median["USD"] < 500 and 30 < median["EUR"] < 500
    assert median["RUB"] > 40 * median["EUR"] and median["CNY"] > 4 * median["EUR"]
    assert (good.open_amount.astype(float) <= good.amount.astype(float)).all()


def test_aging_is_mostly_recent_with_a_long_tail(portfolio, flagged):
    good = portfolio[flagged.str.len() == 0]
    days = (pd.Timestamp(AS_OF) - pd.to_datetime(good.due_date)).dt.days
    assert (days <= 30).mean() > 0.55
    assert (days > 365).mean() > 0.005
    assert (pd.to_datetime(good.issue_date) < pd.to_datetime(good.due_date)).all()
    assert (pd.to_datetime(good.customer_since) <= pd.to_datetime(good.issue_date)).all()


def test_customers_show_disputes_opt_outs_and_broken_promises_in_realistic_shares(portfolio):
    c = portfolio.drop_duplicates("customer_id")
    assert 0.01 < c.dispute.mean() < 0.035
    assert 0.005 < c.do_not_contact.mean() < 0.02
    assert 0.02 < (~c.consent_email).mean() < 0.06
    assert (c.broken_promises == 0).mean() > 0.7 and set(c.broken_promises) == {0, 1, 2, 3, 4}
    billed, paid = c.billed_history.astype(float), c.paid_history.astype(float)
    ratio = (paid / billed)[billed > 0]
    assert (paid <= billed).all()
    assert np.histogram(ratio, bins=5, range=(0, 1))[0].min() > 0   # spread over the whole range


def test_streamed_csv_has_the_same_bytes_as_csvsafe_write_table(tmp_path):
    table = generate(1500, seed=2, as_of=AS_OF)
    ours = write(table, tmp_path / "ours.csv").read_bytes()
    reference = csvsafe.write_table(table, tmp_path / "ref.csv").read_bytes()
    assert ours == reference
    assert b"\"'=HYPERLINK(\"\"http://x\"\")\"" in ours


def test_parquet_and_jsonl_read_back_to_the_same_rows(tmp_path):
    table = generate(1500, seed=3, as_of=AS_OF)
    assert pq.read_table(write(table, tmp_path / "p.parquet")).equals(table.replace_schema_metadata(None))
    lines = write(table, tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == table.to_pylist()


def test_xlsx_keeps_formula_like_names_as_text(tmp_path):
    table = generate(400, seed=4, as_of=AS_OF)
    sheet = openpyxl.load_workbook(write(table, tmp_path / "p.xlsx"), read_only=True).active
    header, *rows = sheet.iter_rows()
    names = [row[COLUMNS.index("name")] for row in rows]
    formula = [cell for cell in names if str(cell.value).startswith("=HYPERLINK")]
    assert formula and all(cell.data_type == "s" for cell in formula)
    assert len(rows) == table.num_rows


def test_xlsx_refuses_more_rows_than_a_sheet_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_output, "XLSX_MAX_ROWS", 100)
    with pytest.raises(InputError, match="Excel"):
        write(generate(100, seed=1, as_of=AS_OF), tmp_path / "big.xlsx")
    assert not list(tmp_path.iterdir())


def test_unknown_output_extension_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match=r"\.csv"):
        write(pa.table({"a": [1]}), tmp_path / "p.txt")


def test_locales_option_limits_and_accepts_short_codes():
    table = generate(500, seed=1, locales="he,zh", as_of=AS_OF, bad_share=0)
    assert set(table.column("locale").to_pylist()) == {"he-IL", "zh-CN"}
    with pytest.raises(InputError, match="fr"):
        generate(10, locales="en,fr")


def test_command_writes_file_and_prints_one_summary_line(cli, tmp_path):
    out = tmp_path / "portfolio.csv"
    proc = cli("sample-data", "--rows", "300", "--out", str(out), "--as-of", "2025-06-30", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "300 customers" in lines[0] and str(out) in lines[0]
    assert out.read_bytes() == write(generate(300, seed=3, as_of=AS_OF), tmp_path / "same.csv").read_bytes()


def test_command_help_has_an_example_and_errors_are_one_line(cli, tmp_path):
    assert "Example: comms sample-data" in cli("sample-data", "--help").stdout
    for args in (["--out", str(tmp_path / "p.txt")], ["--out", str(tmp_path / "p.csv"), "--locales", "xx"],
                 ["--out", str(tmp_path / "p.xlsx"), "--rows", "2000000"]):
        proc = cli("sample-data", "--rows", "10", *args)
        assert proc.returncode == 2
        assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("p.*"))
