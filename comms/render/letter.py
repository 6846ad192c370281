"""PDF letters: one customer's context in, an archival PDF/A-3b letter out; many at a time, fast.

    renderer = LetterRenderer(settings, segments)
    letter = renderer.render(context)                     # Letter(pdf, pages, sha256, paper, customer_id)
    for letter in renderer.render_many(contexts, chunk=50): ...
    produce_letters(settings, segments, contexts, "spring")  # files, print batch and manifest of a campaign

How it is fast (see letters/engine.py): letters are laid out many to a document with fonts, stylesheets and
media images prepared once per process, the static parts of a letter are laid out once and stamped, and
each letter is cut out of the document's PDF objects directly (letters/pdfwrite.py). The templates are
templates/_base/letter/ (layout, partials, stationery, print CSS) and templates/<treatment>/letter.html.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Callable

from markupsafe import escape

from ..config import Settings
from ..errors import CommsError
from . import formatting as fmt
from .context import Creditor, Messages
from .letters.compose import LetterTemplates, letter_context, letter_templates
from .letters.engine import Engine, stamp_pages
from .letters.epc import Beneficiary
from .letters.paper import CSS_CLASS
from .letters.pdfwrite import DocumentCutter, LetterMeta
from .letters.printbatch import PrintBatch, print_order, write_print_batch
from .sandbox import RenderError
from .strings import strings_for

__all__ = ["Letter", "LetterRenderer", "lint", "preview", "produce_letters", "write_print_batch", "print_order",
           "safe_file_name"]

CHUNK = 50                 # letters per batch (one document per treatment and language in it): about
                           # 1 MB of layout per letter while it lasts, so a worker stays under 300 MB
SECONDS_PER_LETTER = 2.0   # layout time limit per letter in a document ...
BASE_SECONDS = 5.0         # ... plus this allowance per document
MAX_PAGES = 25             # a letter longer than this is refused (a runaway template or invoice list)

_ENGINES: dict[tuple, Engine] = {}


def _engine(media_dir: Path) -> Engine:
    """The engine of this process and thread for a media folder: a forked worker builds its own, and
    threads never share one (WeasyPrint's font state is not thread-safe)."""
    key = (os.getpid(), threading.get_ident(), Path(media_dir).resolve())
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = Engine(Path(media_dir))
    return engine


@dataclass(frozen=True)
class Letter:
    """One rendered letter: the PDF/A-3b bytes, its page count and paper, and the SHA-256 of the bytes."""

    pdf: bytes = field(repr=False)
    pages: int
    sha256: str
    paper: str
    customer_id: str = ""


class LetterRenderer:
    """Renders letters for one configuration (templates, media, creditor); cheap to create, reuses the
    process's WeasyPrint state. ``segments`` is accepted for symmetry with the other channels."""

    def __init__(self, settings: Settings, segments=None, *, chunk: int = CHUNK,
                 seconds_per_letter: float = SECONDS_PER_LETTER, base_seconds: float = BASE_SECONDS,
                 max_pages: int = MAX_PAGES, stamp_static: bool = True):
        self.settings = settings
        self.templates_dir = Path(settings.templates_dir)
        self.chunk = max(1, int(chunk))
        self.seconds_per_letter = seconds_per_letter
        self.base_seconds = base_seconds
        self.max_pages = max_pages
        self.stamp_static = stamp_static  # False: lay out <!--static--> blocks in every letter (for comparison)
        self.max_rss_mb = float(settings.get("letter_max_rss_mb", default=1024))
        creditor = Creditor.from_settings(settings)
        self.beneficiary = Beneficiary.checked(creditor.name, creditor.iban, creditor.bic)
        self.engine = _engine(settings.media_dir)
        self._compiled: dict[str, Any] = {}

    # -- public ---------------------------------------------------------------------------------------
    def render(self, context: dict[str, Any]) -> Letter:
        """One letter (raises RenderError if it cannot be rendered)."""
        return next(self.render_many([context], chunk=1))

    def render_many(self, contexts: Iterable[dict[str, Any]], chunk: int | None = None,
                    on_error: Callable[[dict[str, Any], CommsError], None] | None = None) -> Iterator[Letter]:
        """Letters in the order of ``contexts``, laid out ``chunk`` to a document. A letter that fails raises
        its RenderError, or with ``on_error`` is reported there and skipped (the others still come)."""
        size = max(1, int(chunk or self.chunk))
        it = iter(contexts)
        while batch := list(islice(it, size)):
            for context, result in zip(batch, self._render_batch(batch)):
                if isinstance(result, Letter):
                    yield result
                elif on_error is None:
                    raise result
                else:
                    on_error(context, result)

    # -- one document of letters -----------------------------------------------------------------------
    def _render_batch(self, contexts: list[dict[str, Any]]) -> list[Letter | CommsError]:
        """One document per treatment and language in the batch; results in the batch's order."""
        results: list[Letter | CommsError | None] = [None] * len(contexts)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, context in enumerate(contexts):
            groups.setdefault((context["treatment"]["name"], context["customer"]["locale"]), []).append(i)
        for (treatment, _), indexes in groups.items():
            try:
                templates = letter_templates(self.templates_dir, treatment)
            except CommsError as exc:
                for i in indexes:
                    results[i] = exc
                continue
            for i, result in zip(indexes, self._render_group(templates, [contexts[i] for i in indexes])):
                results[i] = result
        return results  # type: ignore[return-value]

    def _render_group(self, templates: LetterTemplates, contexts: list[dict[str, Any]]) -> list:
        results: list[Letter | CommsError | None] = [None] * len(contexts)
        articles, members = [], []
        for i, context in enumerate(contexts):
            try:
                lctx = letter_context(context, f"letter-{i}", self.beneficiary)
                articles.append(templates.article(lctx))
                members.append((i, lctx))
            except (CommsError, ValueError) as exc:
                results[i] = exc if isinstance(exc, CommsError) else RenderError(f"letter: {exc}")
        if not members:
            return results
        try:
            self._lay_out_and_cut(templates, articles, members, results)
        except RenderError as exc:  # (a letter's own failures are in results already)
            if len(members) == 1:
                results[members[0][0]] = exc
            else:  # find the letter that broke the document: lay out each one alone
                for member, article in zip(members, articles):
                    try:
                        self._lay_out_and_cut(templates, [article], [member], results)
                    except RenderError as one:
                        results[member[0]] = one
        return results

    def _lay_out_and_cut(self, templates: LetterTemplates, articles: list[str], members: list, results: list):
        customer = members[0][1]["customer"]  # one language per document (see layout.html)
        lang, direction = str(escape(customer["lang"])), str(escape(customer["dir"]))
        stamp_css = ""
        if self.stamp_static:
            articles, stamp_css = self.engine.static_blocks(
                [(article, lctx["letter"]["paper_class"]) for article, (_, lctx) in zip(articles, members)],
                css=templates.css, lang=lang, direction=direction)
        html = (f'<!DOCTYPE html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
                f'<title>letters</title><style>{stamp_css}</style></head><body>' + "".join(articles)
                + "</body></html>")
        images = self.engine.images()
        document = self.engine.layout(html, templates.css, images=images,
                                      seconds=self.base_seconds + self.seconds_per_letter * len(articles),
                                      what=f"{templates.treatment} letters", max_rss_mb=self.max_rss_mb)
        starts = {}
        for index, page in enumerate(document.pages):
            for name in page.anchors:
                if name.startswith("letter-"):
                    starts.setdefault(name, index)
        spans = []
        missing = [lctx["customer"]["id"] for _, lctx in members if lctx["letter"]["anchor"] not in starts]
        if missing:
            raise RenderError(f"{templates.treatment} letter: the window (id=letter.anchor) is missing from "
                              f"the layout, so letters cannot be told apart (customer {missing[0]})")
        ordered = sorted((starts[lctx["letter"]["anchor"]], i, lctx) for i, lctx in members)
        for k, (start, i, lctx) in enumerate(ordered):
            end = (ordered[k + 1][0] if k + 1 < len(ordered) else len(document.pages)) - 1
            spans.append((i, lctx, start, end))
        stamps: list[list] = [[] for _ in document.pages]
        for i, lctx, start, end in spans:
            pages = end - start + 1
            if pages > self.max_pages:
                results[i] = RenderError(f"letter for customer {lctx['customer']['id']}: {pages} pages, "
                                         f"more than the limit of {self.max_pages}")
                continue
            stationery = self._stamp(templates, lctx, "stationery", None)
            labels = self._stamp(templates, lctx, "pagelabel", pages)
            for j in range(pages):
                stamps[start + j] = [stationery.pages[0 if j == 0 else 1], labels.pages[j]]
        stamp_pages(document, stamps)
        try:
            cutter = DocumentCutter(self.engine.generate(document))
        except Exception as exc:  # drawing can fail on what layout accepted (a broken image, a font)
            raise RenderError(f"{templates.treatment} letters: cannot draw: {type(exc).__name__}: {exc}") from None
        created = datetime.now(timezone.utc)
        for i, lctx, start, end in spans:
            if results[i] is not None:
                continue
            customer = lctx["customer"]
            meta = LetterMeta(title=f"{lctx['treatment']['title']} ({customer['id']})", lang=customer["lang"],
                              created=created)
            pdf = cutter.letter(start, end, meta)
            results[i] = Letter(pdf=pdf, pages=end - start + 1, sha256=hashlib.sha256(pdf).hexdigest(),
                                paper=lctx["letter"]["paper"], customer_id=str(customer["id"]))

    def stamp_html(self, templates: LetterTemplates, lctx: dict[str, Any], kind: str, pages: int | None) -> str:
        """The HTML of a stamp (stationery, or page labels for a letter of ``pages`` pages): the words of
        the letter's language, the creditor, the paper; nothing about the customer."""
        customer = lctx["customer"]
        locale, paper = customer["locale"], lctx["letter"]["paper"]
        context: dict[str, Any] = {
            "creditor": lctx["creditor"], "treatment": lctx["treatment"],  # isolated for RTL already
            "letter": {"paper": paper, "paper_class": CSS_CLASS[paper], "lang": fmt.language(locale),
                       "dir": fmt.text_direction(locale), "pages": pages or 1,
                       "iban": lctx["letter"]["iban"], "bic": lctx["letter"]["bic"],
                       "bank_codes": lctx["letter"]["bank_codes"]}}
        context["t"] = Messages(strings_for(self.templates_dir, templates.treatment, locale), context,
                                self._compiled)
        return (f'<!DOCTYPE html><html lang="{context["letter"]["lang"]}" dir="{context["letter"]["dir"]}"><head>'
                '<meta charset="utf-8"></head><body>' + templates.stamp(kind, context) + "</body></html>")

    def _stamp(self, templates: LetterTemplates, lctx: dict[str, Any], kind: str, pages: int | None):
        creditor = lctx["creditor"]
        key = (kind, templates.treatment, templates.version, lctx["customer"]["locale"], lctx["letter"]["paper"],
               pages, hashlib.sha256(repr(sorted(creditor.items())).encode()).hexdigest())
        return self.engine.stamp(key, lambda: self.stamp_html(templates, lctx, kind, pages), templates.css)


def safe_file_name(customer_id: str) -> str:
    """A file name for a customer id (ids are data: keep them from naming paths outside the folder)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(customer_id)).strip("._") or "customer"
    if name != str(customer_id):
        name = f"{name[:80]}-{hashlib.sha256(str(customer_id).encode()).hexdigest()[:8]}"
    return name


_safe_name = safe_file_name  # the name the campaign layer first imported


def lint(settings: Settings, segments, treatments: list[str], customers: list) -> list:
    """`comms lint`: render every treatment for every sample customer in every segment and check the letters
    (see letters/lint.py)."""
    from .letters.lint import lint_letters

    return lint_letters(settings, segments, treatments, customers)


def preview(context: dict[str, Any], *, settings: Settings, out_dir: Path, segments=None,
            options: dict | None = None) -> list[Path]:
    """`comms preview --channel letter`: the letter's PDF and a PNG of its first page."""
    letter = LetterRenderer(settings, segments).render(context)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"letter-{context['treatment']['name']}-{safe_file_name(letter.customer_id)}"
    pdf_path = out_dir / f"{stem}.pdf"
    pdf_path.write_bytes(letter.pdf)
    png_stem = out_dir / f"{stem}-page1"
    try:
        subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile", str(pdf_path),
                        str(png_stem)], check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise CommsError("pdftoppm is not installed (Debian package poppler-utils): "
                         "run scripts/install-system-packages") from None
    except subprocess.CalledProcessError as exc:
        raise CommsError(f"pdftoppm could not draw {pdf_path}: {exc.stderr.decode(errors='replace')[:200]}") \
            from None
    return [pdf_path, png_stem.with_suffix(".png")]


def produce_letters(settings: Settings, segments, contexts: Iterable[dict[str, Any]], campaign: str,
                    duplex: bool = False, *, chunk: int | None = None,
                    on_error: Callable[[dict[str, Any], CommsError], None] | None = None):
    """A campaign's letters: one PDF per customer under <artifacts>/<campaign>/letters/<customer_id>.pdf
    (for the micro-site download) and the print batch (one merged PDF in print order, blank backs for
    duplex, a manifest CSV) under <artifacts>/<campaign>/print/.

    Returns ``(letters, print_pdf, manifest)`` with letters as (customer_id, path, sha256, pages) in print
    order. Customers whose letter fails go to ``on_error`` (or raise when it is None)."""
    renderer = LetterRenderer(settings, segments)
    base = Path(settings.artifacts_dir) / safe_file_name(campaign)
    letters_dir = base / "letters"
    letters_dir.mkdir(parents=True, exist_ok=True)
    ordered = print_order(list(contexts))
    produced = []
    with PrintBatch(base / "print", duplex=duplex) as batch:
        by_id = {str(c["customer"]["id"]): c for c in ordered}
        for letter in renderer.render_many(ordered, chunk=chunk, on_error=on_error):
            path = letters_dir / f"{safe_file_name(letter.customer_id)}.pdf"
            partial = path.with_suffix(".pdf.partial")
            partial.write_bytes(letter.pdf)
            os.replace(partial, path)  # a crash never leaves half a letter where the micro-site looks
            batch.add(letter, by_id[letter.customer_id])
            produced.append((letter.customer_id, path, letter.sha256, letter.pages))
    return produced, batch.pdf_path, batch.manifest_path
