"""Benchmark: render N complete e-mails (MIME bytes, both parts, all headers), ours next to the naive way.

Input: a sample portfolio (comms.sample, every locale, adversarial names included), segmented by age, and
its template contexts built beforehand by comms.render.context (that cost is the render kit's, printed
for information, not counted). Each variant gets its own fresh contexts, since the treatment's words are
rendered lazily and cached per context. Side by side, on one core, in one run:

* ours: ``EmailRenderer.render(context).mime_bytes()``: MJML compiled once per template version, a locale
  variant compiled once per locale, per customer two sandboxed Jinja renders with time and size limits,
  the subject, and MIME bytes built directly;
* naive: per customer, Jinja renders the MJML, mjml2html compiles it, the text part is converted from the
  HTML (html.parser), email.message builds the MIME; and naive-lite, the same without the HTML-to-text
  and email.message (our text template and MIME builder): what compiling MJML per customer costs alone;
* floor: the bare Jinja render of the precompiled HTML (no text part, no MIME, no limits), of the general
  template with the context's words and of our locale variant.

CPU time of this process is what is compared (the machine is shared); wall time is shown too.
Run: .venv/bin/python bench/email_render.py [--n 10000]
Goals (issue 4): >= 3,000 complete messages/s per core; >= 4x the naive way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mjml import mjml2html  # noqa: E402

from comms.config import Settings  # noqa: E402
from comms.models import Customer, Invoice  # noqa: E402
from comms.payments import LinkSigner  # noqa: E402
from comms.render.context import ContextBuilder  # noqa: E402
from comms.render.email import EmailRenderer, RenderedEmail, new_message_id, one_line  # noqa: E402
from comms.render.sandbox import compile_template, render_limited  # noqa: E402
from comms.segment.config import load_segments  # noqa: E402

AS_OF = date(2026, 6, 30)


def portfolio(n: int) -> list[tuple[Customer, str]]:
    """n customers of the sample generator (no bad rows), each with a segment by age and payment history."""
    from comms.render.email import checked_address
    from comms.render.sandbox import RenderError
    from comms.sample import generate

    rows = generate(n, seed=11, as_of=AS_OF, bad_share=0.0).to_pylist()
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["customer_id"], []).append(r)
    out = []
    for i, (cid, rs) in enumerate(by_id.items()):
        r = rs[0]
        try:
            checked_address(r["email"] or "", "bench")
        except RenderError:
            continue
        invoices = tuple(Invoice(x["invoice_number"], date.fromisoformat(x["issue_date"]),
                                 date.fromisoformat(x["due_date"]), Decimal(x["amount"]), Decimal(x["open_amount"]))
                         for x in rs)
        due = min(inv.due_date for inv in invoices)
        dpd = max((AS_OF - due).days, 0)
        lines = tuple(x for x in (r["address_line1"], r["address_line2"], f"{r['postal_code']} {r['city']}") if x)
        customer = Customer(cid, r["name"], r["country"], r["locale"], r["timezone"], r["currency"],
                            given_name=r["given_name"], email=r["email"], address_lines=lines,
                            balance=sum((inv.open_amount for inv in invoices), Decimal(0)), days_past_due=dpd,
                            invoices=invoices)
        segment = "hardship" if i % 5 == 0 and dpd > 30 else "final" if dpd > 90 else "firm" if dpd > 30 \
            else "early"
        out.append((customer, segment))
    return out


class _Text(HTMLParser):
    """The naive plain-text part: the HTML's text, a newline per block element."""

    BLOCK = {"p", "div", "tr", "br", "table", "h1", "h2", "h3", "li"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "title", "head"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.parts.append(f" {href} ")

    def handle_endtag(self, tag):
        if tag in ("style", "title", "head"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(" ".join(line.split()) for line in "".join(parser.parts).splitlines() if line.strip())


def timed(label: str, contexts: list, fn, results: dict) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    size = 0
    for ctx in contexts:
        size += len(fn(ctx))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    results[label] = (cpu, wall, len(contexts))
    print(f"  {label:28s} {len(contexts) / cpu:9,.0f} msg/s per core  ({cpu / len(contexts) * 1e3:.3f} ms CPU, "
          f"{len(contexts) / wall:,.0f} msg/s wall, {size / len(contexts) / 1024:.1f} KiB each)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    opts = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="comms-bench-email-"))
    settings = Settings.load(home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "bench", as_of=AS_OF)
    renderer = EmailRenderer(settings, segments)
    print(f"sample portfolio of {opts.n:,} customers ...", flush=True)
    people = portfolio(opts.n)
    start = time.process_time()
    base = [builder.build(c, seg) for c, seg in people]
    per_context = (time.process_time() - start) / len(base)
    print(f"  {len(base):,} contexts built in {per_context * 1e3:.2f} ms CPU each (render kit, not counted)")
    locales = sorted({c.locale for c, _ in people})

    def fresh() -> list[dict]:
        """The same contexts with fresh (not yet rendered) words."""
        out = []
        for ctx in base:
            c = dict(ctx)
            c["t"] = builder._messages(c["treatment"]["name"], c["customer"]["locale"], c)
            out.append(c)
        return out

    def extras(ctx: dict) -> dict:
        rtl = ctx["customer"]["dir"] == "rtl"
        ctx["email"] = {"subject": "", "font_family": "Arial, sans-serif", "align": "right" if rtl else "left",
                        "align_end": "left" if rtl else "right", "video": True, "message_id": "x"}
        return ctx

    # Warm-up outside the clock: templates compiled once per version (ours, naive-lite) and per locale (ours).
    for treatment in segments.treatments:
        for loc in locales:
            renderer.variant(treatment, loc)
    mjml_templates = {t: compile_template(renderer.template(t).mjml_source, html=True, name=f"{t} mjml")
                      for t in segments.treatments}

    def ours(ctx):
        return renderer.render(ctx).mime_bytes()

    def naive_html(ctx):
        tpl = renderer.template(ctx["treatment"]["name"])
        source = render_limited(mjml_templates[tpl.treatment], extras(ctx), name="naive")
        return mjml2html(source, disable_comments=True, fonts={})

    def naive(ctx):
        html = naive_html(ctx)
        msg = EmailMessage()
        msg["From"] = "Example Collections <collections@example.com>"
        msg["To"] = f'{ctx["customer"]["name"]} <{ctx["customer"]["email"]}>'
        msg["Subject"] = str(ctx["t"]["email"]["subject"])
        msg["List-Unsubscribe"] = f"<{ctx['links']['unsubscribe']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(html_to_text(html))
        msg.add_alternative(html, subtype="html")
        return msg.as_bytes()

    def naive_lite(ctx):
        html = naive_html(ctx)
        text = render_limited(renderer.template(ctx["treatment"]["name"]).text, ctx, name="naive text")
        mid = new_message_id()
        email = RenderedEmail(
            message_id=mid, to=ctx["customer"]["email"], to_name=ctx["customer"]["name"],
            from_address=renderer.from_address, from_name=renderer.from_name,
            subject=one_line(ctx["t"]["email"]["subject"]), html=html, text=text,
            headers={"Message-ID": f"<{mid}@example.com>", "X-Comms-Message-Id": mid,
                     "List-Unsubscribe": f"<{ctx['links']['unsubscribe']}>",
                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            campaign="bench", customer_id=ctx["customer"]["id"], treatment=ctx["treatment"]["name"],
            locale=ctx["customer"]["locale"], template_version="naive", created=datetime.now(timezone.utc))
        return email.mime_bytes()

    def floor(ctx):
        return renderer.template(ctx["treatment"]["name"]).html.render(extras(ctx))

    def floor_variant(ctx):
        return renderer.variant(ctx["treatment"]["name"], ctx["customer"]["locale"]).html.render(extras(ctx))

    print(f"rendering {len(base):,} complete messages per variant, one core:", flush=True)
    results: dict = {}
    timed("ours", fresh(), ours, results)
    timed("naive", fresh(), naive, results)
    timed("naive-lite (MJML per customer)", fresh(), naive_lite, results)
    timed("floor: bare Jinja, general", fresh(), floor, results)
    timed("floor: bare Jinja, variant", fresh(), floor_variant, results)
    rate = {k: n / cpu for k, (cpu, wall, n) in results.items()}
    print("summary:")
    print(f"  ours: {rate['ours']:,.0f} complete messages/s per core (goal >= 3,000)")
    print(f"  ours / naive: {rate['ours'] / rate['naive']:.1f}x (goal >= 4x); ours / naive-lite: "
          f"{rate['ours'] / rate['naive-lite (MJML per customer)']:.1f}x")
    for key in ("floor: bare Jinja, general", "floor: bare Jinja, variant"):
        per_msg = (1 / rate["ours"] - 1 / rate[key]) * 1e3
        print(f"  distance to {key}: {per_msg:+.3f} ms per message ({rate[key] / rate['ours']:.2f}x the speed)")


if __name__ == "__main__":
    main()
