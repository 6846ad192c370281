"""The personal page in a real browser: Debian's Chromium driven by Playwright against uvicorn on loopback.

Phone-sized screenshots land in a temporary folder (or in COMMS_SCREENSHOTS, when set, to look at them).
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from comms.events import load_events
from comms.payments.status import contact_blockers
from comms.store.schema import payments
from comms.web import create_app
from test_web_support import CAMPAIGN, free_port, make_home, serve, write_artifacts, write_portfolio

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    port = free_port()
    settings = make_home(tmp_path_factory.mktemp("browser"), port)
    app = create_app(settings)
    write_portfolio(app.site.store)
    write_artifacts(settings)
    served = serve(app, port)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-packages")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("COMMS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def phone(browser, web):
    context = browser.new_context(base_url=web.url, locale="en-US", **PHONE)
    page = context.new_page()
    yield page
    context.close()


def link(web, customer_id: str) -> str:
    return f"/p/{web.site.signer.sign(CAMPAIGN, customer_id)}"


def test_a_customer_watches_plans_promises_pays_and_opts_out(web, phone, shots):
    page = phone
    url = link(web, "C-EN")
    page.goto(url)
    assert "Jordan" in page.locator("h1").inner_text()
    assert page.get_by_test_id("balance").inner_text() == "$1,234.56"
    page.screenshot(path=shots / "en-1-page.png", full_page=True)

    page.keyboard.press("Tab")  # the first stop is the skip link, and it leads to the content
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    video = page.locator("video")
    video.scroll_into_view_if_needed()
    video.evaluate("v => { v.muted = true; return v.play(); }")
    for _ in range(150):  # (wait_for_function would need eval, which the page's policy forbids)
        if page.evaluate("document.querySelector('video').ended"):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("document.querySelector('video').ended")
    assert page.evaluate("document.querySelector('video').textTracks[0].mode") == "showing"
    page.wait_for_timeout(300)  # beacons leave on 'ended'

    day = (date.today() + timedelta(days=5)).isoformat()
    page.locator("#promise-date").fill(day)
    page.get_by_role("button", name="Promise to pay").click()
    assert "noted your promise" in page.get_by_role("status").inner_text()
    assert page.get_by_test_id("promise-status").is_visible()

    plan = page.locator("details.plan[data-months='6']")
    plan.locator("summary").click()
    rows = plan.locator("table.schedule tbody tr")
    assert rows.count() == 6 and "$205.76" in rows.nth(0).inner_text()
    page.screenshot(path=shots / "en-2-plan-schedule.png", full_page=True)
    plan.get_by_role("button", name=re.compile("Choose this plan")).click()
    assert "instalment plan is set up" in page.get_by_role("status").inner_text()
    status = page.get_by_test_id("plan-status")
    assert status.locator("tbody tr").count() == 6 and "6 months" in status.inner_text()

    page.get_by_test_id("pay-now").click()
    assert page.get_by_label(re.compile("next instalment")).is_checked()
    page.get_by_role("button", name="Continue to payment").click()
    assert "TEST MODE" in page.locator(".test-banner").inner_text()
    page.screenshot(path=shots / "en-3-checkout.png", full_page=True)
    page.get_by_role("button", name="Pay $205.76").click()
    assert "received your payment" in page.get_by_role("status").inner_text()
    assert page.get_by_test_id("balance").inner_text() == "$1,028.80"
    assert "$205.76" in page.get_by_test_id("paid").inner_text()

    page.get_by_label(re.compile("E-mail to c-en@example.com")).uncheck()
    page.get_by_role("button", name="Save my choices").click()
    assert "contact choices are saved" in page.get_by_role("status").inner_text()
    assert not page.get_by_label(re.compile("E-mail to")).is_checked()
    page.screenshot(path=shots / "en-4-after.png", full_page=True)

    assert "opted out of email at this address" in contact_blockers(web.site.store, "C-EN", "email",
                                                                     "c-en@example.com")
    with web.site.store.begin() as conn:
        assert conn.execute(select(payments.c.amount).where(payments.c.customer_id == "C-EN")).scalar_one() \
            == Decimal("205.76")
    web.site.events.flush()
    played = load_events(web.site.store, campaign=CAMPAIGN, kinds=["video_played"])
    assert sorted(d["quartile"] for d in played.data) == [0, 25, 50, 75, 100]
    kinds = set(load_events(web.site.store, campaign=CAMPAIGN).kind)
    assert {"page_viewed", "promise_made", "plan_chosen", "pay_clicked", "paid", "opted_out"} <= kinds


def test_the_essentials_work_without_javascript(browser, web, shots):
    context = browser.new_context(base_url=web.url, java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto(link(web, "C-PL"))
    assert page.get_by_test_id("balance").inner_text() == "640,00\xa0zł"
    page.locator("#promise-date").fill((date.today() + timedelta(days=3)).isoformat())
    page.locator("#promise button").click()
    assert page.get_by_test_id("promise-status").is_visible()
    context.close()


def _missing_glyphs(page) -> list[str]:
    """Characters of the page drawn exactly like a code point no font has (the .notdef box)."""
    return page.evaluate("""() => {
      const family = getComputedStyle(document.body).fontFamily;
      const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
      const ctx = canvas.getContext('2d');
      const draw = ch => { ctx.clearRect(0, 0, 48, 48); ctx.font = '32px ' + family;
                           ctx.fillText(ch, 4, 36); return ctx.getImageData(0, 0, 48, 48).data.join(','); };
      const nothing = draw('\\u{10FFFD}');
      const chars = [...new Set([...document.body.innerText].filter(c => c.trim() && c.charCodeAt(0) > 127))];
      return chars.filter(c => draw(c) === nothing);
    }""")


def test_hebrew_reads_right_to_left_and_chinese_has_every_glyph(browser, web, shots):
    context = browser.new_context(base_url=web.url, **PHONE)
    page = context.new_page()
    page.goto(link(web, "C-HE"))
    assert page.evaluate("getComputedStyle(document.documentElement).direction") == "rtl"
    h1 = page.locator("h1").bounding_box()
    assert h1["x"] + h1["width"] > 390 - 40  # the heading starts at the right edge
    assert "שרה" in page.locator("h1").inner_text()
    page.screenshot(path=shots / "he-page.png", full_page=True)

    page.goto(link(web, "C-ZH"))
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "秀英" in page.locator("h1").inner_text() and "¥8,800.00" in page.get_by_test_id("balance").inner_text()
    assert page.evaluate("[...'\\u{10FFFC}'].length") == 1
    assert _missing_glyphs(page) == []
    page.evaluate("document.body.append('\\u{10FFFC}')")
    assert _missing_glyphs(page) == ["\U0010fffc"]  # the check does see a missing glyph
    page.goto(link(web, "C-ZH"))
    page.screenshot(path=shots / "zh-page.png", full_page=True)
    for cid in ("C-IT", "C-RU"):
        page.goto(link(web, cid))
        assert _missing_glyphs(page) == []
        page.screenshot(path=shots / f"{cid[2:].lower()}-page.png", full_page=True)
    context.close()


def test_a_tampered_link_and_another_customers_checkout_show_nothing(web, phone, shots):
    page = phone
    token = link(web, "C-OTHER")
    response = page.goto(token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"))
    assert response.status == 404
    assert "not available" in page.locator("h1").inner_text() and "Alex" not in page.content()
    page.screenshot(path=shots / "neutral.png", full_page=True)

    page.goto(token)
    page.get_by_test_id("pay-now").click()
    page.get_by_role("button", name="Continue to payment").click()
    checkout_path = page.url.split(web.url, 1)[1]
    checkout_id = checkout_path.rsplit("/", 1)[1]
    response = page.goto(f"{link(web, 'C-IT')}/checkout/{checkout_id}")
    assert response.status == 404 and "Alex" not in page.content() and "777" not in page.content()


_WCAG = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lin = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                               if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const problems = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || !box.width || !box.height) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden') continue;
    const a = lum(rgb(st.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need}: ${el.textContent.trim().slice(0, 30)}`);
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label')) problems.push(`no label: ${el.name}`);
  }
  return problems;
}"""


def test_pages_meet_wcag_basics_labels_contrast_and_visible_focus(browser, web):
    # a keyboard user: narrow window, no touch emulation (a touch device never shows a keyboard focus ring)
    context = browser.new_context(base_url=web.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    for cid in ("C-IT", "C-HE"):
        page.goto(link(web, cid))
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate(_WCAG) == []
        seen = []
        for _ in range(30):
            page.keyboard.press("Tab")
            focus = page.evaluate("""() => { const el = document.activeElement, st = getComputedStyle(el);
                // the date field's own calendar button (inside the browser's control) gets the browser's ring
                if (el.type === 'date' && !el.matches(':focus')) return ['DATE-PICKER', true];
                return [el.tagName, st.outlineStyle !== 'none' && st.outlineWidth !== '0px' || st.boxShadow !== 'none'];
            }""")
            if focus[0] == "BODY":  # past the last control
                break
            seen.append(focus[0])
            assert focus[1], f"no visible focus on {focus[0]}"
        assert {"A", "BUTTON", "INPUT"} <= set(seen)
    page.goto(link(web, "C-IT") + "/pay")
    assert page.evaluate(_WCAG) == []
    context.close()
