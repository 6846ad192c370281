"""Webhooks over real HTTP: SendGrid's signed event webhook, the creditor portal's payment flow; rate limits."""

from __future__ import annotations

import base64
import json
import re
import time
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from comms.events import load_events
from comms.payments.providers import sign_params
from comms.payments.status import contact_blockers
from comms.store.schema import payments
from comms.web import create_app
from comms.web.security import RateLimiter
from test_web_support import CAMPAIGN, free_port, make_home, serve, write_portfolio

PORTAL_SECRET = "portal-secret-0123456789abcdef"
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    port = free_port()
    settings = make_home(tmp_path_factory.mktemp("hooks"), port, sendgrid_webhook_public_key=PUBLIC,
                         payment_provider="redirect", payment_portal_url="https://pay.example.com/portal",
                         payment_redirect_secret=PORTAL_SECRET)
    app = create_app(settings)
    write_portfolio(app.site.store)
    served = serve(app, port)
    yield served
    served.stop()


def signed(body: bytes, ts: int | None = None, key=KEY) -> dict:
    ts = str(int(time.time()) if ts is None else ts)
    sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts, "content-type": "application/json"}


def sg_events(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


def test_sendgrid_events_are_verified_stored_once_and_matched_to_our_message(web):
    body = sg_events(
        {"event": "delivered", "sg_event_id": "ev-1", "timestamp": 1700000000, "email": "c-en@example.com",
         "comms_message_id": "msg-42", "comms_campaign": CAMPAIGN, "comms_customer": "C-EN"},
        {"event": "click", "sg_event_id": "ev-2", "timestamp": 1700000100, "email": "c-en@example.com",
         "url": "https://x/p/SECRET-TOKEN", "comms_message_id": "msg-42"},
        {"event": "made_up", "sg_event_id": "ev-3"})
    r = httpx.post(f"{web.url}/hooks/sendgrid", content=body, headers=signed(body))
    assert r.status_code == 200 and r.json() == {"stored": 2, "duplicates": 0, "ignored": 1}
    again = httpx.post(f"{web.url}/hooks/sendgrid", content=body, headers=signed(body))
    assert again.json() == {"stored": 0, "duplicates": 2, "ignored": 1}
    events = load_events(web.site.store, kinds=["email_delivered", "email_click"])
    assert sorted(events.message_id) == ["msg-42", "msg-42"]
    assert "SECRET-TOKEN" not in str(events.to_dict()) and "@example.com" not in str(events.to_dict())


def test_sendgrid_batches_with_a_bad_signature_or_a_stale_timestamp_are_refused(web):
    body = sg_events({"event": "open", "sg_event_id": "ev-9", "timestamp": 1, "comms_message_id": "m"})
    other = ec.generate_private_key(ec.SECP256R1())
    stale = signed(body, ts=int(time.time()) - 3600)
    tampered = signed(body)
    for headers, payload in ((signed(body, key=other), body), (stale, body), (tampered, body + b" "),
                             ({"content-type": "application/json"}, body)):
        r = httpx.post(f"{web.url}/hooks/sendgrid", content=payload, headers=headers)
        assert r.status_code == 403
    assert load_events(web.site.store, kinds=["email_open"]).empty


def test_a_sendgrid_unsubscribe_opts_that_address_out(web):
    body = sg_events({"event": "unsubscribe", "sg_event_id": "ev-u", "timestamp": 1700000000,
                      "email": "c-pl@example.com", "comms_customer": "C-PL", "comms_campaign": CAMPAIGN})
    assert httpx.post(f"{web.url}/hooks/sendgrid", content=body, headers=signed(body)).status_code == 200
    assert contact_blockers(web.site.store, "C-PL", "email", "c-pl@example.com") == \
        ["opted out of email at this address"]


def _portal_answer(location: str, status: str = "paid", txn: str = "T-100", amount: str | None = None) -> dict:
    sent = dict(parse_qsl(urlsplit(location).query))
    answer = {"ref": sent["ref"], "txn": txn, "amount": amount or sent["amount"], "currency": sent["currency"],
              "status": status, "ts": str(int(time.time()))}
    answer["sig"] = sign_params(PORTAL_SECRET.encode(), answer)
    return answer


def test_the_redirect_provider_round_trip_records_one_payment(web):
    token = web.site.signer.sign(CAMPAIGN, "C-RU")
    with httpx.Client(base_url=web.url, follow_redirects=False) as client:
        page = client.get(f"/p/{token}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = client.post(f"/p/{token}/pay", data={"csrf": csrf, "choice": "full"})
        location = r.headers["location"]
        assert location.startswith("https://pay.example.com/portal?") and "C-RU" not in location
        assert "pay.example.com" in page.headers["content-security-policy"]  # form-action allows the portal
        answer = _portal_answer(location)
        for _ in range(3):  # the portal retries its callback
            cb = client.post("/hooks/payments/redirect", data=answer)
            assert cb.status_code == 200
        back = client.get(f"/p/{token}/pay/return", params=answer)  # the browser comes back signed too
        assert back.headers["location"].endswith("done=paid#status")
        forged = client.post("/hooks/payments/redirect", data={**answer, "txn": "T-999"})
        assert forged.status_code == 403
        wrong = client.post("/hooks/payments/redirect", data=_portal_answer(location, txn="T-2", amount="1.00"))
        assert wrong.status_code in (200, 409)
    with web.site.store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(payments)
                            .where(payments.c.customer_id == "C-RU")).scalar() == 1
        assert conn.execute(select(payments.c.amount).where(payments.c.customer_id == "C-RU")).scalar() \
            == Decimal("45000.00")


def test_rate_limits_hold_per_ip_per_link_and_for_failed_links():
    limiter = RateLimiter(ip_rate=1, ip_burst=5, token_rate=1, token_burst=2, failure_rate=0.01, failure_burst=3)
    assert [limiter.allow("1.1.1.1", "tok") for _ in range(3)] == [True, True, False]
    assert limiter.allow("1.1.1.1", "other")
    for _ in range(3):
        limiter.failed("2.2.2.2")
    assert not limiter.allow("2.2.2.2", None)  # guessing links locks the address out
    assert limiter.allow("3.3.3.3", None)
