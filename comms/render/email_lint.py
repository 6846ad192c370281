"""``comms lint`` for e-mail: every treatment, every segment's offers, every locale, hostile names too.

A template that fails here must never reach a customer, so lint renders exactly what a campaign would
render (the same renderer, the same sandbox, the same limits) and then checks the results the way a
mailbox provider and a regulator would look at them:

* undefined variables and Jinja syntax (named by file and line where it can be found), MJML errors;
* HTML over 90 KB (Gmail clips at about 102 KB and the opt-out would vanish), images without alt text;
* a missing or empty text part, subject or preheader;
* the signed payment link missing from the HTML or the text part; the opt-out (links.unsubscribe) missing
  from either, or List-Unsubscribe headers missing;
* any ``http:`` link (links must be https) and customer data that came out unescaped (``<script``);
* words missing in a language (a warning: English fills the gap, but the customer sees mixed languages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .mjml import load_email_template
from .sandbox import RenderError

MAX_HTML_BYTES = 90 * 1024
CHANNEL = "email"
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_HTTP_ATTR = re.compile(r"""\b(?:href|src|action|background)\s*=\s*["']?\s*http:""", re.I)
_HTTP_CSS = re.compile(r"url\(\s*['\"]?http:", re.I)
_UNDEFINED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined|has no attribute '([A-Za-z_][A-Za-z0-9_]*)'")


@dataclass
class LintProblem:
    """One finding. ``where`` lists the renders it occurred in (segment/locale/customer)."""

    severity: str          # "error" fails lint; "warning" is reported only
    treatment: str
    channel: str
    message: str
    where: list[str] = field(default_factory=list)

    def line(self) -> str:
        seen = ", ".join(self.where[:4]) + (f" and {len(self.where) - 4} more" if len(self.where) > 4 else "")
        return f"{self.severity}: {self.treatment} {self.channel}: {self.message}" + (f" [{seen}]" if seen else "")


def _locate(message: str, files: tuple[Path, ...]) -> str:
    """Add 'file line N' to an undefined-variable message when the name appears in one source file."""
    found = _UNDEFINED.search(message)
    if not found or message.startswith("message "):
        return message
    name = found.group(1) or found.group(2)
    pattern = re.compile(r"(\{\{|\{%)[^}]*\b" + re.escape(name) + r"\b")
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                return f"{message} (in {path} line {number})"
    return message


def check_email(email, context) -> list[str]:
    """What is wrong with one rendered message (empty when it may be sent)."""
    problems: list[str] = []
    html, text = email.html, email.text
    size = len(html.encode("utf-8"))
    if size > MAX_HTML_BYTES:
        problems.append(f"HTML is {size / 1024:.1f} KB, over the {MAX_HTML_BYTES // 1024} KB limit "
                        "(Gmail clips at about 102 KB and hides the footer with the opt-out)")
    for img in _IMG.findall(html):
        alt = _ALT.search(img)
        if not alt or not (alt.group(1) or alt.group(2) or "").strip():
            problems.append(f"image without alt text: {img[:120]}")
    if not text.strip():
        problems.append("missing text part (the plain-text template rendered nothing)")
    if not email.subject.strip():
        problems.append("empty subject")
    pay, unsubscribe = context["links"]["pay"], context["links"]["unsubscribe"]
    if f'href="{pay}"' not in html:
        problems.append("missing payment link (links.pay) in the HTML part")
    if pay not in text:
        problems.append("missing payment link (links.pay) in the text part")
    if f'href="{unsubscribe}"' not in html:
        problems.append("missing opt-out link (links.unsubscribe) in the HTML footer")
    if unsubscribe not in text:
        problems.append("missing opt-out link (links.unsubscribe) in the text part")
    if email.headers.get("List-Unsubscribe") != f"<{unsubscribe}>" or \
            email.headers.get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click":
        problems.append("missing List-Unsubscribe / List-Unsubscribe-Post headers")
    if _HTTP_ATTR.search(html) or _HTTP_CSS.search(html):
        problems.append("http: link or image in the HTML part (use https)")
    if "http://" in text.replace(str(context["customer"]["name"]), ""):
        problems.append("http: link in the text part (use https)")
    if "<script" in html.lower():
        problems.append("unescaped customer data: <script> in the HTML (is a value marked |safe?)")
    return problems


def lint_email(settings, segments, treatments: list[str], customers: list) -> list[LintProblem]:
    """Render every treatment for every customer in every segment; collect problems, merged by message."""
    from ..errors import SegmentConfigError
    from ..payments import LinkSigner
    from ..segment.config import load_treatment
    from .context import ContextBuilder
    from .email import EmailRenderer
    from .strings import missing_keys

    signer = LinkSigner.from_settings(settings)
    builder = ContextBuilder(settings, segments, signer, "lint")
    renderer = EmailRenderer(settings, segments)
    found: dict[tuple[str, str, str], LintProblem] = {}

    def report(severity: str, treatment: str, message: str, where: str = "") -> None:
        key = (severity, treatment, message)
        problem = found.setdefault(key, LintProblem(severity, treatment, CHANNEL, message))
        if where:
            problem.where.append(where)

    for treatment in treatments:
        try:
            template = load_email_template(settings.templates_dir, treatment)
            if treatment not in builder.treatments:  # a treatment no segment uses yet: lint it all the same
                builder.treatments[treatment] = renderer.treatments[treatment] = \
                    load_treatment(settings.templates_dir, treatment)
        except (RenderError, SegmentConfigError) as exc:
            report("error", treatment, str(exc))
            continue
        for locale in sorted({c.locale for c in customers if not c.locale.startswith("en")}):
            gaps = sorted(k for k in missing_keys(settings.templates_dir, treatment, locale)
                          if k.startswith(f"{CHANNEL}.") or "." not in k)
            if gaps:
                report("warning", treatment, f"{locale}: words missing, English used: {', '.join(gaps)}")
        for segment in segments.segments:
            builder.segments[segment.name] = segment.model_copy(update={"treatment": treatment})
            for customer in customers:
                where = f"{segment.name}/{customer.locale}/{customer.customer_id}"
                try:
                    context = builder.build(customer, segment.name)
                    email = renderer.render(context)
                except RenderError as exc:
                    report("error", treatment, _locate(str(exc), template.files), where)
                    continue
                for message in check_email(email, context):
                    report("error", treatment, message, where)
        for segment in segments.segments:
            builder.segments[segment.name] = segment
    return list(found.values())
