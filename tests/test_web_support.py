"""Shared by the web tests: a small portfolio written through the real store, artifacts, and the real app
served by uvicorn on a free loopback port (one server per test module)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import uvicorn

from comms.config import Settings
from comms.render.samples import HOSTILE_NAME
from comms.store import Store
from comms.store.snapshots import save_segment_run, save_snapshot

CAMPAIGN = "spring-2026"
MONEY = pa.decimal128(18, 2)

# id, name, given name, locale, currency, country, time zone, segment, invoice amounts
PEOPLE = [
    ("C-EN", "Jordan Miller", "Jordan", "en-US", "USD", "US", "America/Chicago", "hardship",
     ["1000.00", "234.56"]),
    ("C-IT", "Giulia Bianchi", "Giulia", "it-IT", "EUR", "IT", "Europe/Rome", "final", ["1500.00", "250.00"]),
    ("C-HE", "שרה כהן", "שרה", "he-IL", "ILS", "IL", "Asia/Jerusalem", "hardship", ["2400.00", "180.50"]),
    ("C-ZH", "王秀英", "秀英", "zh-CN", "CNY", "CN", "Asia/Shanghai", "firm", ["8800.00"]),
    ("C-RU", "Анна Смирнова", "Анна", "ru-RU", "RUB", "RU", "Europe/Moscow", "final", ["45000.00"]),
    ("C-PL", "Łukasz Wiśniewski", "Łukasz", "pl-PL", "PLN", "PL", "Europe/Warsaw", "early", ["640.00"]),
    ("C-XSS", HOSTILE_NAME, HOSTILE_NAME, "en-US", "USD", "US", "America/New_York", "early", ["99.99"]),
    ("C-OTHER", "Alex Other", "Alex", "en-US", "USD", "US", "America/Chicago", "hardship", ["777.77"]),
]


def write_portfolio(store: Store, as_of: date | None = None) -> None:
    """One snapshot with the customers above and a segment run assigning their segments."""
    as_of = as_of or date.today()
    cust, inv, assign = [], [], []
    for cid, name, given, locale, cur, country, tz, segment, amounts in PEOPLE:
        amounts = [Decimal(a) for a in amounts]
        cust.append({"customer_id": cid, "name": name, "given_name": given, "email": f"{cid.lower()}@example.com",
                     "phone": None, "address_line1": "1 Main Street", "address_line2": None, "postal_code": "10115",
                     "city": "Berlin", "region": None, "country": country, "locale": locale, "timezone": tz,
                     "currency": cur, "consent_email": True, "consent_sms": False, "consent_letter": True,
                     "do_not_contact": False, "dispute": False, "balance": sum(amounts, Decimal(0)),
                     "days_past_due": 45})
        for i, amount in enumerate(amounts):
            due = as_of - timedelta(days=45 - 20 * i)
            inv.append({"customer_id": cid, "invoice_number": f"INV-{cid}-{i + 1}", "issue_date": due - timedelta(30),
                        "due_date": due, "amount": amount, "open_amount": amount})
        assign.append({"customer_id": cid, "segment": segment, "score": 50.0, "band": "yellow"})
    ctab = pa.Table.from_pylist(cust).cast(pa.schema([
        (f, MONEY if f == "balance" else pa.int64() if f == "days_past_due" else pa.bool_()
         if f.startswith(("consent", "do_not", "dispute")) else pa.string()) for f in cust[0]]))
    itab = pa.Table.from_pylist(inv, schema=pa.schema([
        ("customer_id", pa.string()), ("invoice_number", pa.string()), ("issue_date", pa.date32()),
        ("due_date", pa.date32()), ("amount", MONEY), ("open_amount", MONEY)]))
    snap = save_snapshot(store, ctab, itab, as_of=as_of, source_name="web-test.csv", source_sha256="0" * 64,
                         mapping_name=None, layout="invoice", rows_in=len(inv), rows_accepted=len(inv),
                         rows_rejected=0, filled_fields={}, defaulted_fields=[])
    save_segment_run(store, snap.id, pa.Table.from_pylist(assign), segments_sha256="0" * 64, score_model_id=None,
                     summary={})


def write_artifacts(settings: Settings, customer_id: str = "C-EN", campaign: str = CAMPAIGN) -> Path:
    """A real 4-second H.264 video with captions and a poster, and a letter PDF, where the renderers put them."""
    folder = settings.artifacts_dir / campaign / "video" / customer_id
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=15",
                    "-t", "4", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast",
                    "-movflags", "+faststart", str(folder / "video.mp4")], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(folder / "video.mp4"), "-frames:v", "1",
                    str(folder / "poster.jpg")], check=True)
    (folder / "captions.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:04.000\nHello Jordan, here is your plan.\n",
                                         encoding="utf-8")
    letters = settings.artifacts_dir / campaign / "letters"
    letters.mkdir(parents=True, exist_ok=True)
    (letters / f"{customer_id}.pdf").write_bytes(b"%PDF-1.4\n% letter of " + customer_id.encode() + b"\n%%EOF\n")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def site(self):
        return self.app.site

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app, port: int) -> Served:
    """The app under uvicorn in a background thread, until stop()."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}", app, server, thread)


def make_home(root: Path, port: int, **config: object) -> Settings:
    """A home folder whose comms.toml points links at the test server."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    lines = [f'base_url = "http://127.0.0.1:{port}"'] + [
        f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}" for k, v in config.items()]
    (home / "comms.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Settings.load(home)
