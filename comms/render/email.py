"""The e-mail channel: a customer's context in, a complete message out (HTML, text, headers, MIME bytes).

Per template version the MJML is compiled once (comms.render.mjml); per customer only two sandboxed Jinja
renders run, both bounded in time and size: the HTML (autoescaped) and the plain-text part (its own
template, not escaped, never converted from HTML). Subject and preheader are the treatment's words
(``t.email.subject``, ``t.email.preheader``), rendered without escaping and cut to one line.

Every message carries our own id (a UUIDv7: time-ordered, opaque) in ``X-Comms-Message-Id`` and in its
``Message-ID``, one-click unsubscribe headers (RFC 8058) pointing at ``links.unsubscribe``, and knows its
campaign and customer only as ids. Delivery (comms.deliver) sees this finished message, never a template.

Templates see the context of comms.render.context plus ``email``: subject, font_family (a CJK stack for
Chinese, Japanese, Korean), align and align_end ("right" and "left" for right-to-left languages), video
(the segment has the video channel: show the poster) and message_id.

Speed: per (template version, locale) a variant is compiled with the locale's constants and the treatment's
words written in (comms.render.email_variant); a message's ``template_version`` names the MJML/text version
and the version of the words it was rendered with.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import Settings
from ..errors import InputError
from . import formatting as fmt
from . import mime
from .context import Messages
from .email_variant import LocaleVariant, build_variant
from .mjml import EmailTemplate, load_email_template
from .sandbox import RenderError, render_limited
from .strings import strings_for

DEFAULT_FROM = "Example Collections <collections@example.com>"
FONT_STACKS = {
    "zh": "PingFang SC, Hiragino Sans GB, Microsoft YaHei, Noto Sans CJK SC, Source Han Sans SC, sans-serif",
    "ja": "Hiragino Sans, Yu Gothic, Meiryo, Noto Sans CJK JP, sans-serif",
    "ko": "Apple SD Gothic Neo, Malgun Gothic, Noto Sans CJK KR, sans-serif",
    "he": "Arial, Noto Sans Hebrew, Tahoma, sans-serif",
}
DEFAULT_FONTS = "Helvetica Neue, Helvetica, Arial, Noto Sans, sans-serif"
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
FEATURES = ("tags", "send_at")  # optional message features; comms.deliver.base.FEATURES names the same


def new_message_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit milliseconds, version, 74 random bits. Sorts by creation time."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 64 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def checked_address(value: str, what: str) -> str:
    """An ASCII address that cannot break a header (IDN domains as punycode; SMTPUTF8 is not supported)."""
    value = (value or "").strip()
    if "@" in value and not value.isascii():
        local, _, domain = value.rpartition("@")
        try:
            value = f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            pass
    if not _ADDRESS.fullmatch(value):
        raise RenderError(f"{what}: {value!r} is not an e-mail address this sender can use "
                          "(ASCII local part required)")
    return value


_BREAKS = re.compile(r"[\x00-\x20\x7f\x85\u2028\u2029]+")


def one_line(value: str, limit: int = 250) -> str:
    """Control characters and line breaks become one space: customer data can never split a header.
    Non-breaking spaces (Babel puts them in amounts) stay."""
    return _BREAKS.sub(" ", str(value)).strip(" ")[:limit]


@dataclass(frozen=True)
class RenderedEmail:
    """A finished message. ``headers`` are the extra headers every backend carries as they are."""

    message_id: str
    to: str
    to_name: str
    from_address: str
    from_name: str
    subject: str
    html: str
    text: str
    headers: Mapping[str, str]
    campaign: str
    customer_id: str
    treatment: str
    locale: str
    template_version: str
    created: datetime
    reply_to: str | None = None
    tags: tuple[str, ...] = ()
    send_at: datetime | None = None
    _mime: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def features(self) -> set[str]:
        """Optional features this message uses; a backend that cannot carry one raises."""
        return {f for f in FEATURES if getattr(self, f)}

    def mime_bytes(self, *, seven_bit: bool = False) -> bytes:
        """The complete RFC 5322 message (CRLF line ends), built once and kept."""
        key = "7bit" if seven_bit else "8bit"
        data = self._mime.get(key)
        if data is None:
            head = [
                mime.address("From", self.from_name, self.from_address),
                mime.address("To", self.to_name, self.to),
                mime.unstructured("Subject", self.subject),
                "Date: " + mime.date_header(self.created),
            ]
            if self.reply_to:
                head.append(mime.address("Reply-To", "", self.reply_to))
            head.extend(mime.header(k, v) for k, v in self.headers.items())
            data = self._mime[key] = mime.build(head=head, text=self.text, html=self.html,
                                                boundary="=_" + os.urandom(12).hex(),
                                                seven_bit=seven_bit)
        return data


def font_stack(locale: str) -> str:
    return FONT_STACKS.get(locale.replace("_", "-").split("-")[0].lower(), DEFAULT_FONTS)


class EmailRenderer:
    """Renders the e-mails of many customers; templates are loaded on first use per treatment.

    Build one per campaign run (or per process) and call :meth:`render` per context; the instance holds
    only compiled templates, so it is safe to share between threads.
    """

    def __init__(self, settings: Settings, segments, *, sender: str | None = None,
                 reply_to: str | None = None):
        self.settings = settings
        self.templates_dir = Path(settings.templates_dir)
        self.channels = {s.name: {getattr(c, "value", c) for c in s.channels} for s in segments.segments}
        name, addr = parseaddr(sender or str(settings.get("email_from", default=DEFAULT_FROM)))
        self.from_name = one_line(name)
        self.from_address = checked_address(addr, "COMMS_EMAIL_FROM")
        reply = reply_to or settings.get("email_reply_to", default=None)
        self.reply_to = checked_address(parseaddr(reply)[1], "COMMS_EMAIL_REPLY_TO") if reply else None
        self.domain = str(settings.get("email_message_id_domain",
                                       default=self.from_address.rpartition("@")[2]))
        self.max_seconds = float(settings.get("email_render_seconds", default=2.0, cast=float))
        self.max_bytes = int(settings.get("email_max_chars", default=500_000, cast=int))
        self.treatments = dict(segments.treatments)
        self._templates: dict[str, EmailTemplate] = {}
        self._variants: dict[tuple[str, str, str], tuple[LocaleVariant | None, str]] = {}

    def template(self, treatment: str) -> EmailTemplate:
        """The compiled template of a treatment (loaded once per renderer, compiled once per version)."""
        tpl = self._templates.get(treatment)
        if tpl is None:
            tpl = self._templates[treatment] = load_email_template(self.templates_dir, treatment)
        return tpl

    def constants(self, treatment: str, locale: str) -> dict[str, str]:
        """What every customer of a locale sees the same in this treatment (see email_variant)."""
        rtl = fmt.text_direction(locale) == "rtl"
        out = {"customer.dir": fmt.text_direction(locale), "customer.lang": fmt.language(locale),
               "email.font_family": font_stack(locale), "email.align": "right" if rtl else "left",
               "email.align_end": "left" if rtl else "right", "treatment.name": treatment}
        spec = self.treatments.get(treatment)
        if spec is not None:
            out.update({"treatment.title": spec.title_for(locale), "treatment.tone": spec.tone})
        return out

    def variant(self, treatment: str, locale: str) -> LocaleVariant | None:
        """The locale variant of a treatment's current template (built on first use)."""
        return self._variant(treatment, locale)[0]

    def _variant(self, treatment: str, locale: str) -> tuple[LocaleVariant | None, str]:
        """(variant or None, version of template and words) for a treatment in a locale."""
        tpl = self.template(treatment)
        key = (treatment, tpl.version, locale)
        found = self._variants.get(key)
        if found is None:
            words = strings_for(self.templates_dir, treatment, locale)
            digest = hashlib.sha256(json.dumps(words, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
            variant = build_variant(tpl.html_source, tpl.text_source, name=f"templates/{treatment}/email.mjml",
                                    locale=locale, constants=self.constants(treatment, locale), words=words)
            found = self._variants[key] = (variant, f"{tpl.version}.{digest[:8]}")
        return found

    def _fits(self, variant: LocaleVariant | None, context: Mapping[str, Any]) -> bool:
        """The variant may stand in for the context's words and values (a ContextBuilder context)."""
        if variant is None or not isinstance(context.get("t"), Messages):
            return False
        c = variant.constants
        customer, treatment = context["customer"], context["treatment"]
        return customer.get("dir") == c["customer.dir"] and customer.get("lang") == c["customer.lang"] \
            and treatment.get("title") == c.get("treatment.title", treatment.get("title")) \
            and treatment.get("tone") == c.get("treatment.tone", treatment.get("tone"))

    def has_video(self, context: Mapping[str, Any]) -> bool:
        segment = context.get("segment") or {}
        channels = segment.get("channels") if isinstance(segment, Mapping) else None
        if channels is None:
            channels = self.channels.get(segment.get("name", ""), ())
        return "video" in {getattr(c, "value", c) for c in channels}

    @staticmethod
    def _words_subject(context: Mapping[str, Any], treatment: str) -> str:
        try:
            return str(context["t"]["email"]["subject"])
        except KeyError as exc:
            raise RenderError(f"templates/{treatment}: no e-mail {exc.args[0]!r} in the strings "
                              "(templates/_base/strings/email/en.yaml or the treatment's)") from None

    def render(self, context: Mapping[str, Any], *, to: str | None = None, tags: Iterable[str] = (),
               send_at: datetime | None = None, fast: bool = True) -> RenderedEmail:
        """One customer's complete e-mail. RenderError (one line naming the template) on any problem.

        ``fast=False`` renders the general template with the context's own words (what the locale variant
        must equal; the tests compare both). A failure of the variant is rendered again that way, so the
        error names the word or the template it comes from.
        """
        try:
            return self._render(context, to, tuple(tags), send_at, fast)
        except RenderError:
            if not fast:
                raise
            return self._render(context, to, tuple(tags), send_at, False)

    def _render(self, context: Mapping[str, Any], to: str | None, tags: tuple[str, ...],
                send_at: datetime | None, fast: bool) -> RenderedEmail:
        treatment = context["treatment"]["name"]
        tpl = self.template(treatment)
        customer = context["customer"]
        address = checked_address(to or customer.get("email") or "", f"customer {customer['id']}")
        locale = customer["locale"]
        variant, version = self._variant(treatment, locale)
        if not fast or not self._fits(variant, context):
            variant = None
        ctx = dict(context)
        message_id = new_message_id()
        rtl = customer.get("dir") == "rtl"
        ctx["email"] = {"subject": "", "font_family": font_stack(locale), "align": "right" if rtl else "left",
                        "align_end": "left" if rtl else "right", "video": self.has_video(context),
                        "message_id": message_id}
        limits = {"max_bytes": self.max_bytes, "max_seconds": self.max_seconds}
        if variant is not None:
            head = render_limited(variant.head, ctx, name=f"templates/{treatment} e-mail text part", **limits)
            subject, _, text = head.partition(variant.separator)
        else:
            subject = self._words_subject(context, treatment)
            text = render_limited(tpl.text, ctx, name=f"templates/{treatment} e-mail text part", **limits)
        subject = one_line(subject)
        if not subject:
            raise RenderError(f"templates/{treatment}: the e-mail subject is empty")
        ctx["email"]["subject"] = subject
        html = render_limited(variant.html if variant else tpl.html, ctx,
                              name=f"templates/{treatment}/email.mjml", **limits)
        unsubscribe = context["links"]["unsubscribe"]
        if not unsubscribe.startswith("https://"):
            raise RenderError(f"the unsubscribe link must be https, got {unsubscribe[:40]!r} "
                              "(set COMMS_BASE_URL to an https URL)")
        headers = {
            "Message-ID": f"<{message_id}@{self.domain}>",
            "X-Comms-Message-Id": message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        return RenderedEmail(
            message_id=message_id, to=address, to_name=one_line(customer.get("name", "")),
            from_address=self.from_address, from_name=self.from_name, subject=subject, html=html, text=text,
            headers=headers, campaign=str(context["campaign"]["name"]), customer_id=str(customer["id"]),
            treatment=treatment, locale=locale, template_version=version,
            created=datetime.now(timezone.utc), reply_to=self.reply_to, tags=tags, send_at=send_at)


def _stem(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p).strip("_.-") or "x" for p in parts)


def preview(context: Mapping[str, Any], *, settings: Settings, out_dir: Path, segments,
            options: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the HTML, the text part and the whole message (.eml) of one customer; optionally send a test.

    ``options["send_test"]``: an address; the message goes there (subject prefixed "[TEST]") through the
    configured backend (COMMS_EMAIL_BACKEND), and a failure is an error, not a quiet line.
    """
    options = options or {}
    send_test = options.get("send_test")
    renderer = EmailRenderer(settings, segments)
    fallback = None if context["customer"].get("email") else "preview@example.invalid"
    email = renderer.render(context, to=send_test or fallback)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(str(context["customer"]["id"]), email.treatment, email.locale)
    paths = [out_dir / f"{stem}.html", out_dir / f"{stem}.txt", out_dir / f"{stem}.eml"]
    paths[0].write_text(email.html, encoding="utf-8")
    paths[1].write_text(email.text, encoding="utf-8")
    paths[2].write_bytes(email.mime_bytes())
    if send_test:
        from ..deliver import DeliveryError, backend_from_settings

        if not _ADDRESS.fullmatch(send_test):
            raise InputError(f"--send-test {send_test!r} is not an e-mail address")
        test = replace(email, subject=f"[TEST] {email.subject}")
        with backend_from_settings(settings) as backend:
            result = backend.send(test)
        if not result.accepted:
            raise DeliveryError(f"test e-mail to {send_test} via {backend.name}: {result.status.value}: "
                                f"{result.error}", result=result)
        import click

        click.echo(f"test e-mail sent to {send_test} via {backend.name}: {result.status.value}"
                   + (f" ({result.provider_message_id})" if result.provider_message_id else ""))
    return paths


def lint(settings: Settings, segments, treatments: list[str], customers: list) -> list:
    """Render every treatment for every customer in every segment and check the results (see email_lint)."""
    from .email_lint import lint_email

    return lint_email(settings, segments, treatments, customers)
