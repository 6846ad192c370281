"""`comms lint`: a broken, unsafe or non-compliant template is caught before any customer gets it."""

from __future__ import annotations

import pytest

from comms.deliver.memory import MemoryBackend
from comms.render.email_lint import lint_email
from comms.render.samples import hostile_customer, sample_customer, sample_customers
from comms.render.sandbox import RenderError
from comms.segment.config import load_segments
from emailkit import copy_templates, kit, render


def test_shipped_templates_pass_lint(cli):
    proc = cli("lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: 4 treatment(s) x 4 segments x 7 sample customers" in proc.stdout
    assert "0 warning(s)" in proc.stdout and "error:" not in proc.stdout


def test_typo_in_a_variable_fails_lint_and_never_sends(home, monkeypatch, cli):
    templates, settings = copy_templates(home, monkeypatch)
    content = templates / "final_notice" / "email.mjml"
    lines = content.read_text().splitlines()
    lines.insert(3, "<mj-section><mj-column><mj-text>{{ customer.nmae }}</mj-text></mj-column></mj-section>")
    content.write_text("\n".join(lines) + "\n")

    proc = cli("lint", "final_notice", "--locale", "en", env={"COMMS_TEMPLATES_DIR": str(templates)})
    assert proc.returncode == 2
    assert "lint failed" in proc.stderr and "Traceback" not in proc.stderr
    assert "has no attribute 'nmae'" in proc.stdout
    assert f"{content} line 4" in proc.stdout

    k = kit(settings)
    backend = MemoryBackend()
    with pytest.raises(RenderError, match="nmae"):
        backend.send(render(k, "en-US", "final")[0])
    assert backend.outbox == []


BROKEN = {
    "image without alt": ("email.mjml", "<mj-include path=\"video.mjml\" />",
                          '<mj-section><mj-column><mj-image src="https://example.com/logo.png" />'
                          "</mj-column></mj-section>", "image without alt text"),
    "http link": ("email.mjml", "<mj-include path=\"closing.mjml\" />",
                  '<mj-include path="closing.mjml" /><mj-section><mj-column><mj-text>'
                  '<a href="http://example.com/help">help</a></mj-text></mj-column></mj-section>',
                  "http: link or image in the HTML part"),
    "footer without opt-out": ("email/footer.mjml", None,
                               "<mj-section><mj-column><mj-text>{{ t.footer_reason }}</mj-text></mj-column>"
                               "</mj-section>", "missing opt-out link (links.unsubscribe) in the HTML footer"),
    "no payment link": ("email/pay.mjml", None,
                        "<mj-section><mj-column><mj-text>{{ t.pay_now }}</mj-text></mj-column></mj-section>",
                        "missing payment link (links.pay) in the HTML part"),
    "no text part": ("email/text.txt.j2", None, "{# nothing #}", "missing text part"),
    "HTML over 90 KB": ("email.mjml", "<mj-include path=\"closing.mjml\" />",
                        '<mj-include path="closing.mjml" /><mj-section><mj-column><mj-text>'
                        + "Lorem ipsum dolor sit amet. " * 3500 + "</mj-text></mj-column></mj-section>",
                        "over the 90 KB limit"),
    "MJML error": ("email.mjml", "<mj-include path=\"closing.mjml\" />",
                   "<mj-sectoin><mj-column><mj-text>x</mj-text></mj-column></mj-sectoin>",
                   "MJML error: unknown element <mj-sectoin>"),
    "unescaped name": ("email/greeting.mjml", "{{ t.greeting }}", "{{ customer.name|safe }}",
                       "unescaped customer data"),
    "Jinja syntax": ("email.mjml", "<mj-include path=\"closing.mjml\" />", "{% if offers.plans %}",
                     "email.mjml line"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_lint_reports_what_would_break_the_message(home, monkeypatch, case):
    templates, settings = copy_templates(home, monkeypatch)
    name, old, new, expected = BROKEN[case]
    path = templates / "early_reminder" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if old is None:
        path.write_text(new)
    else:
        source = (path if path.exists() else templates / "_base" / name).read_text()
        assert old in source
        path.write_text(source.replace(old, new))
    segments = load_segments(settings.segments_file, settings.templates_dir)
    problems = lint_email(settings, segments, ["early_reminder"], [sample_customer("he-IL"), hostile_customer()])
    errors = [p.line() for p in problems if p.severity == "error"]
    assert any(expected in e for e in errors), errors
    assert all("early_reminder" in e for e in errors)


def test_missing_translation_is_a_warning_not_an_error(home, monkeypatch):
    templates, settings = copy_templates(home, monkeypatch)
    words = templates / "early_reminder" / "strings" / "email" / "it.yaml"
    words.write_text("\n".join(line for line in words.read_text().splitlines() if not line.startswith("body:")))
    segments = load_segments(settings.segments_file, settings.templates_dir)
    problems = lint_email(settings, segments, ["early_reminder"], sample_customers())
    assert [p.severity for p in problems] == ["warning"]
    assert "it-IT: words missing, English used: email.body" in problems[0].line()
