"""`comms preview --channel email`: files to look at, and a test message through the configured backend."""

from __future__ import annotations

import re
from pathlib import Path

from comms.deliver.fake_smtp import RecordingSMTP


def test_preview_writes_html_text_and_message_and_says_where(cli, home):
    proc = cli("preview", "--channel", "email", "--treatment", "final_notice", "--locale", "he-IL",
               env={"COLUMNS": "500"})  # rich wraps long paths at 80 columns otherwise
    assert proc.returncode == 0, proc.stderr
    paths = [Path(p) for p in re.findall(r"^\s+(/\S+)$", proc.stdout, re.M)]
    assert [p.suffix for p in paths] == [".html", ".txt", ".eml"]
    assert all(p.is_file() and p.is_relative_to(home) for p in paths)
    html, text = paths[0].read_text(), paths[1].read_text()
    assert 'dir="rtl"' in html and "הודעה אחרונה לפני נקיטת צעדים נוספים" in html
    assert re.search(r"https://\S+/pay", text)
    assert paths[2].read_bytes().startswith(b"From: ")


def test_send_test_goes_through_the_configured_backend(cli):
    with RecordingSMTP() as server:
        proc = cli("preview", "--channel", "email", "--segment", "hardship", "--locale", "zh-CN",
                   "--send-test", "qa@example.org",
                   env={"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_HOST": server.host,
                        "COMMS_SMTP_PORT": str(server.port), "COMMS_SMTP_SECURITY": "none"})
    assert proc.returncode == 0, proc.stderr
    assert "test e-mail sent to qa@example.org via smtp: sent" in proc.stdout
    assert len(server.messages) == 1
    msg = server.messages[0]
    assert msg.rcpt_tos == ["qa@example.org"]
    assert str(msg.message["Subject"]).startswith("[TEST] ")
    assert "让我们一起找到适合您的还款计划" in str(msg.message["Subject"])


def test_send_test_failure_is_one_clear_line(cli):
    with RecordingSMTP(refuse={"qa@example.org": "550 5.7.1 relaying denied"}) as server:
        proc = cli("preview", "--channel", "email", "--send-test", "qa@example.org",
                   env={"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_HOST": server.host,
                        "COMMS_SMTP_PORT": str(server.port), "COMMS_SMTP_SECURITY": "none"})
    assert proc.returncode == 2
    assert "error: test e-mail to qa@example.org via smtp: rejected: RCPT 550 5.7.1 relaying denied" in proc.stderr
    assert "Traceback" not in proc.stderr
