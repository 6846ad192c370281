"""The print batch, the campaign's letter files, previews, and the rules behind the payment codes."""

from __future__ import annotations

import csv
import hashlib
import subprocess
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from comms.errors import ConfigError
from comms.payments import LinkSigner
from comms.render.context import ContextBuilder
from comms.render.letter import LetterRenderer, preview, produce_letters, write_print_batch
from comms.render.letters.epc import (Beneficiary, creditor_reference, epc_payload, parse_epc_payload,
                                      valid_creditor_reference, valid_iban)
from comms.render.letters.paper import paper_for
from comms.render.letters.printbatch import postal_code
from comms.render.samples import sample_customer
from comms.segment.config import load_segments

AS_OF = date(2026, 6, 30)


@pytest.fixture
def kit(settings):
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "autumn", as_of=AS_OF)
    return settings, segments, builder


def customers():
    """Customers in three countries, out of postal order, one of them with a two-page letter."""
    it = sample_customer("it-IT", AS_OF)
    us = sample_customer("en-US", AS_OF)
    return [
        ("final", replace(it, customer_id="IT-ROMA", name="Paolo Neri",
                          address_lines=("Via Appia 1", "00184 Roma RM"))),
        ("firm", replace(sample_customer("en-US", AS_OF, invoices=40), customer_id="US-LONG")),
        ("final", replace(it, customer_id="IT-MILANO")),  # 20121 Milano
        ("early", replace(sample_customer("pl-PL", AS_OF), customer_id="PL-WAW")),
        ("final", replace(us, customer_id="US-NY", name="=HYPERLINK(\"http://x\")",
                          address_lines=("1 Main St", "New York, NY 10001"))),
        ("final", replace(it, customer_id="IT-BARI", name="Lucia Gallo",
                          address_lines=("Via Sparano 5", "70121 Bari BA"))),
    ]


def pdf_text(path: Path, first: int, last: int) -> str:
    return subprocess.run(["pdftotext", "-f", str(first), "-l", str(last), str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_print_batch_is_in_postal_order_with_blank_backs_and_a_loadable_manifest(kit, tmp_path):
    settings, segments, builder = kit
    contexts = [builder.build(customer, segment) for segment, customer in customers()]
    renderer = LetterRenderer(settings, segments)
    letters = list(renderer.render_many(contexts))
    pdf_path, manifest_path = write_print_batch(zip(letters, contexts), tmp_path / "print", duplex=True)

    rows = list(csv.DictReader(manifest_path.open(encoding="utf-8")))
    assert [r["customer_id"] for r in rows] == ["IT-ROMA", "IT-MILANO", "IT-BARI", "PL-WAW", "US-NY", "US-LONG"]
    assert [r["paper"] for r in rows] == ["A4"] * 4 + ["Letter"] * 2
    assert [(int(r["first_page"]), int(r["pages"]), int(r["sheets"])) for r in rows] == [
        (1, 1, 1), (3, 1, 1), (5, 1, 1), (7, 1, 1), (9, 1, 1), (11, 2, 1)]
    assert rows[0]["address_line_1"] == "Paolo Neri" and rows[0]["address_line_3"] == "00184 Roma RM"
    assert rows[4]["address_line_1"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    by_id = {letter.customer_id: letter for letter in letters}
    assert all(r["sha256"] == by_id[r["customer_id"]].sha256 for r in rows)

    reader = PdfReader(pdf_path)
    assert len(reader.pages) == 12  # 7 pages of letters, 5 blank backs
    assert "No syntax or stream encoding errors" in subprocess.run(
        ["qpdf", "--check", str(pdf_path)], capture_output=True, text=True).stdout
    assert pdf_text(pdf_path, 2, 2).strip() == ""                      # the back of Rome's letter
    assert "Lucia Gallo" in pdf_text(pdf_path, 5, 5)
    assert "Page 2 of 2" in pdf_text(pdf_path, 12, 12)                 # the long letter ends the file
    assert [round(float(p.mediabox.width)) for p in reader.pages] == [595] * 8 + [612] * 4


def test_simplex_print_batch_has_no_blank_pages(kit, tmp_path):
    settings, segments, builder = kit
    contexts = [builder.build(customer, segment) for segment, customer in customers()[:2]]
    letters = list(LetterRenderer(settings, segments).render_many(contexts))
    pdf_path, manifest_path = write_print_batch(zip(letters, contexts), tmp_path, duplex=False)
    assert len(PdfReader(pdf_path).pages) == 3
    rows = list(csv.DictReader(manifest_path.open(encoding="utf-8")))
    assert [(r["first_page"], r["sheets"]) for r in rows] == [("1", "1"), ("2", "2")]


def test_campaign_letters_are_stored_per_customer_with_their_hash(kit):
    settings, segments, builder = kit
    contexts = [builder.build(customer, segment) for segment, customer in customers()[2:5]]
    produced, pdf_path, manifest_path = produce_letters(settings, segments, contexts, "autumn", duplex=True)
    assert [customer_id for customer_id, *_ in produced] == ["IT-MILANO", "PL-WAW", "US-NY"]
    for customer_id, path, sha256, pages in produced:
        assert path.parent == settings.artifacts_dir / "autumn" / "letters"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256 and pages == 1
    assert pdf_path == settings.artifacts_dir / "autumn" / "print" / "letters.pdf"
    assert len(PdfReader(pdf_path).pages) == 6 and manifest_path.exists()


def test_preview_writes_the_pdf_and_a_picture_of_page_one(kit, tmp_path):
    settings, segments, builder = kit
    context = builder.build(sample_customer("zh-CN", AS_OF), "hardship")
    files = preview(context, settings=settings, out_dir=tmp_path, segments=segments, options={})
    assert [f.suffix for f in files] == [".pdf", ".png"]
    png = files[1].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert height / width == pytest.approx(297 / 210, rel=0.01)


def test_preview_command_prints_where_the_letter_is(cli, tmp_path):
    proc = cli("preview", "--channel", "letter", "--treatment", "final_notice", "--locale", "he-IL",
               "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pdfs, pngs = list(tmp_path.glob("*.pdf")), list(tmp_path.glob("*.png"))
    assert len(pdfs) == 1 and len(pngs) == 1 and str(pdfs[0]) in proc.stdout.replace("\n", "")


# -- the rules behind the codes and the paper ------------------------------------------------------------
def test_creditor_reference_follows_iso_11649():
    assert valid_creditor_reference("RF18 5390 0754 7034")  # the standard's own example
    assert creditor_reference("539007547034") == "RF18539007547034"
    assert creditor_reference("C-000-123") == "RF60C000123" and valid_creditor_reference("RF60C000123")
    assert creditor_reference("ÄÖÜ") is None and creditor_reference("X" * 22) is None


def test_epc_payload_lines_are_those_of_epc069_12():
    beneficiary = Beneficiary.checked(" Example  GmbH ", "de89 3704 0044 0532 0130 00", "cobadeffxxx")
    payload = epc_payload(beneficiary, Decimal("1234.5"), reference="RF18539007547034")
    assert payload.split("\n") == ["BCD", "002", "1", "SCT", "COBADEFFXXX", "Example GmbH",
                                    "DE89370400440532013000", "EUR1234.50", "", "RF18539007547034"]
    text_only = parse_epc_payload(epc_payload(beneficiary, Decimal("0"), text="Customer 7"))
    assert text_only["amount"] == "" and text_only["text"] == "Customer 7" and text_only["reference"] == ""
    with pytest.raises(ValueError):
        epc_payload(beneficiary, Decimal("1"), reference="RF18539007547034", text="both")


def test_a_wrong_creditor_iban_is_a_configuration_error(settings, monkeypatch):
    assert valid_iban("GB82 WEST 1234 5698 7654 32") and not valid_iban("DE89370400440532013001")
    monkeypatch.setenv("COMMS_CREDITOR_IBAN", "DE89370400440532013001")
    from comms.config import Settings
    with pytest.raises(ConfigError, match="creditor_iban"):
        LetterRenderer(Settings.load(settings.home))


def test_paper_and_postal_code_for_the_print_house():
    assert [paper_for(c) for c in ("US", "ca", "MX", "PH", "DE", "IT", "GB", None)] == \
        ["Letter"] * 4 + ["A4"] * 4
    assert postal_code({"address_lines": ["742 Evergreen Terrace", "Springfield, IL 62704"]}) == "62704"
    assert postal_code({"address_lines": ["ul. Świętokrzyska 18", "00-052 Warszawa"]}) == "00-052"
    assert postal_code({"postal_code": "SW1A 1AA", "address_lines": ["10 Downing St"]}) == "SW1A 1AA"


def test_lint_catches_what_would_break_or_leak_in_a_letter(settings, monkeypatch, tmp_path):
    import shutil

    from comms.config import Settings
    from comms.render.letter import lint
    from comms.render.samples import hostile_customer

    templates = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parent.parent / "templates", templates)
    body = templates / "firm_notice" / "letter.html"
    body.write_text(body.read_text() + '<img src="https://tracker.example/pixel.png" alt="">'
                    "<!--static--><p>{{ customer.greeting_name }}</p><!--/static-->")
    early = templates / "early_reminder" / "letter.html"
    early.write_text(early.read_text() + "<p>{{ customer.nmae }}</p>")
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(templates))
    settings = Settings.load(settings.home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    customers = [sample_customer("it-IT"), hostile_customer()]
    problems = {(p.severity, p.treatment, p.message.split(":")[0]): p for p in
                lint(settings, segments, ["firm_notice", "early_reminder", "final_notice"], customers)}
    assert ("error", "firm_notice", "loads https") in problems
    assert any(k[:2] == ("warning", "firm_notice") and "static block" in k[2] for k in problems)
    undefined = next(p for k, p in problems.items() if k[:2] == ("error", "early_reminder"))
    assert "nmae" in undefined.message and undefined.where
    assert not any(k[1] == "final_notice" for k in problems)  # the untouched treatment is clean
