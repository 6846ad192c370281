"""Letter HTML from a treatment's templates: compiled once per template version, filled per customer.

A letter's personal part is the base layout (templates/_base/letter/layout.html: window, information block,
subject, greeting, signature) around the treatment's body (templates/<treatment>/letter.html). The body
places the shared partials (templates/_base/letter/partials/*.html: summary, invoices, offers, payment),
which arrive rendered in ``parts``. Its static parts are two more templates, rendered without any customer
data: stationery.html (letterhead, return address, fold marks, footer) and pagelabel.html ("page 1 of 2").
Everything runs in the sandbox with time and size limits. Stylesheets are the base print CSS plus the
treatment's letter.css, parsed once per process (see engine.py).

Besides the channel-independent context (comms/render/context.py), letter templates get ``letter``: paper
and its CSS class, the lines of the envelope window, the payment reference, IBAN and BIC as printed, the QR
codes as data URLs (``epc_qr`` only for EUR customers) and the EPC payload. Right-to-left letters get the
creditor's texts wrapped in Unicode isolates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..sandbox import RenderError, compile_template, render_limited
from .epc import Beneficiary, creditor_reference, epc_payload, format_iban
from .paper import CSS_CLASS, paper_for
from .qr import qr_png_data_url

BASE = "_base"
PARTIALS = ("summary", "invoices", "offers", "payment")
STAMPS = ("stationery", "pagelabel")
MAX_LETTER_CHARS = 2_000_000
MAX_SECONDS = 5.0


@dataclass(frozen=True)
class LetterTemplates:
    """A treatment's compiled letter templates and the CSS sources that style them."""

    treatment: str
    layout: Any
    body: Any
    partials: dict[str, Any]
    stamps: dict[str, Any]             # stationery, pagelabel: laid out once, drawn on every letter
    css: tuple[tuple[str, str], ...]   # (name, source) in cascade order
    version: str                       # changes when any file of the treatment's letter changes

    def article(self, context: dict[str, Any]) -> str:
        """One letter as an ``<article>`` (HTML, escaped), ready to join others in a document."""
        parts = {name: Markup(render_limited(tpl, context, max_bytes=MAX_LETTER_CHARS, max_seconds=MAX_SECONDS,
                                             name=f"letter partial {name}"))
                 for name, tpl in self.partials.items()}
        ctx = dict(context, parts=parts)
        body = render_limited(self.body, ctx, max_bytes=MAX_LETTER_CHARS, max_seconds=MAX_SECONDS,
                              name=f"{self.treatment}/letter.html")
        ctx["body"] = Markup(body)
        return render_limited(self.layout, ctx, max_bytes=MAX_LETTER_CHARS, max_seconds=MAX_SECONDS,
                              name="_base/letter/layout.html")

    def stamp(self, kind: str, context: dict[str, Any]) -> str:
        return render_limited(self.stamps[kind], context, max_bytes=MAX_LETTER_CHARS, max_seconds=MAX_SECONDS,
                              name=f"_base/letter/{kind}.html")


def _files(templates_dir: Path, treatment: str) -> dict[str, Path]:
    base = templates_dir / BASE / "letter"
    files = {"layout": base / "layout.html", "base.css": base / "letter.css",
             "body": templates_dir / treatment / "letter.html",
             "treatment.css": templates_dir / treatment / "letter.css"}
    files.update({f"partial:{p}": base / "partials" / f"{p}.html" for p in PARTIALS})
    files.update({f"stamp:{p}": base / f"{p}.html" for p in STAMPS})
    return files


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RenderError(f"{what}: {path} is missing") from None
    except UnicodeDecodeError:
        raise RenderError(f"{what}: {path} is not UTF-8") from None


@lru_cache(maxsize=64)
def _compiled(templates_dir: Path, treatment: str, stamp: tuple) -> LetterTemplates:
    files = _files(templates_dir, treatment)
    compile_html = lambda key, label: compile_template(_read(files[key], label), html=True, name=label)  # noqa: E731
    css = [("_base/letter/letter.css", _read(files["base.css"], "letter CSS"))]
    if files["treatment.css"].exists():
        css.append((f"{treatment}/letter.css", _read(files["treatment.css"], "letter CSS")))
    return LetterTemplates(
        treatment=treatment,
        layout=compile_html("layout", "_base/letter/layout.html"),
        body=compile_html("body", f"{treatment}/letter.html"),
        partials={p: compile_html(f"partial:{p}", f"_base/letter/partials/{p}.html") for p in PARTIALS},
        stamps={p: compile_html(f"stamp:{p}", f"_base/letter/{p}.html") for p in STAMPS},
        css=tuple(css), version=hashlib.sha256(repr(stamp).encode()).hexdigest()[:16])


def letter_templates(templates_dir: Path, treatment: str) -> LetterTemplates:
    """The compiled templates of a treatment, recompiled when any of its files changes."""
    files = _files(Path(templates_dir), treatment)
    stamp = tuple((k, p.stat().st_mtime_ns if p.exists() else 0) for k, p in sorted(files.items()))
    return _compiled(Path(templates_dir), treatment, stamp)


# Unicode isolates keep IBANs, BICs and references left-to-right inside right-to-left text, and keep a
# Latin creditor address ("1 Example Street", "+49 30 ...") in its own order inside a Hebrew line.
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


LTR_KEYS = frozenset({"phone", "email", "website", "iban", "bic"})


def isolated_creditor(creditor: dict[str, Any]) -> dict[str, Any]:
    """The creditor with every text isolated, for right-to-left letters where a Latin address or a phone
    number would otherwise come out reordered: phone, e-mail, website and bank codes left-to-right, name
    and address by their first strong character (a Hebrew address stays right-to-left)."""
    def iso(value, start):
        if isinstance(value, str):
            return f"{start}{value}{PDI}" if value else value
        if isinstance(value, (list, tuple)):
            return [iso(v, start) for v in value]
        return value
    return {key: iso(value, LRI if key in LTR_KEYS else FSI) for key, value in creditor.items()}


def letter_context(context: dict[str, Any], anchor: str, beneficiary: Beneficiary) -> dict[str, Any]:
    """The context plus ``letter``: what only the letter needs (paper, window lines, QR codes, reference)."""
    customer = context["customer"]
    paper = paper_for(customer.get("country"))
    rtl = customer.get("dir") == "rtl"
    ltr = (lambda s: f"{LRI}{s}{PDI}") if rtl else (lambda s: s)  # noqa: E731
    rf = creditor_reference(str(customer["id"]))
    balance = context.get("balance_amount")
    epc_payload_text = epc_qr = None
    if customer.get("currency") == "EUR" and balance is not None and balance > 0:
        epc_payload_text = epc_payload(beneficiary, balance, reference=rf,
                                       text=None if rf else f"Customer {customer['id']}"[:140])
        epc_qr = qr_png_data_url(epc_payload_text, max_version=13)
    reference = " ".join(rf[i:i + 4] for i in range(0, len(rf), 4)) if rf else str(customer["id"])
    letter = {
        "paper": paper, "paper_class": CSS_CLASS[paper], "anchor": anchor,
        "address_lines": [customer["name"], *customer.get("address_lines", ())],
        "reference": ltr(reference), "iban": ltr(format_iban(beneficiary.iban)), "bic": ltr(beneficiary.bic),
        "bank_codes": ltr(f"IBAN {format_iban(beneficiary.iban)} · BIC {beneficiary.bic}"),
        "pay_qr": qr_png_data_url(context["links"]["pay"]), "epc_qr": epc_qr, "epc_payload": epc_payload_text,
    }
    if rtl:
        return dict(context, letter=letter, creditor=isolated_creditor(context["creditor"]))
    return dict(context, letter=letter)
