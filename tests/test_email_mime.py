"""The bytes we build are a correct MIME message: Python's own parser reads back exactly what was rendered."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from comms.render import mime
from comms.render.samples import HOSTILE_NAME, LOCALES, sample_customer
from emailkit import kit, renamed, render


def parse(data: bytes):
    return BytesParser(policy=policy.default).parsebytes(data)


def parts(message) -> dict[str, str]:
    """Decoded parts; line ends back to "\n" (on the wire they are CRLF, as SMTP requires)."""
    return {p.get_content_type(): p.get_content().replace("\r\n", "\n") for p in message.iter_parts()}


@pytest.fixture
def k(settings):
    return kit(settings)


@pytest.mark.parametrize("who", [*LOCALES, "hostile"])
def test_message_reads_back_with_pythons_parser(k, who):
    email, ctx = render(k, who, "hardship")
    raw = email.mime_bytes()
    msg = parse(raw)
    assert not msg.defects and not any(p.defects for p in msg.iter_parts())
    assert msg.get_content_type() == "multipart/alternative"
    assert str(msg["Subject"]) == email.subject
    assert msg["To"].addresses[0].addr_spec == email.to
    assert " ".join(msg["To"].addresses[0].display_name.split()) == " ".join(ctx["customer"]["name"].split())
    assert msg["From"].addresses[0].display_name == "Example Collections"
    assert msg["Message-ID"] == email.headers["Message-ID"]
    assert msg["X-Comms-Message-Id"] == email.message_id
    assert msg["List-Unsubscribe"] == f"<{ctx['links']['unsubscribe']}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"].datetime.tzinfo is not None
    body = parts(msg)
    assert body["text/plain"] == email.text.replace("\r\n", "\n")
    assert body["text/html"] == email.html.replace("\r\n", "\n")
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    assert all(len(line) <= 78 for line in head if not line.startswith("List-Unsubscribe:"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_long_non_ascii_subject_folds_into_short_encoded_words():
    subject = "Последнее уведомление: задолженность 18 900,00 ₽ " * 4 + "王秀英 שרה כהן"
    line = mime.unstructured("Subject", subject)
    assert all(len(x) <= 78 for x in line.split("\r\n"))
    msg = parse((line + "\r\n\r\nbody").encode("ascii"))
    assert str(msg["Subject"]) == subject


def test_quotes_and_commas_in_an_ascii_name_survive(k):
    email, _ = render(k, customer=renamed(sample_customer("en-US"), 'Smith, "Jones" & Co. (billing)'))
    msg = parse(email.mime_bytes())
    assert msg["To"].addresses[0].display_name == 'Smith, "Jones" & Co. (billing)'
    assert msg["To"].addresses[0].addr_spec == "s-en@example.com"


def test_lines_too_long_for_8bit_fall_back_to_base64():
    text = "x" * 3000 + "\nshort line\n"
    cte, data = mime._body(text, seven_bit=False)
    assert cte == "base64" and max(len(x) for x in data.split(b"\r\n")) <= 76
    head = ["From: <a@example.com>", "To: <b@example.com>", "Subject: s"]
    msg = parse(mime.build(head=head, text=text, html="<p>ok</p>", boundary="=_test"))
    assert parts(msg)["text/plain"] == text and parts(msg)["text/html"] == "<p>ok</p>"


def test_servers_without_8bitmime_get_a_7bit_message(k):
    email, _ = render(k, "he-IL", "final")
    raw = email.mime_bytes(seven_bit=True)
    assert raw.isascii()
    body = parts(parse(raw))
    assert body["text/html"] == email.html and body["text/plain"] == email.text
    assert email.mime_bytes() != raw and not email.mime_bytes().isascii()


def test_hostile_display_name_is_one_header(k):
    email, _ = render(k, "hostile", "early")
    msg = parse(email.mime_bytes())
    assert msg["To"].addresses[0].display_name == HOSTILE_NAME
    assert msg.get_all("To") and len(msg.get_all("To")) == 1
