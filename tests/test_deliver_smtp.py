"""SMTP delivery to a real server on loopback (aiosmtpd): TLS, login, connection reuse, refusals."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest

from comms.config import Settings
from comms.deliver import DeliveryStatus, backend_from_settings
from comms.deliver.fake_smtp import RecordingSMTP
from comms.deliver.smtp import SMTPBackend
from comms.errors import ConfigError
from comms.render.samples import sample_customer
from emailkit import kit, renamed, render, token


@pytest.fixture
def k(settings):
    return kit(settings)


def smtp_env(monkeypatch, server, security, **extra):
    monkeypatch.setenv("COMMS_EMAIL_BACKEND", "smtp")
    monkeypatch.setenv("COMMS_SMTP_HOST", server.host)
    monkeypatch.setenv("COMMS_SMTP_PORT", str(server.port))
    monkeypatch.setenv("COMMS_SMTP_SECURITY", security)
    if server.ca_file:
        monkeypatch.setenv("COMMS_SMTP_CA_FILE", str(server.ca_file))
    for key, value in extra.items():
        monkeypatch.setenv(f"COMMS_{key.upper()}", value)


def test_starttls_with_login_delivers_what_was_rendered(k, home, tmp_path, monkeypatch):
    italian, it_ctx = render(k, "it-IT", "final")
    hebrew, he_ctx = render(k, "he-IL", "hardship")
    with RecordingSMTP(tls="starttls", users={"robot": "s3cret"}, cert_dir=tmp_path) as server:
        smtp_env(monkeypatch, server, "starttls", smtp_username="robot", smtp_password="s3cret")
        with backend_from_settings(Settings.load(home)) as backend:
            results = backend.send_many([italian, hebrew])
    assert [r.status for r in results] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert all(re.fullmatch(r"FAKE\d{6}", r.provider_message_id) for r in results)
    assert sorted(m.rcpt_tos[0] for m in server.messages) == ["s-he@example.com", "s-it@example.com"]
    assert all(m.mail_from == "collections@example.com" and "BODY=8BITMIME" in m.mail_options
               for m in server.messages)
    got = {m.message["X-Comms-Message-Id"]: m.message for m in server.messages}
    for email, ctx, name in ((italian, it_ctx, "Giulia Bianchi"), (hebrew, he_ctx, "שרה כהן")):
        msg = got[email.message_id]
        assert msg["Message-ID"] == f"<{email.message_id}@example.com>"
        assert msg["List-Unsubscribe"] == f"<{ctx['links']['unsubscribe']}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["To"].addresses[0].display_name == name
        assert str(msg["Subject"]) == email.subject
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert ctx["balance"] in text and ctx["balance"] in html
        assert ctx["customer"]["greeting_name"] in text
        link = re.search(r"https://\S+/pay", text).group(0)
        assert link == ctx["links"]["pay"] and f'href="{link}"' in html
        claims = k.signer.verify(token(link))
        assert claims.customer_id == ctx["customer"]["id"]
    assert "472,50\u00a0€" in it_ctx["balance"]
    assert 'dir="rtl"' in got[hebrew.message_id].get_body(("html",)).get_content()


def test_implicit_tls_delivers(k, home, tmp_path, monkeypatch):
    email, _ = render(k, "zh-CN", "early")
    with RecordingSMTP(tls="ssl", users={"robot": "pw"}, cert_dir=tmp_path) as server:
        smtp_env(monkeypatch, server, "ssl", smtp_username="robot", smtp_password="pw")
        with backend_from_settings(Settings.load(home)) as backend:
            result = backend.send(email)
    assert result.status is DeliveryStatus.SENT
    assert server.messages[0].message["Subject"] == email.subject


def test_one_connection_carries_many_messages(k):
    emails = [render(k, loc, "firm")[0] for loc in ("en-US", "pl-PL", "ru-RU", "zh-CN") * 5]
    with RecordingSMTP() as server:
        with SMTPBackend(server.host, server.port, security="none", concurrency=2) as backend:
            results = backend.send_many(emails)
            again = backend.send(emails[0])
    assert all(r.status is DeliveryStatus.SENT for r in [*results, again])
    assert len(server.messages) == 21
    assert 1 <= server.connections <= 2


def test_refused_recipients_are_rejected_or_deferred(k):
    base = sample_customer("en-US")
    bad = render(k, customer=renamed(base, "Bad", "nobody@example.com"))[0]
    later = render(k, customer=renamed(base, "Later", "busy@example.com"))[0]
    good = render(k, customer=base)[0]
    refuse = {"nobody@example.com": "550 5.1.1 no such user", "busy@example.com": "451 4.3.0 try again later"}
    waits = []
    with RecordingSMTP(refuse=refuse) as server:
        with SMTPBackend(server.host, server.port, security="none", max_attempts=2, backoff=0.01,
                         sleep=waits.append) as backend:
            r_bad, r_later, r_good = backend.send_many([bad, later, good], concurrency=1)
    assert r_bad.status is DeliveryStatus.REJECTED and "550 5.1.1 no such user" in r_bad.error
    assert r_later.status is DeliveryStatus.DEFERRED and "451" in r_later.error and r_later.attempts == 2
    assert waits == [0.01]
    assert r_good.status is DeliveryStatus.SENT
    assert [m.rcpt_tos for m in server.messages] == [["s-en@example.com"]]


def test_wrong_password_is_a_configuration_error(k, tmp_path):
    email, _ = render(k)
    with RecordingSMTP(tls="starttls", users={"robot": "right"}, cert_dir=tmp_path) as server:
        backend = SMTPBackend(server.host, server.port, username="robot", password="wrong",
                              ca_file=str(server.ca_file))
        with pytest.raises(ConfigError, match="COMMS_SMTP_USERNAME.*refused the login"):
            backend.send(email)
        backend.close()
    assert server.messages == []


def test_untrusted_certificate_is_a_configuration_error(k, tmp_path):
    email, _ = render(k)
    with RecordingSMTP(tls="starttls", cert_dir=tmp_path) as server:
        backend = SMTPBackend(server.host, server.port, security="starttls")
        with pytest.raises(ConfigError, match="COMMS_SMTP_CA_FILE.*not trusted"):
            backend.send(email)
    assert server.messages == []


def test_parsed_message_on_the_server_equals_the_rendered_one(k):
    email, _ = render(k, "ru-RU", "final")
    with RecordingSMTP() as server:
        with SMTPBackend(server.host, server.port, security="none") as backend:
            backend.send(email)
    raw = server.messages[0].data
    assert raw.rstrip(b"\r\n") == email.mime_bytes().rstrip(b"\r\n")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == email.html
