"""SendGrid delivery through the official client to a local server that speaks /v3/mail/send."""

from __future__ import annotations

import re
import time

import pytest

from comms.config import Settings
from comms.deliver import DeliveryStatus, backend_from_settings
from comms.deliver.fake_sendgrid import FakeSendGrid
from comms.deliver.sendgrid import SendGridBackend
from comms.render.samples import sample_customer
from emailkit import kit, renamed, render, token

KEY = "SG.test-key"


@pytest.fixture
def k(settings):
    return kit(settings)


@pytest.fixture
def fake():
    with FakeSendGrid(KEY) as server:
        yield server


def test_delivers_through_the_official_client(k, home, monkeypatch, fake):
    email, ctx = render(k, "he-IL", "final")
    monkeypatch.setenv("COMMS_EMAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("COMMS_SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("COMMS_SENDGRID_HOST", fake.url)
    with backend_from_settings(Settings.load(home)) as backend:
        result = backend.send(email)
    assert result.status is DeliveryStatus.QUEUED and result.backend == "sendgrid"
    assert re.fullmatch(r"[0-9a-f]{22}", result.provider_message_id)
    request = fake.requests[0]
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["headers"]["User-agent"].startswith("sendgrid/")
    payload = fake.accepted[0]
    assert payload["personalizations"] == [{"to": [{"email": "s-he@example.com", "name": "שרה כהן"}]}]
    assert payload["from"] == {"email": "collections@example.com", "name": "Example Collections"}
    assert payload["subject"] == email.subject and ctx["balance"] in payload["subject"]
    assert payload["content"] == [{"type": "text/plain", "value": email.text},
                                  {"type": "text/html", "value": email.html}]
    assert payload["custom_args"] == {"comms_message_id": email.message_id, "comms_campaign": "spring-2026"}
    assert payload["headers"]["List-Unsubscribe"] == f"<{ctx['links']['unsubscribe']}>"
    assert payload["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert payload["headers"]["X-Comms-Message-Id"] == email.message_id
    link = re.search(r"https://\S+/pay", payload["content"][0]["value"]).group(0)
    assert k.signer.verify(token(link)).customer_id == "S-HE"
    assert 'dir="rtl"' in payload["content"][1]["value"]


def test_429_waits_until_the_rate_limit_resets(k, fake):
    email, _ = render(k)
    reset = fake.rate_limit_next(reset_in=1)
    waits = []
    with SendGridBackend(KEY, host=fake.url, sleep=waits.append) as backend:
        before = time.time()
        result = backend.send(email)
    assert result.status is DeliveryStatus.QUEUED and result.attempts == 2
    assert [r["status"] for r in fake.requests] == [429, 202]
    assert len(waits) == 1 and abs(waits[0] - (reset - before)) < 0.5


def test_a_long_rate_limit_is_left_to_the_caller(k, fake):
    email, _ = render(k)
    fake.rate_limit_next(reset_in=600)
    with SendGridBackend(KEY, host=fake.url, max_wait=60, sleep=pytest.fail) as backend:
        result = backend.send(email)
    assert result.status is DeliveryStatus.DEFERRED and result.attempts == 1
    assert result.retry_after > 500 and "429" in result.error


def test_server_errors_are_retried_then_deferred(k, fake):
    email, _ = render(k)
    fake.fail_next(500, times=3)
    waits = []
    with SendGridBackend(KEY, host=fake.url, max_attempts=3, backoff=0.25, sleep=waits.append) as backend:
        gave_up = backend.send(email)
        fake.fail_next(503)
        recovered = backend.send(email)
    assert gave_up.status is DeliveryStatus.DEFERRED and gave_up.attempts == 3 and "500" in gave_up.error
    assert waits[:2] == [0.25, 0.5]
    assert recovered.status is DeliveryStatus.QUEUED and recovered.attempts == 2
    assert [r["status"] for r in fake.requests] == [500, 500, 500, 503, 202]


def test_client_errors_fail_with_the_reason(k, fake):
    email, _ = render(k)
    with SendGridBackend("SG.wrong", host=fake.url) as backend:
        unauthorized = backend.send(email)
    assert unauthorized.status is DeliveryStatus.FAILED and unauthorized.attempts == 1
    assert "401" in unauthorized.error and "authorization grant is invalid" in unauthorized.error
    fake.answer_next(400, body={"errors": [{"field": "from.email", "message": "The from address does not "
                                            "match a verified Sender Identity."}]})
    with SendGridBackend(KEY, host=fake.url) as backend:
        refused = backend.send(email)
    assert refused.status is DeliveryStatus.FAILED
    assert refused.error == "400: from.email: The from address does not match a verified Sender Identity."
    assert fake.accepted == []


def test_the_client_has_a_timeout(k):
    email, _ = render(k)
    with FakeSendGrid(KEY, delay=1.5) as slow:
        with SendGridBackend(KEY, host=slow.url, timeout=0.3) as backend:
            start = time.monotonic()
            result = backend.send(email)
            elapsed = time.monotonic() - start
    assert result.status is DeliveryStatus.FAILED and "no answer in time" in result.error
    assert elapsed < 1.2


def test_connections_are_reused_with_bounded_concurrency(k, fake):
    emails = [render(k, loc, "early")[0] for loc in ("en-US", "it-IT", "zh-CN") * 10]
    with SendGridBackend(KEY, host=fake.url, concurrency=3) as backend:
        results = backend.send_many(emails)
        results += backend.send_many(emails[:5])
    assert all(r.status is DeliveryStatus.QUEUED for r in results)
    assert len(fake.accepted) == 35
    assert fake.connections <= 3
    assert [p["custom_args"]["comms_message_id"] for p in fake.accepted[:30]] != [] and \
        {p["custom_args"]["comms_message_id"] for p in fake.accepted} == {e.message_id for e in emails}


def test_a_recipient_name_with_a_comma_is_not_dropped(k, fake):
    email, _ = render(k, customer=renamed(sample_customer("en-US"), "Smith, Jones; and Sons"))
    with SendGridBackend(KEY, host=fake.url) as backend:
        assert backend.send(email).status is DeliveryStatus.QUEUED
    assert fake.dropped == []
    assert fake.accepted[0]["personalizations"][0]["to"][0]["name"] == '"Smith, Jones; and Sons"'


def test_features_sendgrid_carries(k, fake):
    from datetime import datetime, timedelta, timezone
    when = datetime.now(timezone.utc) + timedelta(hours=3)
    email, _ = render(k, tags=["spring-2026", "final"], send_at=when)
    with SendGridBackend(KEY, host=fake.url) as backend:
        assert backend.send(email).accepted
    assert fake.accepted[0]["categories"] == ["spring-2026", "final"]
    assert fake.accepted[0]["send_at"] == int(when.timestamp())
