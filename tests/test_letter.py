"""PDF letters: what a customer, a bank app and an archivist see in the real PDF files.

The letters are rendered once per module (a handful of customers, one of them with 40 invoices) and read
back with the tools people use: pdftotext, pdffonts, pdfinfo, pdfimages, pdftoppm + zbarimg, tesseract,
qpdf and pypdf.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import shutil
import subprocess
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest
from pypdf import PdfReader

from comms.config import Settings
from comms.payments import LinkSigner
from comms.payments.links import extract_token
from comms.render.context import ContextBuilder
from comms.render.letter import LetterRenderer
from comms.render.letters.epc import parse_epc_payload, valid_creditor_reference
from comms.render.samples import hostile_customer, sample_customer
from comms.render.sandbox import RenderError
from comms.segment.config import load_segments

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 6, 30)
CAMPAIGN = "letters-test"


def make_kit(home: Path) -> SimpleNamespace:
    settings = Settings.load(home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    signer = LinkSigner.from_settings(settings)
    builder = ContextBuilder(settings, segments, signer, CAMPAIGN, as_of=AS_OF)
    return SimpleNamespace(settings=settings, segments=segments, signer=signer, builder=builder,
                           renderer=LetterRenderer(settings, segments))


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    home = tmp_path_factory.mktemp("letters") / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("COMMS_"):
                mp.delenv(key)
        mp.setenv("COMMS_HOME", str(home))
        yield make_kit(home)


@pytest.fixture(scope="module")
def letters(kit, tmp_path_factory):
    """One letter per case, rendered together the fast way; each as (context, Letter, path)."""
    out = tmp_path_factory.mktemp("pdf")
    cases = {
        "it": ("final", sample_customer("it-IT", AS_OF)),
        "it2": ("final", replace(sample_customer("it-IT", AS_OF), customer_id="S-IT2", name="Marco Rossi")),
        "it3": ("final", replace(sample_customer("it-IT", AS_OF), customer_id="S-IT3", name="Anna Verdi")),
        "us": ("final", sample_customer("en-US", AS_OF)),
        "he": ("hardship", sample_customer("he-IL", AS_OF)),
        "zh": ("final", sample_customer("zh-CN", AS_OF)),
        "ru": ("firm", sample_customer("ru-RU", AS_OF)),
        "pl": ("early", sample_customer("pl-PL", AS_OF)),
        "forty": ("firm", replace(sample_customer("en-US", AS_OF, invoices=40), customer_id="S-FORTY")),
        "hostile": ("firm", hostile_customer(AS_OF)),
    }
    contexts = {name: kit.builder.build(customer, segment) for name, (segment, customer) in cases.items()}
    rendered = list(kit.renderer.render_many(list(contexts.values())))
    result = {}
    for (name, context), letter in zip(contexts.items(), rendered):
        path = out / f"{name}.pdf"
        path.write_bytes(letter.pdf)
        result[name] = SimpleNamespace(context=context, letter=letter, path=path)
    return result


def tool(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


def text(path: Path, page: int | None = None, layout: bool = False) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    out = tool("pdftotext", *(["-layout"] if layout else []), *pages, str(path), "-")
    return out.replace("\xa0", " ").replace("\u202f", " ")


def plain(value: str) -> str:
    return value.replace("\xa0", " ").replace("\u202f", " ")


def words(path: Path, page: int = 1) -> list[tuple[float, float, float, str]]:
    """(xMin, yMin, xMax, word) of a page, from pdftotext -bbox."""
    out = tool("pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-")
    return [(float(a), float(b), float(c), w) for a, b, c, w in
            re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', out)]


def decode_qr_codes(path: Path, tmp_path: Path) -> list[str]:
    """Every QR code on page 1, as a phone would read it from a 200 dpi print."""
    png = tmp_path / f"{path.stem}-qr"
    tool("pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "1", "-singlefile", str(path), str(png))
    xml = subprocess.run(["zbarimg", "-q", "--xml", f"{png}.png"], capture_output=True, text=True,
                         timeout=60).stdout
    return re.findall(r"<data><!\[CDATA\[(.*?)\]\]></data>", xml, re.S)


# -- what the customer reads ------------------------------------------------------------------------------
def test_letter_shows_the_customers_name_and_amount_in_their_locale(letters):
    for name, expected_amount in (("it", "472,50 €"), ("us", "$472.50"), ("pl", "zł")):
        case = letters[name]
        content = text(case.path)
        assert case.context["customer"]["name"] in content
        assert plain(case.context["balance"]) in content
        assert expected_amount in plain(case.context["balance"])
    assert "Gentile Giulia," in text(letters["it"].path)


def test_hostile_name_is_printed_as_text_not_markup(letters):
    content = text(letters["hostile"].path)
    assert "<script>alert(1)</script> O'Brien & Sons {{ 7*7 }}" in content
    assert "1 <b>Main</b> St & Co" in content


def test_every_font_of_every_script_is_embedded(letters):
    for name, family in (("it", "NotoSans"), ("ru", "NotoSans"), ("he", "NotoSansHebrew"), ("zh", "NotoSansCJK")):
        rows = tool("pdffonts", str(letters[name].path)).splitlines()[2:]
        assert rows, name
        assert all(row.split()[-5] == "yes" for row in rows), (name, rows)  # the "emb" column
        assert any(family in row.replace("-", "") for row in rows), (name, rows)


def test_paper_follows_the_country_and_the_file_says_pdfa_3b(letters):
    assert "612 x 792 pts (letter)" in tool("pdfinfo", str(letters["us"].path))
    assert "595.276 x 841.89 pts (A4)" in tool("pdfinfo", str(letters["it"].path))
    assert letters["us"].letter.paper == "Letter" and letters["it"].letter.paper == "A4"
    for case in letters.values():
        meta = tool("pdfinfo", "-meta", str(case.path))
        assert "<pdfaid:part>3</pdfaid:part>" in meta and "<pdfaid:conformance>B</pdfaid:conformance>" in meta
        assert "No syntax or stream encoding errors" in tool("qpdf", "--check", str(case.path))
    reader = PdfReader(letters["he"].path)
    root = reader.trailer["/Root"]
    intent = root["/OutputIntents"][0]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/DestOutputProfile"].get_object()["/N"] == 3
    assert "/Filter" not in root["/Metadata"].get_object()  # XMP readable without decompression
    assert root["/Lang"] == "he-IL" and len(reader.trailer["/ID"]) == 2
    info = reader.metadata
    assert info.title in root["/Metadata"].get_object().get_data().decode()
    assert "/EmbeddedFiles" not in root.get("/Names", {})


def test_the_address_sits_in_the_envelope_window(letters):
    mm, inch = 72 / 25.4, 72.0
    # DIN 5008 form B recipient zone on A4; the part of a #10 window that shows the folded Letter sheet
    # wherever it settles in the envelope.
    windows = {"it": (20 * mm, 105 * mm, 62.7 * mm, 90 * mm), "us": (0.875 * inch, 5.375 * inch, 2.042 * inch,
                                                                       3.167 * inch)}
    for name, (left, right, top, bottom) in windows.items():
        case = letters[name]
        lines = [case.context["customer"]["name"], *case.context["customer"]["address_lines"]]
        wanted = {word for line in lines for word in line.split()}
        placed = [w for w in words(case.path) if w[3] in wanted and w[1] < 300]
        assert {w[3] for w in placed} == wanted, name
        for x0, y0, x1, word in placed:
            assert left <= x0 and x1 <= right and top - 1.5 <= y0 <= bottom - 8, (name, word, x0, y0, x1)


def test_sha256_is_that_of_the_pdf_bytes(letters):
    for case in letters.values():
        assert case.letter.sha256 == hashlib.sha256(case.path.read_bytes()).hexdigest()


# -- what a phone and a banking app read -----------------------------------------------------------------
def test_qr_codes_decode_to_the_signed_link_and_a_valid_epc_payment(kit, letters, tmp_path):
    case = letters["it"]
    codes = decode_qr_codes(case.path, tmp_path)
    link = case.context["links"]["pay"]
    assert link in codes
    claims = kit.signer.verify(extract_token(link))
    assert (claims.campaign, claims.customer_id) == (CAMPAIGN, "S-IT")
    epc = next(parse_epc_payload(c) for c in codes if c.startswith("BCD"))
    assert (epc["service_tag"], epc["version"], epc["charset"], epc["identification"]) == ("BCD", "002", "1", "SCT")
    assert epc["iban"] == "DE89370400440532013000" and epc["bic"] == "COBADEFFXXX"
    assert epc["name"] == "Example Collections Ltd (demo)"
    assert epc["amount"] == f"EUR{case.context['balance_amount']:.2f}" == "EUR472.50"
    assert valid_creditor_reference(epc["reference"]) and epc["reference"].endswith("SIT")
    assert epc["reference"][:4] + " " in text(case.path)  # the same reference printed for people


def test_only_eur_customers_get_a_sepa_code(letters, tmp_path):
    codes = decode_qr_codes(letters["us"].path, tmp_path)
    assert codes == [letters["us"].context["links"]["pay"]]


def test_each_letter_cut_from_a_batch_carries_only_its_own_images(letters):
    for name in ("it", "it2", "it3"):
        listing = tool("pdfimages", "-list", str(letters[name].path)).splitlines()[2:]
        assert len(listing) == 2, listing  # its link QR and its EPC QR, not the other customers'
    assert len(tool("pdfimages", "-list", str(letters["us"].path)).splitlines()[2:]) == 1


# -- layout -----------------------------------------------------------------------------------------------
def test_forty_invoices_run_over_pages_with_the_header_repeated(letters):
    case = letters["forty"]
    assert case.letter.pages == 2
    first, second = text(case.path, 1), text(case.path, 2)
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    for page in (1, 2):
        assert re.search(r"Invoice\s+Due\s+Open", text(case.path, page, layout=True)), page
    numbers = re.findall(r"INV-2026-1\d{3}", first + second)
    assert sorted(numbers) == [f"INV-2026-{1001 + i}" for i in range(40)]
    assert "Example Collections Ltd (demo)" in second  # the footer is on every page
    assert "Page 1 of 1" in text(letters["us"].path)


def test_hebrew_letter_reads_right_to_left(letters, tmp_path):
    case = letters["he"]
    # pdftotext -bbox gives right-to-left words in visual order, letters reversed: turn them back.
    placed = [(x0, y0, x1, word[::-1]) for x0, y0, x1, word in words(case.path)]
    right_margin = 595.28 - 20 / 25.4 * 72
    greeting = [w for w in placed if w[3].startswith("שלום") or w[3] == "שרה"]
    assert greeting and max(w[2] for w in greeting) == pytest.approx(right_margin, abs=2)
    invoice_col = next(w for w in placed if w[3] == "חשבונית")
    open_col = next(w for w in placed if w[3] == "יתרה")
    assert invoice_col[0] > open_col[0] + 200  # the first column is on the right
    png = tmp_path / "he"
    tool("pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", str(case.path), str(png))
    ocr = tool("tesseract", f"{png}.png", "-", "-l", "heb")
    assert "שרה" in ocr and "כהן" in ocr


def _glyph_ids(reader: PdfReader) -> list[str]:
    streams = []
    for page in reader.pages:
        streams.append(page.get_contents().get_data())
        for xobject in page["/Resources"].get("/XObject", {}).values():
            xobject = xobject.get_object()
            if xobject.get("/Subtype") == "/Form":
                streams.append(xobject.get_data())
    ids = []
    for data in streams:
        for array in re.findall(rb"\[([^\]]*)\]\s*TJ", data):
            for hexstring in re.findall(rb"<([0-9a-fA-F]+)>", array):
                ids += [hexstring[i:i + 4].decode() for i in range(0, len(hexstring), 4)]
    return ids


def test_chinese_letter_has_no_missing_glyphs(letters, tmp_path):
    case = letters["zh"]
    glyphs = _glyph_ids(PdfReader(case.path))
    assert len(glyphs) > 500 and "0000" not in glyphs  # glyph 0 is the "missing glyph" box
    content = text(case.path)
    assert "采取进一步行动前的最后通知" in content and "王秀英" in content
    png = tmp_path / "zh"
    tool("pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "1", "-singlefile", str(case.path), str(png))
    ocr = tool("tesseract", f"{png}.png", "-", "-l", "chi_sim").replace(" ", "")
    assert "最后通知" in ocr and "秀英" in ocr


def test_static_blocks_laid_out_once_sit_where_they_would_have_been(kit, letters, tmp_path):
    case = letters["it3"]  # the third Italian letter of the batch: its static blocks were stamped
    inline = LetterRenderer(kit.settings, kit.segments, stamp_static=False).render(case.context)
    assert inline.pdf != case.letter.pdf
    (tmp_path / "inline.pdf").write_bytes(inline.pdf)
    stamped, laid_out = words(case.path), words(tmp_path / "inline.pdf")
    assert [w[3] for w in stamped] == [w[3] for w in laid_out]
    for a, b in zip(stamped, laid_out):
        assert a[:3] == pytest.approx(b[:3], abs=0.05), (a, b)


# -- safety and limits -------------------------------------------------------------------------------------
class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Counter.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_template_cannot_embed_local_files_or_fetch_from_the_network(kit, tmp_path, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    body = templates / "firm_notice" / "letter.html"
    body.write_text(
        '<link rel="attachment" href="file:///etc/passwd"><a rel="attachment" href="file:///etc/hosts">x</a>'
        '<img src="http://169.254.169.254/latest/meta-data/"><img src="file:///etc/passwd">'
        f'<img src="http://127.0.0.1:{port}/tracker.png"><p>{{{{ t.letter.intro }}}}</p>' + body.read_text())
    (templates / "firm_notice" / "letter.css").write_text(
        f'@import url("http://127.0.0.1:{port}/evil.css"); .summary {{ background: url(file:///etc/shadow) }}')
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(templates))
    settings = Settings.load(kit.settings.home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, kit.signer, CAMPAIGN, as_of=AS_OF)
    renderer = LetterRenderer(settings, segments)
    letter = renderer.render(builder.build(sample_customer("en-US", AS_OF), "firm"))
    server.shutdown()

    assert _Counter.hits == []
    assert b"root:" not in letter.pdf
    reader = PdfReader(io.BytesIO(letter.pdf))
    assert "/Names" not in reader.trailer["/Root"] and "/AF" not in reader.trailer["/Root"]
    assert not any(annot.get_object().get("/Subtype") == "/FileAttachment"
                   for page in reader.pages for annot in page.get("/Annots", []))
    blocked = list(renderer.engine.fetcher.blocked)
    for url in ("file:///etc/passwd", "http://169.254.169.254/latest/meta-data/",
                f"http://127.0.0.1:{port}/tracker.png", f"http://127.0.0.1:{port}/evil.css", "file:///etc/shadow"):
        assert url in blocked, (url, blocked)
    assert "Our records show" in text_of(letter.pdf, tmp_path)  # the letter itself still renders


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return text(path)


def test_a_render_over_its_time_limit_fails_with_one_clear_error(kit):
    slow = LetterRenderer(kit.settings, kit.segments, seconds_per_letter=0, base_seconds=0.002)
    with pytest.raises(RenderError, match="took longer than"):
        slow.render(kit.builder.build(sample_customer("pl-PL", AS_OF, invoices=60), "firm"))


def test_a_letter_over_the_page_limit_is_reported_and_the_others_still_come(kit):
    short = LetterRenderer(kit.settings, kit.segments, max_pages=1)
    ok = kit.builder.build(sample_customer("en-US", AS_OF), "firm")
    long = kit.builder.build(replace(sample_customer("en-US", AS_OF, invoices=40), customer_id="S-LONG"), "firm")
    failed = []
    done = list(short.render_many([ok, long], on_error=lambda context, error: failed.append((context, error))))
    assert [letter.customer_id for letter in done] == ["S-EN"]
    assert failed[0][0] is long and "2 pages, more than the limit of 1" in str(failed[0][1])


def test_a_render_that_grows_the_process_past_its_ceiling_is_refused(kit, monkeypatch):
    monkeypatch.setenv("COMMS_LETTER_MAX_RSS_MB", "50")
    greedy = LetterRenderer(Settings.load(kit.settings.home), kit.segments)
    with pytest.raises(RenderError, match="over the 50 MB allowed"):
        greedy.render(kit.builder.build(sample_customer("ru-RU", AS_OF), "firm"))
