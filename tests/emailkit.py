"""Helpers shared by the e-mail and delivery tests (not collected: no test_ prefix)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from comms.config import Settings
from comms.payments import LinkSigner
from comms.render.context import ContextBuilder
from comms.render.email import EmailRenderer
from comms.render.samples import hostile_customer, sample_customer
from comms.segment.config import load_segments

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "spring-2026"


def kit(settings: Settings) -> SimpleNamespace:
    """Segments, signer, context builder and renderer on these settings."""
    segments = load_segments(settings.segments_file, settings.templates_dir)
    signer = LinkSigner.from_settings(settings)
    builder = ContextBuilder(settings, segments, signer, CAMPAIGN)
    return SimpleNamespace(settings=settings, segments=segments, signer=signer, builder=builder,
                           renderer=EmailRenderer(settings, segments))


def render(k: SimpleNamespace, locale: str = "en-US", segment: str = "final", customer=None, **kw):
    """(email, context) for a sample customer of a locale (or the given customer) in a segment."""
    customer = customer or (hostile_customer() if locale == "hostile" else sample_customer(locale))
    context = k.builder.build(customer, segment)
    return k.renderer.render(context, **kw), context


def renamed(customer, name: str, email: str | None = None):
    return replace(customer, name=name, given_name=None, email=email or customer.email)


def copy_templates(home: Path, monkeypatch) -> tuple[Path, Settings]:
    """A private copy of templates/ that a test may break; settings (on the test home) that use it."""
    target = home.parent / "templates"
    shutil.copytree(ROOT / "templates", target)
    monkeypatch.setenv("COMMS_TEMPLATES_DIR", str(target))
    return target, Settings.load(home)


def pay_button_href(html: str) -> str:
    """The href of the first <a> that points at the payment page (the button)."""
    return re.search(r'<a href="(https://[^"]+/pay)"', html).group(1)


def token(url: str) -> str:
    return re.search(r"/(?:p|u)/([A-Za-z0-9_-]+)", url).group(1)
