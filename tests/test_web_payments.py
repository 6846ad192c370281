"""Payments, arrangements, opt-outs and what stops reminders: on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from comms.errors import InputError
from comms.events import EventBuffer, load_events, record_event
from comms.payments import revoke_customer, revoke_token
from comms.payments.arrangements import choose_plan, make_promise, open_dispute, resolve_dispute
from comms.payments.checkout import PaymentError, create_checkout, record_payment
from comms.payments.offers import instalment_plan
from comms.payments.preferences import opt_in, opt_out
from comms.payments.providers import RedirectProvider, sign_params
from comms.payments.revocations import is_revoked
from comms.payments.status import contact_blockers, contact_blockers_many, customer_state
from comms.store.schema import customers, payments
from comms.web.site import Site
from test_web_support import CAMPAIGN, write_portfolio

TODAY = date.today()


def _checkout(store, customer_id="C-EN", amount="100.00", waive="0"):
    return create_checkout(store, provider="demo", campaign=CAMPAIGN, customer_id=customer_id, purpose="full",
                           amount=Decimal(amount), waive=Decimal(waive), currency="USD")


def _balance(store, customer_id):
    with store.begin() as conn:
        return conn.execute(select(customers.c.balance).where(customers.c.customer_id == customer_id)).scalar()


def test_a_replayed_payment_callback_records_nothing_twice(store):
    write_portfolio(store)
    checkout = _checkout(store)
    assert record_payment(store, checkout, provider_ref="txn-1", amount=Decimal("100.00"), currency="USD")
    assert not record_payment(store, checkout, provider_ref="txn-1", amount=Decimal("100.00"), currency="USD")
    assert not record_payment(store, checkout, provider_ref="txn-2", amount=Decimal("100.00"), currency="USD")
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar() == 1
    assert _balance(store, "C-EN") == Decimal("1134.56")
    assert len(load_events(store, kinds=["paid"])) == 1


def test_concurrent_callbacks_for_one_checkout_book_one_payment(store):
    write_portfolio(store)
    checkout = _checkout(store, amount="34.56")
    results = []

    def pay(ref):
        results.append(record_payment(store, checkout, provider_ref=ref, amount=Decimal("34.56"), currency="USD"))

    threads = [threading.Thread(target=pay, args=(f"txn-{i % 2}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert _balance(store, "C-EN") == Decimal("1200.00")


def test_a_payment_of_another_amount_is_refused(store):
    write_portfolio(store)
    checkout = _checkout(store)
    with pytest.raises(PaymentError):
        record_payment(store, checkout, provider_ref="t", amount=Decimal("1.00"), currency="USD")
    with pytest.raises(PaymentError):
        record_payment(store, checkout, provider_ref="t", amount=Decimal("100.00"), currency="EUR")


def test_a_settlement_payment_clears_the_discount_too(store):
    write_portfolio(store)
    checkout = _checkout(store, customer_id="C-IT", amount="1575.00", waive="175.00")
    record_payment(store, checkout, provider_ref="s1", amount=Decimal("1575.00"), currency="USD")
    assert _balance(store, "C-IT") == Decimal("0.00")
    state = customer_state(store, "C-IT")
    assert state.paid_since(None) == (Decimal("1575.00"), Decimal("175.00"))


def test_blockers_name_every_reason_to_hold_reminders(store):
    write_portfolio(store)
    assert contact_blockers(store, "C-EN", "email", "c-en@example.com") == []
    plan = instalment_plan(Decimal("1234.56"), "USD", 6, TODAY + timedelta(days=7))
    choose_plan(store, campaign=CAMPAIGN, customer_id="C-EN", plan=plan, currency="USD")
    make_promise(store, campaign=CAMPAIGN, customer_id="C-IT", until=TODAY + timedelta(days=3),
                 amount=Decimal("10"), currency="EUR")
    open_dispute(store, campaign=CAMPAIGN, customer_id="C-ZH", reason="not_mine", details="private words")
    opt_out(store, customer_id="C-PL", channel="letter", source="page")
    opt_out(store, customer_id="C-RU", channel="email", address="C-RU@Example.com ", source="one-click")
    got = contact_blockers_many(store, ["C-EN", "C-IT", "C-ZH", "C-PL", "C-RU", "C-OTHER"], "email",
                                {"C-RU": "c-ru@example.com", "C-OTHER": "c-ru@example.com"})
    assert got["C-EN"] == [f"instalment plan until {plan.schedule[-1][0].isoformat()}"]
    assert got["C-IT"] == [f"promise to pay until {(TODAY + timedelta(days=3)).isoformat()}"]
    assert got["C-ZH"] == ["dispute open"]
    assert got["C-PL"] == []  # opted out of letters only
    assert got["C-RU"] == ["opted out of email at this address"]
    assert got["C-OTHER"] == ["opted out of email at this address"]  # the address, whoever it belongs to
    assert contact_blockers(store, "C-PL", "letter") == ["opted out of letter"]
    assert contact_blockers(store, "C-IT", "email", today=TODAY + timedelta(days=4)) == []  # promise lapsed
    resolve_dispute(store, "C-ZH")
    assert contact_blockers(store, "C-ZH", "email") == []
    opt_in(store, customer_id="C-PL", channel="letter")
    assert contact_blockers(store, "C-PL", "letter") == []


def test_a_payment_blocks_reminders_of_the_campaign_running_since_before_it(store):
    write_portfolio(store)
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    record_payment(store, _checkout(store, "C-PL", "10.00"), provider_ref="p", amount=Decimal("10.00"),
                   currency="USD")
    assert contact_blockers(store, "C-PL", "email", since=started) == ["paid"]
    assert contact_blockers(store, "C-PL", "email", since=datetime.now(timezone.utc) + timedelta(seconds=5)) == []
    assert contact_blockers(store, "C-PL", "email") == ["paid"]  # not yet in an import


def test_batch_blockers_agree_with_single_ones(store):
    write_portfolio(store)
    open_dispute(store, campaign=CAMPAIGN, customer_id="C-HE", reason="other")
    opt_out(store, customer_id="C-ZH", channel="all", source="operator")
    ids = ["C-EN", "C-HE", "C-ZH", "C-UNKNOWN"]
    many = contact_blockers_many(store, ids, "letter")
    assert many == {cid: contact_blockers(store, cid, "letter") for cid in ids}
    assert many["C-ZH"] == ["opted out of all contact"]


def test_events_with_a_dedupe_key_are_stored_once_and_personal_data_is_refused(store):
    assert record_event(store, "video_played", campaign=CAMPAIGN, customer_id="C-EN", data={"quartile": 50},
                        dedupe_key="k1")
    assert not record_event(store, "video_played", campaign=CAMPAIGN, customer_id="C-EN",
                            data={"quartile": 50}, dedupe_key="k1")
    buffer = EventBuffer(store)
    buffer.add("video_played", campaign=CAMPAIGN, customer_id="C-EN", data={"quartile": 50}, dedupe_key="k1")
    buffer.add("page_viewed", campaign=CAMPAIGN, customer_id="C-EN")
    assert buffer.flush() == 1
    with pytest.raises(InputError):
        record_event(store, "page_viewed", data={"name": "a very long free text " * 5})
    with pytest.raises(InputError):
        record_event(store, "made_up")


def test_the_pages_revocation_check_agrees_with_the_links_module(store):
    write_portfolio(store)
    site = Site(store.settings, store)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    old, kept, single = (site.signer.sign(CAMPAIGN, c, now=t0) for c in ("C-EN", "C-IT", "C-IT"))
    revoke_customer(store, site.signer, "C-EN", "test")
    revoke_token(store, single, "test")
    later = site.signer.sign(CAMPAIGN, "C-EN", now=datetime.now(timezone.utc) + timedelta(seconds=2))
    for token in (old, kept, single, later):
        claims = site.signer.verify(token)
        assert (site._claims_and_state(token) is None) == is_revoked(store, site.signer, claims, token)
    assert site._claims_and_state(kept) is not None and site._claims_and_state(old) is None
    _, short = site._claims_and_state(kept)  # C-IT has done nothing: the probe alone gives their state
    with store.begin() as conn:
        full = customer_state(conn, "C-IT")
    assert (short.snapshot_id, short.snapshot_created_at) == (full.snapshot_id, full.snapshot_created_at)


def test_the_redirect_provider_accepts_only_fresh_signed_callbacks():
    secret = b"s" * 32
    provider = RedirectProvider("https://pay.example.com/portal", secret)
    params = {"ref": "abc", "txn": "T-1", "amount": "12.50", "currency": "EUR", "status": "paid", "ts": "1000"}
    signed = {**params, "sig": sign_params(secret, params)}
    result = provider.parse_callback(signed, now=1100)
    assert (result.checkout_id, result.amount, result.paid) == ("abc", Decimal("12.50"), True)
    with pytest.raises(PaymentError):
        provider.parse_callback({**signed, "amount": "1.00"}, now=1100)
    with pytest.raises(PaymentError):
        provider.parse_callback(signed, now=1000 + 7200)
    with pytest.raises(PaymentError):
        provider.parse_callback({**params, "sig": sign_params(b"x" * 32, params)}, now=1100)


def test_the_redirect_provider_sends_only_opaque_signed_parameters():
    from urllib.parse import parse_qsl, urlsplit
    from comms.payments.checkout import Checkout
    provider = RedirectProvider("https://pay.example.com/portal?brand=x", b"k" * 32)
    checkout = Checkout("opaque-id", datetime.now(timezone.utc), "redirect", CAMPAIGN, "C-EN", "full",
                        Decimal("10.00"), Decimal("0"), "USD", "open")
    url = provider.start(checkout, page_url="https://site/p/TOKEN", callback_url="https://site/hooks/payments/redirect")
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["ref"] == "opaque-id" and "C-EN" not in url and params["brand"] == "x"
    sig = params.pop("sig")
    params.pop("brand")
    assert sign_params(b"k" * 32, params) == sig


def test_the_pages_in_memory_index_gives_the_same_customers_as_the_snapshot_reader(store):
    from comms.render.context import customers_from_snapshot
    from comms.store.snapshots import get_snapshot
    from comms.web.portfolio import Portfolio

    write_portfolio(store)
    snapshot = get_snapshot(store)
    expected = customers_from_snapshot(snapshot)
    portfolio = Portfolio(store)
    assert {cid: portfolio.customer(snapshot.id, cid) for cid in expected} == expected
    assert portfolio.customer(snapshot.id, "C-NOBODY") is None
    assert portfolio.segment_of(snapshot.id, "C-ZH") == "firm"
