"""Benchmark: deliver rendered e-mails to a local SendGrid-speaking server and to an SMTP server (aiosmtpd).

Both servers run in their own process on loopback (comms.deliver.fake_sendgrid, comms.deliver.fake_smtp),
so client and server do not share an interpreter. Side by side, in one run:

* ours: ``backend.send_many(emails)``, bounded concurrency (COMMS_EMAIL_CONCURRENCY, default 8), pooled
  connections reused (keep-alive HTTP for SendGrid, one SMTP session for many messages);
* naive: one message after the other, a new connection for each (the official SendGrid client as it
  comes, with urllib; smtplib connect-send-quit per message).

Run: .venv/bin/python bench/email_deliver.py [--n 3000] [--concurrency 8]
Goal (issue 4): >= 300 messages per second to each.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from comms.config import Settings  # noqa: E402
from comms.deliver.sendgrid import SendGridBackend  # noqa: E402
from comms.deliver.smtp import SMTPBackend  # noqa: E402
from comms.payments import LinkSigner  # noqa: E402
from comms.render.context import ContextBuilder  # noqa: E402
from comms.render.email import EmailRenderer  # noqa: E402
from comms.segment.config import load_segments  # noqa: E402
from email_render import AS_OF, portfolio  # noqa: E402

API_KEY = "SG.bench-key"


def server(module: str, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    if not first:
        proc.kill()
        sys.exit(f"{module} did not start")
    return proc, first


def rate(label: str, fn, emails: list) -> float:
    start = time.perf_counter()
    results = fn(emails)
    wall = time.perf_counter() - start
    bad = [r for r in results if not r.accepted]
    print(f"  {label:44s} {len(emails) / wall:8,.0f} msg/s  ({len(emails):,} in {wall:.2f} s"
          + (f", {len(bad)} not accepted: {bad[0].error}" if bad else "") + ")", flush=True)
    return len(emails) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--naive-n", type=int, default=600, help="messages for the naive runs (slower)")
    parser.add_argument("--concurrency", type=int, default=8)
    opts = parser.parse_args()

    settings = Settings.load(Path(tempfile.mkdtemp(prefix="comms-bench-deliver-")))
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "bench", as_of=AS_OF)
    renderer = EmailRenderer(settings, segments)
    print(f"rendering {opts.n:,} messages ...", flush=True)
    emails = [renderer.render(builder.build(c, seg)) for c, seg in portfolio(opts.n)]
    for e in emails:
        e.mime_bytes()  # rendered before the clock: this measures delivery only
    naive_emails = emails[:opts.naive_n]
    summary = {}

    proc, url = server("comms.deliver.fake_sendgrid", "--api-key", API_KEY)
    try:
        print(f"SendGrid API (fake, {url}):", flush=True)
        with SendGridBackend(API_KEY, host=url, concurrency=opts.concurrency) as backend:
            summary["sendgrid"] = rate(f"ours: keep-alive, {opts.concurrency} in flight", backend.send_many, emails)
        with SendGridBackend(API_KEY, host=url, concurrency=1, keepalive=False) as backend:
            summary["sendgrid naive"] = rate("naive: official client as is, one at a time",
                                             backend.send_many, naive_emails)
    finally:
        proc.terminate()
        proc.wait()

    proc, port = server("comms.deliver.fake_smtp")
    try:
        print(f"SMTP (aiosmtpd, 127.0.0.1:{port}):", flush=True)
        with SMTPBackend("127.0.0.1", int(port), security="none", concurrency=opts.concurrency) as backend:
            summary["smtp"] = rate(f"ours: sessions reused, {opts.concurrency} in flight", backend.send_many,
                                   emails)

        def naive_smtp(batch):
            from comms.deliver import DeliveryResult, DeliveryStatus
            out = []
            for e in batch:
                with smtplib.SMTP("127.0.0.1", int(port)) as smtp:
                    smtp.sendmail(e.from_address, [e.to], e.mime_bytes())
                out.append(DeliveryResult(e.message_id, DeliveryStatus.SENT))
            return out

        summary["smtp naive"] = rate("naive: smtplib connect-send-quit, one at a time", naive_smtp, naive_emails)
    finally:
        proc.terminate()
        proc.wait()

    print("summary:")
    for key in ("sendgrid", "smtp"):
        print(f"  {key}: {summary[key]:,.0f} msg/s (goal >= 300), {summary[key] / summary[key + ' naive']:.1f}x "
              "the naive way")


if __name__ == "__main__":
    main()
