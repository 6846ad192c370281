"""The e-mail a customer receives: their name, their amounts in their locale, their link, their offer."""

from __future__ import annotations

import html as htmllib
import re
import uuid

import pytest
from markupsafe import escape

from comms.render import formatting as fmt
from comms.render import mjml
from comms.render.samples import HOSTILE_NAME, sample_customer, sample_customers
from comms.render.sandbox import RenderError
from emailkit import CAMPAIGN, copy_templates, kit, pay_button_href, renamed, render, token


@pytest.fixture
def k(settings):
    return kit(settings)


def test_customer_is_greeted_by_name_with_amounts_and_dates_in_their_locale(k):
    email, ctx = render(k, "it-IT", "firm")
    customer = sample_customer("it-IT")
    balance = fmt.money(customer.balance, "EUR", "it-IT")
    assert balance.endswith("€") and "," in balance
    for part in (email.html, email.text):
        assert "Gentile Giulia," in part
        assert balance in htmllib.unescape(part)
        for inv in customer.invoices:
            assert inv.number in part
            assert fmt.day(inv.due_date, "it-IT") in htmllib.unescape(part)
            assert fmt.money(inv.open_amount, "EUR", "it-IT") in htmllib.unescape(part)
    assert email.subject == f"Pagamento scaduto: {balance}"
    assert 'lang="it-IT"' in email.html and 'dir="ltr"' in email.html


def test_hostile_name_is_escaped_in_the_html_and_verbatim_in_the_text(k):
    email, _ = render(k, "hostile", "hardship")
    assert "<script" not in email.html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Brien &amp; Sons" in email.html
    assert "{{ 7*7 }}" in email.html and ">49<" not in email.html
    assert f"Dear {HOSTILE_NAME}," in email.text
    assert email.subject.startswith(HOSTILE_NAME)
    assert f"<title>{escape(email.subject)}</title>" in email.html


def test_hebrew_email_is_right_to_left(k):
    email, _ = render(k, "he-IL", "hardship")
    assert re.search(r'<html lang="he-IL" dir="rtl"', email.html)
    assert 'role="article" lang="he-IL" dir="rtl"' in email.html
    assert "direction:rtl" in email.html and "text-align:right" in email.html
    assert "direction:ltr" not in email.html
    english, _ = render(k, "en-US", "hardship")
    assert 'dir="ltr"' in english.html and "text-align:right" not in english.html.split("<body", 1)[1] \
        .replace("text-align:right;white-space:nowrap", "").replace('text-align:right;">', "")


def test_chinese_email_uses_a_cjk_font_stack(k):
    chinese, _ = render(k, "zh-CN", "early")
    english, _ = render(k, "en-US", "early")
    assert "font-family:PingFang SC, Hiragino Sans GB, Microsoft YaHei, Noto Sans CJK SC" in chinese.html
    assert "PingFang" not in english.html
    assert 'lang="zh-CN"' in chinese.html


def test_signed_payment_link_is_a_button_and_plain_text_and_verifies(k):
    email, ctx = render(k, "pl-PL", "final")
    href = pay_button_href(email.html)
    assert href == ctx["links"]["pay"]
    assert href in email.text
    claims = k.signer.verify(token(href))
    assert (claims.campaign, claims.customer_id) == (CAMPAIGN, "S-PL")


def test_each_segment_gets_its_own_offer(k):
    final, ctx = render(k, "en-US", "final")
    settlement = ctx["offers"]["settlement"]
    assert f"Pay {settlement['pay']} by {settlement['deadline']} and we waive {settlement['discount']}" \
        in htmllib.unescape(final.html)
    assert settlement["pay"] in final.text
    hardship, ctx = render(k, "en-US", "hardship")
    assert [p["months"] for p in ctx["offers"]["plans"]] == [3, 6, 12]
    for plan in ctx["offers"]["plans"]:
        assert f"{plan['months']} x {plan['instalment']}" in hardship.text
        assert plan["instalment"] in hardship.html
    assert "we waive" not in hardship.html
    early, _ = render(k, "en-US", "early")
    assert "we waive" not in early.html and "monthly plan" not in early.html
    assert "Promise a payment date" in early.text


def test_video_segments_show_a_poster_that_links_to_the_video_page(k):
    with_video, ctx = render(k, "ru-RU", "final")
    video = ctx["links"]["video"]
    poster = re.search(rf'<a href="{re.escape(video)}"[^>]*><img alt="([^"]+)"[^>]*src="{re.escape(video)}/poster.jpg"',
                       with_video.html)
    assert poster and poster.group(1).strip()
    assert video in with_video.text
    without, ctx = render(k, "ru-RU", "firm")
    assert "poster.jpg" not in without.html and ctx["links"]["video"] not in without.text


def test_one_click_unsubscribe_headers_and_footer_opt_out(k):
    email, ctx = render(k, "en-US", "early")
    url = ctx["links"]["unsubscribe"]
    assert url.startswith("https://")
    assert email.headers["List-Unsubscribe"] == f"<{url}>"
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Unsubscribe from these e-mails</a>', email.html)
    assert f"Unsubscribe from these e-mails:\n{url}" in email.text
    assert email.headers["X-Comms-Message-Id"] == email.message_id
    assert email.headers["Message-ID"] == f"<{email.message_id}@example.com>"


def test_locale_variant_renders_exactly_like_the_general_template(k):
    for treatment in k.segments.treatments:
        for segment in k.segments.segments:
            k.builder.segments[segment.name] = segment.model_copy(update={"treatment": treatment})
            for customer in sample_customers():
                ctx = k.builder.build(customer, segment.name)
                fast, slow = k.renderer.render(ctx), k.renderer.render(ctx, fast=False)
                assert (fast.subject, fast.text, fast.html) == (slow.subject, slow.text, slow.html), \
                    (treatment, segment.name, customer.locale)


def test_mjml_is_compiled_once_per_template_version(home, monkeypatch):
    templates, settings = copy_templates(home, monkeypatch)
    footer = templates / "_base" / "email" / "footer.mjml"
    footer.write_text(footer.read_text() + f"\n<!-- {uuid.uuid4()} -->\n")  # a version no test compiled yet
    k = kit(settings)
    before = mjml.compile_count
    first = [render(k, loc, "early")[0] for loc in ("en-US", "it-IT", "he-IL") * 4]
    assert mjml.compile_count == before + 1
    assert len({e.template_version.split(".")[0] for e in first}) == 1  # one MJML/text version
    assert len({e.template_version for e in first}) == 3  # and the words of three languages
    footer.write_text(footer.read_text().replace("#eef1f5", "#f0f0f0"))
    again = kit(settings)
    second, _ = render(again, "en-US", "early")
    assert mjml.compile_count == before + 2
    assert second.template_version != first[0].template_version
    assert "#f0f0f0" in second.html


def test_render_is_bounded_in_size_and_time(home, monkeypatch):
    templates, settings = copy_templates(home, monkeypatch)
    content = templates / "early_reminder" / "email.mjml"
    original = content.read_text()
    content.write_text(original + "\n<mj-raw>{{ 'x' * 300000 }}</mj-raw>\n")
    monkeypatch.setenv("COMMS_EMAIL_MAX_CHARS", "200000")
    with pytest.raises(RenderError, match="larger than 200000"):
        render(kit(settings), "en-US", "early")
    content.write_text(original + "\n<mj-raw>{% for i in range(99999) %}{% for j in range(99999) %}"
                                  "{% endfor %}{% endfor %}</mj-raw>\n")
    monkeypatch.setenv("COMMS_EMAIL_RENDER_SECONDS", "0.3")
    with pytest.raises(RenderError, match="longer than 0.3 s"):
        render(kit(settings), "en-US", "early")


def test_customer_without_an_address_is_not_rendered_unless_given_one(k):
    nobody = sample_customer("en-US").__class__(**{**sample_customer("en-US").__dict__, "email": None})
    with pytest.raises(RenderError, match="not an e-mail address"):
        render(k, customer=nobody)
    email, _ = render(k, customer=nobody, to="test@example.org")
    assert email.to == "test@example.org"


def test_customer_data_cannot_add_headers(k):
    sneaky = renamed(sample_customer("en-US"), "Eve\r\nBcc: victim@example.org\r\nX-Evil: 1")
    email, _ = render(k, customer=sneaky, segment="hardship")
    assert "\n" not in email.subject and "\r" not in email.subject
    raw = email.mime_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert not re.search(r"^(Bcc|X-Evil):", head, re.M)
    assert all(len(line) <= 78 for line in head.split("\r\n") if not line.startswith(("List-Unsubscribe:",)))
