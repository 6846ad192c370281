"""Mapping files: rename, map values, set constants, derive and fill fields, keep extra columns, so an
outsider's export imports as it is; a wrong mapping is one clear error naming the file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from comms.errors import MappingError
from comms.ingest import load_mapping, read_and_validate

AS_OF = date(2024, 6, 30)
EXPORT = ("Kundennr;Name;Land;Offen;Fällig;Streit;Bonität;Alter\n"
          "K-1;Jörg Weiß;DE;1.234,56;31.05.2024;J;gut;41\n"
          "K-2;Ute Ohm;DE;0,5;15.07.2024;N;schlecht;NA\n"
          "K-3;Kai Uhl;DE;12,345;15.07.2024;N;gut;alt\n")
MAPPING = """
name: ERP export
layout: customer
read: {delimiter: ";", decimal: ",", thousands: ".", date_format: "%d.%m.%Y"}
columns: {customer_id: Kundennr, name: Name, country: Land, open_amount: Offen, due_date: Fällig,
          dispute: Streit, outcome: Bonität}
values:
  dispute: {j: true, n: false}
  outcome: {gut: 0, schlecht: 1}
constants: {locale: de-DE, timezone: Europe/Berlin, currency: EUR}
derive:
  balance: "open_amount / 3"
  given_name: "upper(name)"
extra: {age: Alter}
"""


def setup(tmp_path, mapping: str = MAPPING, export: str = EXPORT):
    (tmp_path / "export.csv").write_text(export, encoding="cp1252")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    return tmp_path / "export.csv", tmp_path / "m.yaml"


def test_mapping_imports_an_export_without_editing_it(tmp_path):
    path, mapping = setup(tmp_path)
    customers, invoices, rejects, stats = read_and_validate(path, mapping, AS_OF)
    k1, k2 = customers.to_pylist()
    assert k1["customer_id"] == "K-1" and k1["name"] == "Jörg Weiß" and k1["given_name"].startswith("JÖRG WEI")
    assert k1["balance"] == Decimal("411.52")  # 1234.56 / 3 = 411.52, rounded half-even once
    assert k2["balance"] == Decimal("0.17")
    assert k1["days_past_due"] == 30 and k2["days_past_due"] == 0
    assert (k1["dispute"], k2["dispute"], k1["outcome"], k2["outcome"]) == (True, False, 0, 1)
    assert (k1["age"], k2["age"]) == (41.0, None)
    assert invoices.column("due_date").to_pylist() == [date(2024, 5, 31), date(2024, 7, 15)]
    got = dict(zip(rejects.column("line").to_pylist(), rejects.column("reasons").to_pylist()))
    assert got == {4: "age: not a number 'alt'; open_amount: more than 2 decimal places '12.345'"}
    assert stats.mapping_name == "ERP export" and stats.extras == ["age"]


def test_money_derived_from_floats_rounds_half_even_from_its_decimal_form(tmp_path):
    export = "id;x\n1;2.675\n2;0.125\n3;-0.0\n"
    mapping = ("read: {delimiter: ';'}\ncolumns: {customer_id: id}\n"
               "constants: {name: N, country: IT, locale: it-IT, timezone: Europe/Rome, currency: EUR, days_past_due: 0}\n"
               "derive: {balance: 'x * 1'}\n")
    path, m = setup(tmp_path, mapping, export)
    customers, _, _, _ = read_and_validate(path, m, AS_OF)
    assert customers.column("balance").to_pylist() == [Decimal("2.68"), Decimal("0.12"), Decimal("0.00")]


@pytest.mark.parametrize("text, expected", [
    ("colums: {}", "unknown key 'colums'"),
    ("columns: {balanse: X}", "did you mean 'balance'?"),
    ("constants: {currency: XYZ}", "currency 'XYZ' is not a known currency"),
    ("constants: {timezone: Mars/Base}", "is not a known timezone"),
    ("layout: rows", "layout must be customer or invoice"),
    ("fill: {seed: 1, fields: {email: fake_name}}", "fake_name fills name, not email"),
    ("derive: {balance: 'import os'}", "derive balance"),
    ("extra: {Age: Alter}", "snake_case"),
    ("read: {date_format: '%d %B %Y'}", "only %Y, %m, %d and %y"),
    ("columns: [1, 2", "not valid YAML"),
])
def test_a_wrong_mapping_is_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    message = str(err.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_derive_naming_an_unknown_column_lists_the_columns(tmp_path):
    path, mapping = setup(tmp_path, MAPPING.replace("open_amount / 3", "Offen2 / 3"))
    with pytest.raises(MappingError, match=r"derive balance: unknown column 'Offen2'.*'Kundennr'"):
        read_and_validate(path, mapping, AS_OF)


def test_yes_and_no_in_a_values_map_stay_text(tmp_path):
    mapping = MAPPING.replace("{j: true, n: false}", "{J: yes, N: no}")
    path, m = setup(tmp_path, mapping)
    customers, _, _, _ = read_and_validate(path, m, AS_OF)
    assert customers.column("dispute").to_pylist() == [True, False]
