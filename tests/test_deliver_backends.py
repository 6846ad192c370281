"""What every backend shares: configuration, the closed set of statuses, features that cannot be carried."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from comms.config import Settings
from comms.deliver import DeliveryResult, DeliveryStatus, UnsupportedFeature, backend_from_settings
from comms.deliver.memory import MemoryBackend
from comms.deliver.outbox import OutboxBackend
from comms.deliver.smtp import SMTPBackend
from comms.errors import ConfigError
from comms.render.samples import sample_customer
from emailkit import kit, renamed, render


@pytest.fixture
def k(settings):
    return kit(settings)


def test_outbox_is_the_default_and_writes_one_eml_per_message(k, home):
    email, ctx = render(k, "pl-PL", "firm")
    with backend_from_settings(Settings.load(home)) as backend:
        assert backend.name == "outbox"
        first = backend.send(email)
        again = backend.send(email)
    path = home / "outbox" / "spring-2026" / f"{email.message_id}.eml"
    assert first.status is DeliveryStatus.SENT and first.provider_message_id == str(path)
    assert again.provider_message_id == first.provider_message_id
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert msg["X-Comms-Message-Id"] == email.message_id
    assert ctx["balance"] in msg.get_body(("plain",)).get_content()


def test_statuses_are_a_closed_set():
    assert DeliveryResult("m1", "queued").status is DeliveryStatus.QUEUED
    assert {s.value for s in DeliveryStatus} == {"queued", "sent", "deferred", "rejected", "failed"}
    with pytest.raises(ValueError, match="unknown delivery status 'bounced'"):
        DeliveryResult("m1", "bounced")


def test_a_feature_the_backend_cannot_carry_raises_before_anything_is_sent(k, home):
    plain, _ = render(k)
    tagged, _ = render(k, tags=["spring"])
    outbox = OutboxBackend(home / "outbox")
    with pytest.raises(UnsupportedFeature, match="outbox backend cannot carry 'tags'"):
        outbox.send_many([plain, tagged])
    assert not (home / "outbox").exists()
    with pytest.raises(UnsupportedFeature, match="smtp backend cannot carry 'tags'"):
        SMTPBackend("127.0.0.1", 1, security="none").send(tagged)
    memory = MemoryBackend()
    assert memory.send(tagged).status is DeliveryStatus.SENT


def test_memory_backend_keeps_messages_and_answers_as_told(k):
    good, _ = render(k)
    bounce, _ = render(k, customer=renamed(sample_customer("en-US"), "B", "bounce@example.com"))
    memory = MemoryBackend(statuses={"bounce@example.com": "rejected"})
    results = memory.send_many([good, bounce, good])
    assert [r.status.value for r in results] == ["sent", "rejected", "sent"]
    assert [e.message_id for e in memory.outbox] == [good.message_id, good.message_id]


@pytest.mark.parametrize("env,setting", [
    ({"COMMS_EMAIL_BACKEND": "pigeon"}, "COMMS_EMAIL_BACKEND"),
    ({"COMMS_EMAIL_BACKEND": "sendgrid"}, "COMMS_SENDGRID_API_KEY"),
    ({"COMMS_EMAIL_BACKEND": "sendgrid", "COMMS_SENDGRID_API_KEY": "k",
      "COMMS_SENDGRID_HOST": "http://api.sendgrid.com"}, "COMMS_SENDGRID_HOST"),
    ({"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_SECURITY": "tls1.0"}, "COMMS_SMTP_SECURITY"),
    ({"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_SECURITY": "none", "COMMS_SMTP_HOST": "mail.example.com",
      "COMMS_SMTP_USERNAME": "u", "COMMS_SMTP_PASSWORD": "p"}, "COMMS_SMTP_SECURITY"),
    ({"COMMS_EMAIL_BACKEND": "smtp", "COMMS_EMAIL_CONCURRENCY": "many"}, "COMMS_EMAIL_CONCURRENCY"),
])
def test_configuration_errors_name_the_setting(home, monkeypatch, env, setting):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        backend_from_settings(Settings.load(home))
    assert info.value.setting == setting


def test_settings_file_configures_the_backend(home):
    (home / "comms.toml").write_text('email_backend = "memory"\nemail_concurrency = 3\n')
    backend = backend_from_settings(Settings.load(home))
    assert backend.name == "memory" and backend.concurrency == 3


def test_sender_identity_comes_from_the_settings(k, home, monkeypatch):
    monkeypatch.setenv("COMMS_EMAIL_FROM", "Зелёный Банк <billing@bank.example>")
    monkeypatch.setenv("COMMS_EMAIL_REPLY_TO", "help@bank.example")
    again = kit(Settings.load(home))
    email, _ = render(again)
    msg = BytesParser(policy=policy.default).parsebytes(email.mime_bytes())
    assert msg["From"].addresses[0].display_name == "Зелёный Банк"
    assert msg["From"].addresses[0].addr_spec == "billing@bank.example"
    assert msg["Reply-To"].addresses[0].addr_spec == "help@bank.example"
    assert msg["Message-ID"].endswith("@bank.example>")
