"""The web app over real HTTP (uvicorn on loopback, SQLite): links, security, forms, files, unsubscribe, logs."""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from comms.events import load_events
from comms.payments import revoke_customer, revoke_token
from comms.payments.status import contact_blockers
from comms.store.schema import arrangements, checkouts, contact_opt_outs, payments
from comms.render.context import Messages
from comms.web import create_app
from comms.web.cache import PageCache
from comms.web.view import PageEnvironment, newest_mtime
from test_web_support import CAMPAIGN, free_port, make_home, serve, write_artifacts, write_portfolio


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    port = free_port()
    settings = make_home(tmp_path_factory.mktemp("web"), port, web_rate_link=2, web_burst_link=30)
    app = create_app(settings)
    write_portfolio(app.site.store)
    write_artifacts(settings)
    served = serve(app, port)
    yield served
    served.stop()


@pytest.fixture
def client(web):
    with httpx.Client(base_url=web.url, follow_redirects=False, timeout=10) as c:
        yield c


def link(web, customer_id: str, **kw) -> str:
    return f"/p/{web.site.signer.sign(CAMPAIGN, customer_id, **kw)}"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def post_form(client, page_url: str, action: str, data: dict) -> httpx.Response:
    page = client.get(page_url)
    assert page.status_code == 200
    return client.post(page_url + action, data={"csrf": csrf_of(page.text), **data})


def count(web, table, customer_id: str) -> int:
    with web.site.store.begin() as conn:
        return conn.execute(select(func.count()).select_from(table).where(table.c.customer_id == customer_id)).scalar()


def test_page_greets_by_name_and_shows_balance_as_the_locale_writes_it(web, client):
    r = client.get(link(web, "C-IT"))
    assert r.status_code == 200
    assert "Giulia" in r.text
    assert "1750,00\xa0€" in r.text or "1.750,00\xa0€" in r.text
    assert 'lang="it-IT"' in r.text and 'dir="ltr"' in r.text


def test_forged_tampered_expired_and_revoked_links_all_get_the_same_neutral_page(web, client):
    good = link(web, "C-PL")
    token = good.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    expired = web.site.signer.sign(CAMPAIGN, "C-PL", ttl=timedelta(days=1),
                                   now=datetime.now(timezone.utc) - timedelta(days=3))
    revoked = web.site.signer.sign(CAMPAIGN, "C-PL")
    revoke_token(web.site.store, revoked, "test")
    unknown_customer = web.site.signer.sign(CAMPAIGN, "C-NOBODY")
    bodies = set()
    for t in (tampered, "forged-" + token[7:], expired, revoked, unknown_customer):
        r = client.get(f"/p/{t}", headers={"accept-language": "en"})
        assert r.status_code == 404
        assert "Łukasz" not in r.text and "640" not in r.text and "C-PL" not in r.text
        bodies.add(r.text)
    assert len(bodies) == 1
    assert client.get(good).status_code == 200


def test_revoking_a_customer_closes_their_page_at_once(web, client):
    url = link(web, "C-RU")
    for _ in range(2):  # the second view puts the page in the page cache
        assert client.get(url).status_code == 200
    revoke_customer(web.site.store, web.site.signer, "C-RU", "test")
    assert client.get(url).status_code == 404


def test_responses_carry_a_strict_policy_and_forbid_shared_caching(web, client):
    r = client.get(link(web, "C-EN"))
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "no-store" in r.headers["cache-control"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text and " style=" not in r.text  # nothing inline for the policy to refuse


def test_one_customers_link_never_reaches_another_customers_checkout_or_files(web, client):
    other = link(web, "C-OTHER")
    mine = link(web, "C-EN")
    page = client.get(other)
    pay = client.post(other + "/pay", data={"csrf": csrf_of(page.text), "choice": "full"})
    checkout_id = pay.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"{other}/checkout/{checkout_id}").status_code == 200
    assert client.get(f"{mine}/checkout/{checkout_id}").status_code == 404
    assert client.get(f"{other}/letter.pdf").status_code == 404  # C-OTHER has no letter; C-EN's is not served
    for path in ("/..%2F..%2Fletters%2FC-EN.pdf", "/%2e%2e/letter.pdf", "/passwd", "/video.mp4%00"):
        assert client.get(other + path).status_code in (404, 405)


def test_a_form_without_its_csrf_token_changes_nothing(web, client):
    url = link(web, "C-HE")
    before = count(web, arrangements, "C-HE")
    r = client.post(url + "/dispute", data={"reason": "not_mine"})
    assert r.status_code == 303 and "error=session" in r.headers["location"]
    r = client.post(url + "/dispute", data={"reason": "not_mine", "csrf": "x" * 32})
    assert "error=session" in r.headers["location"]
    assert count(web, arrangements, "C-HE") == before


def test_a_promise_outside_the_window_is_refused_and_inside_it_stops_reminders(web, client):
    url = link(web, "C-PL")
    r = post_form(client, url, "/promise", {"date": "2099-01-01"})
    assert "error=promise_date" in r.headers["location"]
    assert contact_blockers(web.site.store, "C-PL", "email") == []
    day = (datetime.now(timezone.utc).date() + timedelta(days=5)).isoformat()
    r = post_form(client, url, "/promise", {"date": day})
    assert r.headers["location"].endswith("?done=promise#status")
    assert contact_blockers(web.site.store, "C-PL", "email") == [f"promise to pay until {day}"]


def test_a_dispute_pauses_reminders_and_its_words_stay_out_of_events(web, client):
    url = link(web, "C-ZH")
    post_form(client, url, "/dispute", {"reason": "wrong_amount", "details": "my phone is +49 555 123"})
    assert "dispute open" in contact_blockers(web.site.store, "C-ZH", "letter")
    web.site.events.flush()
    events = load_events(web.site.store, campaign=CAMPAIGN, kinds=["dispute_opened"])
    assert events.data.tolist() == [{"reason": "wrong_amount"}]
    assert "555" not in str(load_events(web.site.store).to_dict())


def test_get_on_the_unsubscribe_url_changes_nothing_and_one_click_post_opts_out(web, client):
    token = web.site.signer.sign(CAMPAIGN, "C-IT")
    r = client.get(f"/u/{token}")
    assert r.status_code == 200 and "List-Unsubscribe" in r.text
    assert count(web, contact_opt_outs, "C-IT") == 0
    fresh = httpx.post(f"{web.url}/u/{token}", content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})  # no cookie, no CSRF
    assert fresh.status_code == 200
    assert contact_blockers(web.site.store, "C-IT", "email", "c-it@example.com") == \
        ["opted out of email at this address"]
    assert contact_blockers(web.site.store, "C-IT", "email", "new-address@example.com") == []
    assert contact_blockers(web.site.store, "C-IT", "letter") == []
    again = httpx.post(f"{web.url}/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and count(web, contact_opt_outs, "C-IT") == 1
    assert httpx.post(f"{web.url}/u/{token}", data={"something": "else"}).status_code == 400
    bare = httpx.post(f"{web.url}/u/{web.site.signer.sign(CAMPAIGN, 'C-RU')}", content=b"List-Unsubscribe=One-Click")
    assert bare.status_code == 200 and count(web, contact_opt_outs, "C-RU") == 1


def test_a_demo_payment_submitted_twice_is_recorded_once(web, client):
    url = link(web, "C-OTHER")
    page = client.get(url)
    start = client.post(url + "/pay", data={"csrf": csrf_of(page.text), "choice": "full"})
    checkout = start.headers["location"]
    shown = client.get(checkout)
    assert "TEST MODE" in shown.text and "$777.77" in shown.text
    for _ in range(2):
        done = client.post(checkout, data={"csrf": csrf_of(shown.text), "action": "pay"})
        assert done.status_code == 303
    assert count(web, payments, "C-OTHER") == 1
    after = client.get(url)
    assert "$0.00" in after.text and contact_blockers(web.site.store, "C-OTHER", "email") == ["paid"]


def test_a_page_seen_before_shows_a_new_payment_at_once(web, client):
    url = link(web, "C-XSS")
    assert "$99.99" in client.get(url).text
    r = post_form(client, url, "/pay", {"choice": "full"})
    shown = client.get(r.headers["location"])
    client.post(r.headers["location"], data={"csrf": csrf_of(shown.text), "action": "pay"})
    assert "$0.00" in client.get(url).text


def test_a_hostile_name_is_shown_as_text(web, client):
    r = client.get(link(web, "C-XSS"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Brien &amp; Sons {{ 7*7 }}" in r.text
    assert "<script>alert" not in r.text and "49" not in r.text.split("O&#39;Brien")[1][:40]


def test_video_and_letter_are_served_to_their_customer_only(web, client):
    url = link(web, "C-EN")
    page = client.get(url).text
    assert f'{url}/video.mp4' in page and "captions.vtt" in page and f"{url}/letter.pdf" in page
    part = client.get(url + "/video.mp4", headers={"range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.headers["content-type"] == "video/mp4"
    assert client.get(url + "/captions.vtt").text.startswith("WEBVTT")
    letter = client.get(url + "/letter.pdf")
    assert letter.content.startswith(b"%PDF") and "attachment" in letter.headers["content-disposition"]
    assert "no-store" in letter.headers["cache-control"]
    assert client.get(link(web, "C-IT") + "/video.mp4").status_code == 404


def test_views_are_recorded_with_campaign_channel_and_variant_but_nothing_personal(web, client):
    client.get(link(web, "C-EN") + "?via=email&v=B")
    client.get(link(web, "C-EN") + "?via=<script>&v=" + "x" * 100)
    web.site.events.flush()
    views = load_events(web.site.store, campaign=CAMPAIGN, kinds=["page_viewed"])
    mine = views[views.customer_id == "C-EN"]
    assert ("email", "B") in set(zip(mine.channel, mine.variant))
    last = mine.iloc[-1]  # the hostile via and variant were dropped, not stored
    assert last.channel == "page" and pd.isna(last.variant)
    text = str(load_events(web.site.store).drop(columns=["occurred_at"]).to_dict())
    assert "Jordan" not in text and "@example.com" not in text and "/p/" not in text


def test_a_link_is_rate_limited(web, client):
    url = link(web, "C-PL")
    codes = [client.get(url).status_code for _ in range(45)]
    assert codes[0] == 200 and 429 in codes
    assert client.get(link(web, "C-IT")).status_code == 200  # other links are not affected


def test_logs_show_a_token_digest_never_the_token_or_a_name(web, client, caplog):
    caplog.set_level(logging.INFO, logger="comms.web")
    token = web.site.signer.sign(CAMPAIGN, "C-HE")
    client.get(f"/p/{token}")
    client.get(f"/p/{token}x")
    text = caplog.text
    assert "/p/{" in text and "127.0.0.0 GET" in text  # the client address is masked too
    assert token not in text and "שרה" not in text and "C-HE" not in text


def test_the_plan_form_offers_only_the_segments_plans(web, client):
    url = link(web, "C-HE")
    r = post_form(client, url, "/plan", {"months": "7"})
    assert "error=plan" in r.headers["location"]
    r = post_form(client, url, "/plan", {"months": "6"})
    assert r.headers["location"].endswith("?done=plan#status")
    blockers = contact_blockers(web.site.store, "C-HE", "email")
    assert len(blockers) == 1 and blockers[0].startswith("instalment plan until ")
    page = client.get(url).text
    assert page.count("<tr><td>") >= 6 and "data-testid=\"plan-status\"" in page


def test_amounts_on_the_page_are_the_servers_not_the_forms(web, client):
    url = link(web, "C-IT")
    r = post_form(client, url, "/pay", {"choice": "settlement", "amount": "1.00"})
    with web.site.store.begin() as conn:
        row = conn.execute(select(checkouts.c.amount, checkouts.c.waive).where(
            checkouts.c.id == r.headers["location"].rsplit("/", 1)[1])).one()
    assert row.amount == Decimal("1575.00") and row.waive == Decimal("175.00")


def test_page_views_wait_for_the_writer_and_none_is_lost_at_shutdown(tmp_path):
    port = free_port()
    app = create_app(make_home(tmp_path, port))
    write_portfolio(app.site.store)
    served = serve(app, port)
    try:
        with httpx.Client(base_url=served.url, timeout=10) as c:
            for cid in ("C-EN", "C-IT", "C-PL"):
                assert c.get(f"/p/{app.site.signer.sign(CAMPAIGN, cid)}").status_code == 200
    finally:
        served.stop()
    views = load_events(app.site.store, campaign=CAMPAIGN, kinds=["page_viewed"])
    assert sorted(views.customer_id) == ["C-EN", "C-IT", "C-PL"]


def test_the_page_cache_keeps_a_page_from_its_second_view_on():
    cache = PageCache(max_bytes=1 << 20)
    key = ("token", "2026-05-01", 1)
    assert cache.get(key) is None and not cache.admit(key)  # a first view is only remembered
    assert cache.get(key) is None and cache.admit(key)
    cache.put(key, "<p>page</p>")
    assert cache.get(key) == "<p>page</p>"
    assert not PageCache(max_bytes=0).admit(key) and not PageCache(max_bytes=0).admit(key)


def test_the_page_sandbox_reads_names_exactly_as_the_plain_sandbox_does():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    words = Messages({"hello": "Hi {{ name }}", "page": {"title": "Your account"}}, {"name": "Ann"}, {})
    context = {"d": {"a": 1, "items": "an item named like a method", "_x": 2}, "t": words, "name": "Ann"}
    sources = ["{{ d.a }}", "{{ d._x }}", "{{ d.items is callable }}", "{{ d.missing is defined }}", "{{ d.missing }}",
               "{{ d.update }}", "{{ t.hello }}", "{{ t.page.title }}", "{{ t.get is callable }}", "{{ t.nope }}",
               "{{ t._sources }}", "{{ t.page._prefix }}"]
    plain, page = (cls(undefined=StrictUndefined, autoescape=True)
                   for cls in (ImmutableSandboxedEnvironment, PageEnvironment))
    for source in sources:
        results = []
        for env in (plain, page):
            try:
                results.append(env.from_string(source).render(context))
            except Exception as exc:  # the same error, or the same text
                results.append(f"{type(exc).__name__}: {exc}")
        assert results[0] == results[1], source


def test_the_template_folder_version_follows_the_newest_file_or_folder(tmp_path):
    page = tmp_path / "_base" / "page" / "page.html"
    page.parent.mkdir(parents=True)
    page.write_text("x", encoding="utf-8")
    for path in (tmp_path / "_base", page.parent):
        os.utime(path, (1000, 1000))
    os.utime(page, (2000, 2000))
    assert newest_mtime(str(tmp_path)) == 2000
    os.utime(page, (3000, 3000))
    assert newest_mtime(str(tmp_path)) == 3000
    assert newest_mtime(str(tmp_path / "missing")) == 0.0
