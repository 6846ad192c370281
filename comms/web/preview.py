"""The page channel's preview and lint, for ``comms preview --channel page`` and ``comms lint``.

``preview`` writes one customer's personal page (and its pay, checkout, video and unsubscribe pages) as HTML
files with the stylesheet next to them. ``lint`` renders every treatment's page for sample customers of every
segment, in four states (as sent; after a plan and a promise; with a dispute open; paid in full), and
reports what would break in a browser: a template error, anything the Content-Security-Policy would block
(inline script or style, event-handler attributes), a form field without a label, an image without alt
text, or a customer's name that reaches the page unescaped.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from ..config import Settings
from ..models import Customer
from ..payments.links import LinkClaims
from ..payments.offers import instalment_plan
from ..payments.status import Arrangement, CustomerState, PaymentRecord
from ..render.sandbox import RenderError
from .pagecontext import add_page
from .site import Visit, effective_offers
from .view import PageTemplates

CHANNEL = "page"
PAGES = ("page.html", "pay.html", "checkout.html", "video.html", "unsubscribe.html")
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
_INPUT = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.I)


@dataclass
class PageProblem:
    severity: str  # "error" fails lint
    treatment: str
    message: str
    seen: list[str] = field(default_factory=list)
    channel: str = CHANNEL

    def line(self) -> str:
        where = ", ".join(self.seen[:3]) + (" ..." if len(self.seen) > 3 else "")
        return f"{self.severity}: {self.treatment} {self.channel}: {self.message}" + (f" [{where}]" if where else "")


def _customer_of(context: Mapping[str, Any]) -> Customer:
    c = context["customer"]
    return Customer(customer_id=c["id"], name=c["name"], given_name=c["greeting_name"], country=c["country"],
                    locale=c["locale"], timezone="UTC", currency=c["currency"], email=c["email"] or None,
                    address_lines=tuple(c["address_lines"]), balance=Decimal(context["balance_amount"]))


def sample_visit(customer: Customer, segment, treatment: str, state: CustomerState | None = None,
                 paid: Decimal = Decimal(0)) -> Visit:
    """A visit as if the customer had just opened the link sent today (for previews and lint)."""
    today = date.today()
    now = datetime.now(timezone.utc)
    claims = LinkClaims("preview", customer.customer_id, now, now + timedelta(days=60), "k0")
    return Visit(token="preview", claims=claims, customer=customer, segment=segment.name, treatment=treatment,
                 state=state or CustomerState(customer.customer_id), paid=paid, as_of=today, today=today,
                 choices=effective_offers(customer, segment.offers, today, today))


def _extras(ctx: dict, visit: Visit, templates: PageTemplates, static: dict) -> dict:
    # as if every file were rendered, so that the video and letter parts are checked too
    ctx = add_page(ctx, visit, csrf="preview", artifact=lambda name: True, test_mode=True, static=static)
    ctx["checkout"] = {"amount": ctx["balance"], "purpose": "full", "action": "#"}
    ctx["unsub"] = {"action": "#", "done": False, "page": "#"}
    return ctx


def preview(context: dict, *, settings: Settings, out_dir: Path, segments, options=None) -> list[Path]:
    """Write the customer's page and its sub-pages (HTML + page.css) into ``out_dir``; return the files."""
    templates = PageTemplates(settings.templates_dir)
    segment = {s.name: s for s in segments.segments}[context["segment"]["name"]]
    treatment = context["treatment"]["name"]
    visit = sample_visit(_customer_of(context), segment, treatment)
    ctx = _extras(context, visit, templates, {"css": "page.css", "js": "page.js"})
    out_dir = Path(out_dir)
    written = []
    for name in PAGES:
        path = out_dir / name
        path.write_text(templates.render(treatment, name, ctx), encoding="utf-8")
        written.append(path)
    for name in ("page.css", "page.js"):
        shutil.copyfile(templates.base / name, out_dir / name)
    return written


def _states(customer: Customer) -> list[tuple[str, CustomerState, Decimal]]:
    today = date.today()
    now = datetime.now(timezone.utc)
    plan = instalment_plan(customer.balance, customer.currency, 6, today + timedelta(days=7))
    cid = customer.customer_id
    arranged = CustomerState(cid, plan=Arrangement(1, "plan", now, "lint", 6, plan.total, customer.currency,
                                                   plan.schedule[-1][0], None, plan.schedule),
                             promise=Arrangement(2, "promise", now, "lint", None, customer.balance,
                                                 customer.currency, today + timedelta(days=3), None))
    disputed = CustomerState(cid, dispute=Arrangement(3, "dispute", now, "lint", None, None, None, None, "other"))
    paid = CustomerState(cid, payments=(PaymentRecord(now, customer.balance, Decimal(0), customer.currency, "demo",
                                                      "lint"),))
    return [("as sent", CustomerState(cid), Decimal(0)), ("plan and promise", arranged, Decimal(0)),
            ("dispute", disputed, Decimal(0)), ("paid", paid, customer.balance)]


def check_html(html: str, customer: Customer) -> list[str]:
    """What a browser or a customer would notice (see the module docstring)."""
    found = []
    if _INLINE_SCRIPT.search(html):
        found.append("inline <script> (the Content-Security-Policy blocks it)")
    if " style=" in html or "<style" in html:
        found.append("inline style (the Content-Security-Policy blocks it: use page.css)")
    if _HANDLER.search(html):
        found.append("event-handler attribute (the Content-Security-Policy blocks it)")
    labels = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    for tag, attrs in _INPUT.findall(html):
        if re.search(r'type="(hidden|submit|button)"', attrs):
            continue
        ident = re.search(r'\bid="([^"]+)"', attrs)
        if "aria-label=" not in attrs and (ident is None or ident.group(1) not in labels):
            found.append(f"a <{tag}> without a label")
    if re.search(r"<img(?![^>]*\balt=)", html):
        found.append("an image without alt text")
    if "<script>alert" in html or (customer.name.startswith("<") and customer.name in html):
        found.append("the customer's name is not escaped")
    if not re.search(r'<html lang="[^"]+" dir="(ltr|rtl)"', html):
        found.append("the page does not declare its language and direction")
    return found


def lint(settings: Settings, segments, treatments: list[str], customers: list) -> list[PageProblem]:
    """Render every treatment's pages for every sample customer in every segment and state; check them."""
    from ..payments import LinkSigner
    from ..render.context import ContextBuilder

    templates = PageTemplates(settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "lint")
    problems: dict[tuple[str, str, str], PageProblem] = {}

    def report(severity: str, treatment: str, message: str, where: str) -> None:
        problem = problems.setdefault((severity, treatment, message), PageProblem(severity, treatment, message))
        if where not in problem.seen:
            problem.seen.append(where)

    static = {"css": "page.css", "js": "page.js"}
    for treatment in treatments:
        for segment in segments.segments:
            builder.segments[segment.name] = segment.model_copy(update={"treatment": treatment})
            for customer in customers:
                for label, state, paid in _states(customer):
                    shown = replace(customer, balance=max(customer.balance - paid, Decimal(0)))
                    where = f"{segment.name}/{customer.locale}/{label}"
                    visit = sample_visit(shown, segment, treatment, state, paid)
                    try:
                        ctx = _extras(builder.build(shown, segment.name), visit, templates, static)
                        for name in PAGES if label == "as sent" else ("page.html",):
                            for message in check_html(templates.render(treatment, name, ctx), customer):
                                report("error", treatment, f"{name}: {message}", where)
                    except RenderError as exc:
                        report("error", treatment, str(exc), where)
            builder.segments[segment.name] = segment
    return list(problems.values())


__all__ = ["PageProblem", "check_html", "lint", "preview", "sample_visit"]
