"""WeasyPrint, set up once per process: fonts, stylesheets, images, stamps, limits.

Laying out a letter is the expensive part, so this module does as little of it as possible:

- one ``FontConfiguration`` per process, stylesheets parsed once per treatment (and template version);
- an image cache that keeps media/ files for the life of the process but forgets per-customer images (QR
  codes) after each document, so memory stays flat over a whole campaign;
- many letters laid out as one document (one cascade, one font subset, one PDF), then cut per letter;
- the static parts of a letter (letterhead, return address, fold marks, footer, "page 1 of 2") laid out once
  per treatment, language and paper ("stamps"), drawn once per document as a PDF form and placed on each
  page with one operator; no running elements, which would make WeasyPrint lay out every page twice.

Renders are bounded: a time limit per document (an interval timer; main thread only, where workers run),
a memory check after each layout (a document that took the process over ``max_rss_mb`` is dropped with an
error), the sandbox's limits on the HTML, the fetcher's size limit on resources, Pillow's own
decompression-bomb limit on images, and a page limit per letter. ``limit_process_memory`` gives a worker
process a hard cap on top (its heap; a render beyond it fails with MemoryError, reported as RenderError).
"""

from __future__ import annotations

import hashlib
import re
import resource
import signal
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from weasyprint import CSS, DEFAULT_OPTIONS, HTML
from weasyprint.document import Page
from weasyprint.draw import draw_page
from weasyprint.html import UA, UA_COUNTER_STYLE
from weasyprint.pdf import VARIANTS, generate_pdf
from weasyprint.text.fonts import FontConfiguration

from ..sandbox import RenderError
from .fetcher import MediaFetcher

PDF_VARIANT = "pdf/a-3b"


class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Stop a render that runs longer than ``seconds``. The timer repeats every half second after the
    deadline, so a timeout swallowed by a broad ``except`` inside a library is raised again."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[bool] = []

    def _raise(signum, frame):
        fired.append(True)
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    except _Timeout:
        fired.append(True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        raise RenderError(f"{what}: took longer than {seconds:g} s")


def limit_process_memory(megabytes: int) -> None:
    """Cap this process's heap (RLIMIT_DATA: brk and private anonymous mappings, not the fonts mapped from
    disk) for render worker processes: a runaway render then fails with MemoryError instead of taking the
    machine down. Not for the main process of a CLI or a test run."""
    limit = int(megabytes) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def rss_megabytes() -> float:
    """Resident memory of this process now (not the peak), from /proc."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return pages * resource.getpagesize() / (1024 * 1024)


def _letter_user_agent_css() -> CSS:
    """WeasyPrint's HTML user-agent stylesheet without what letters never use and every letter pays for:
    the footnote and note pseudo-elements (they match every element, so each element got five
    pseudo-element styles computed: half of the style time), ::marker outside list items, and the
    default alignment of the sixteen page-margin boxes (their styles were computed on every page, a fifth
    of all style lookups). Letters use no footnotes; a template's own margin boxes still work."""
    text = re.sub(r"^::(footnote|note)-[^\n]*\n", "", UA, flags=re.M).replace("\n::marker {", "\nli::marker {")
    text = re.sub(r"^  @(footnote|note-area|top-|bottom-|left-|right-)[^\n]*\n", "", text, flags=re.M)
    text = re.sub(r"^@counter-style [^\n]*\n", "", text, flags=re.M)  # already in UA_COUNTER_STYLE
    return CSS(string=text, counter_style=UA_COUNTER_STYLE)


class LetterHTML(HTML):
    """An HTML document with the letter user-agent stylesheet (see :func:`_letter_user_agent_css`)."""

    ua_stylesheet: CSS | None = None

    def _ua_stylesheets(self, forms=False):
        if LetterHTML.ua_stylesheet is None:
            LetterHTML.ua_stylesheet = _letter_user_agent_css()
        return [LetterHTML.ua_stylesheet]


class DocumentImages(dict):
    """WeasyPrint's image cache for one document: media/ images (by URL, and the data entries WeasyPrint
    files under the URL's md5) go to the process-wide store; everything else lives and dies with the
    document, so a campaign's thousands of QR codes are never kept."""

    def __init__(self, shared: dict, media_prefix: str):
        super().__init__()
        self._shared = shared
        self._prefix = media_prefix
        self._shared_ids: set[str] = shared.setdefault("__ids__", set())

    def _is_shared(self, key) -> bool:
        if not isinstance(key, str):
            return False
        if key.startswith(self._prefix) or key.startswith("stamp:"):
            self._shared_ids.add(hashlib.md5(key.encode(), usedforsecurity=False).hexdigest())
            return True
        return key.split("-", 1)[0] in self._shared_ids

    def __contains__(self, key) -> bool:
        return (key in self._shared) if self._is_shared(key) else dict.__contains__(self, key)

    def __getitem__(self, key):
        return self._shared[key] if self._is_shared(key) else dict.__getitem__(self, key)

    def __setitem__(self, key, value) -> None:
        if self._is_shared(key):
            self._shared[key] = value
        else:
            dict.__setitem__(self, key, value)


@dataclass
class Stamp:
    """Pages laid out once and drawn on many letters (see module docstring)."""

    pages: list[Page]
    document: Any   # keeps the laid-out boxes (and their fonts) alive


class Engine:
    """One per process and media folder: WeasyPrint state shared by every letter this process renders."""

    def __init__(self, media_dir: Path):
        self.fetcher = MediaFetcher(media_dir)
        self.font_config = FontConfiguration()
        self._images: dict = {}
        self._stylesheets: dict[tuple, list[CSS]] = {}
        self._stamps: OrderedDict[tuple, Stamp] = OrderedDict()
        self._blocks: OrderedDict[str, BlockStamp] = OrderedDict()
        self._seen: dict[str, int] = {}

    def stylesheets(self, css: tuple[tuple[str, str], ...]) -> list[CSS]:
        key = tuple(hashlib.sha256(src.encode()).hexdigest() for _, src in css)
        sheets = self._stylesheets.get(key)
        if sheets is None:
            sheets = [CSS(string=src, base_url=self.fetcher.base_url, url_fetcher=self.fetcher,
                          font_config=self.font_config) for _, src in css]
            if len(self._stylesheets) > 32:
                self._stylesheets.clear()
            self._stylesheets[key] = sheets
        return sheets

    def images(self) -> DocumentImages:
        return DocumentImages(self._images, self.fetcher.base_url)

    def layout(self, html: str, css: tuple[tuple[str, str], ...], *, images: dict, seconds: float,
               what: str, max_rss_mb: float = 0):
        """Lay out an HTML document (one or many letters) within a time limit and a memory ceiling."""
        with time_limit(seconds, what):
            try:
                document = LetterHTML(string=html, base_url=self.fetcher.base_url, url_fetcher=self.fetcher).render(
                    stylesheets=self.stylesheets(css), font_config=self.font_config, cache=images,
                    pdf_variant=PDF_VARIANT)
            except _Timeout:
                raise
            except RenderError:
                raise
            except Exception as exc:  # a template WeasyPrint cannot lay out must not stop a whole campaign
                raise RenderError(f"{what}: cannot lay out: {type(exc).__name__}: {exc}") from None
        if max_rss_mb and (used := rss_megabytes()) > max_rss_mb:
            del document
            raise RenderError(f"{what}: the process grew to {used:.0f} MB, over the {max_rss_mb:g} MB allowed "
                              "for a render (letter_max_rss_mb)")
        return document

    def stamp(self, key: tuple, make_html, css: tuple[tuple[str, str], ...]) -> Stamp:
        """The laid-out stamp for ``key``, made from ``make_html()`` the first time (LRU, 64 kept)."""
        found = self._stamps.get(key)
        if found is not None:
            self._stamps.move_to_end(key)
            return found
        document = self.layout(make_html(), css, images=self.images(), seconds=30, what="letter stationery")
        found = self._stamps[key] = Stamp(pages=list(document.pages), document=document)
        if len(self._stamps) > 64:
            self._stamps.popitem(last=False)
        return found

    def static_blocks(self, articles: list[tuple[str, str]], *, css: tuple[tuple[str, str], ...], lang: str,
                      direction: str) -> tuple[list[str], str]:
        """Replace the static blocks of letters by their stamps (made on the second sighting, so a block
        that is not static after all costs nothing extra); returns the articles and the CSS rules of the
        replacements used."""
        version = hashlib.sha256("".join(src for _, src in css).encode()).hexdigest()[:16]
        rules: dict[str, str] = {}

        def replace(match: re.Match, paper_class: str) -> str:
            block = match.group(1)
            key = hashlib.sha256(f"{version}|{paper_class}|{lang}|{direction}|{block}".encode()).hexdigest()
            stamp = self._blocks.get(key)
            if stamp is None:
                seen = self._seen.pop(key, 0) + 1
                self._seen[key] = seen
                if len(self._seen) > 2048:
                    self._seen.pop(next(iter(self._seen)))
                if seen < 2:
                    return block
                stamp = self._make_block(key, block, css, lang, direction, paper_class)
                if stamp is None:
                    return block
            rules[stamp.name] = stamp.css
            return f'<img class="{stamp.name}" src="stamp:{key}" alt="">'

        out = []
        for article, paper_class in articles:
            out.append(STATIC.sub(lambda m: replace(m, paper_class), article) if "<!--static-->" in article
                       else article)
        return out, "".join(f".{name} {{ {rule} }}\n" for name, rule in rules.items())

    def _make_block(self, key, block, css, lang, direction, paper_class) -> BlockStamp | None:
        html = (f'<!DOCTYPE html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8"></head><body>'
                f'<article class="letter {paper_class}"><div class="static-probe" style="display: flow-root">'
                f"{block}</div></article></body></html>")
        document = self.layout(html, css, images=self.images(), seconds=10, what="letter static block")
        probe = _probe_block(document, 0) if len(document.pages) == 1 else None
        if probe is None or probe[3] <= 0:
            self._seen[key] = -10**9  # never again: not a block that can be stamped
            return None
        x, y, width, height, top, bottom, before, after = probe
        rule = (f"display: block; width: {width:.3f}px; height: {height:.3f}px; margin: {top:.3f}px 0 "
                f"{bottom:.3f}px 0; padding: 0; border: 0;")
        if before in ("avoid", "page"):
            rule += f" break-before: {before};"
        if after in ("avoid", "page"):
            rule += f" break-after: {after};"
        stamp = self._blocks[key] = BlockStamp(key, document.pages[0], document, x, y, width, height, rule)
        self._images[f"stamp:{key}"] = stamp
        if len(self._blocks) > 256:
            old_key, _ = self._blocks.popitem(last=False)
            self._images.pop(f"stamp:{old_key}", None)
        return stamp

    def generate(self, document):
        """The document as a pydyf PDF object graph (PDF/A-3b options), not yet serialized."""
        options = dict(DEFAULT_OPTIONS, pdf_variant=PDF_VARIANT)
        for key, value in VARIANTS[PDF_VARIANT][1].items():
            if options.get(key) is None:
                options[key] = value
        return generate_pdf(document, None, 1, **options)


STATIC = re.compile(r"<!--static-->(.*?)<!--/static-->", re.S)


class BlockStamp:
    """A static block of a letter's flow (marked ``<!--static-->...<!--/static-->`` in a template), laid
    out once and placed in each letter as a replaced element of its exact size: WeasyPrint treats it as an
    image and draws it as one PDF form per document. Margins and break rules of the block's first and last
    boxes go to the replacement, so spacing and page breaks behave as if the block were laid out there."""

    def __init__(self, key: str, page: Page, document, x: float, y: float, width: float, height: float,
                 css: str):
        self.name = f"st{key[:16]}"
        self.page, self.document = page, document
        self.x, self.y, self.width, self.height = x, y, width, height
        self.css = css  # the rule for the replacement (size, margins, breaks)

    def get_intrinsic_size(self, resolution, font_size):
        return self.width, self.height, (self.width / self.height) if self.height else None

    def draw(self, stream, concrete_width, concrete_height, style):
        xobjects = stream._resources["XObject"]
        if self.name not in xobjects:
            group = stream.add_group(0, 0, self.width, self.height)
            del xobjects[group.id]
            group.id = self.name
            xobjects[self.name] = group
            group.transform(e=-self.x, f=-self.y)
            draw_page(self.page._page_box, group)
        stream.draw_x_object(self.name)


def _probe_block(document, width_hint: float):
    """(x, y, width, height, margin_top, margin_bottom, break_before, break_after) of the probe block."""
    page_box = document.pages[0]._page_box
    probe = next(box for box in page_box.descendants()
                 if getattr(box, "element", None) is not None and box.element.get("class") == "static-probe"
                 and box.element_tag == "div")
    children = [child for child in probe.children if child.is_in_normal_flow()]
    if not children:
        return None
    first, last = children[0], children[-1]
    top, bottom = first.margin_top or 0, last.margin_bottom or 0
    return (probe.content_box_x(), probe.content_box_y() + top, probe.width, probe.height - top - bottom,
            top, bottom, first.style["break_before"], last.style["break_after"])


def stamp_pages(document, stamps_per_page: list[list[Page]]) -> None:
    """Make each page of ``document`` draw its stamps first. Each stamp page becomes one PDF form object
    per document (drawn once), placed on every page that carries it."""
    forms: dict[int, str] = {}

    def painter(page: Page, stamps: list[Page]):
        def paint(stream, scale=1):
            for stamp in stamps:
                name = forms.get(id(stamp))
                if name is None:
                    group = stream.add_group(0, 0, stamp.width * scale, stamp.height * scale)
                    stamp.paint(group, scale)
                    name = forms[id(stamp)] = group.id
                stream.draw_x_object(name)
            Page.paint(page, stream, scale)
        return paint

    for page, stamps in zip(document.pages, stamps_per_page):
        if stamps:
            page.paint = painter(page, stamps)
