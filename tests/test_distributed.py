"""Distributed mode: real Redis, real `celery -A worker worker` processes, PostgreSQL as the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from comms.campaign.plan import plan_campaign
from comms.campaign.run import counts, get_campaign, run_distributed
from comms.config import Settings
from comms.store import Store
from comms.store.ledger import jobs
from conftest import ROOT

REDIS = os.environ.get("COMMS_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def broker_url(worker_id):
    db = 10 + (int(worker_id[2:]) if worker_id.startswith("gw") else 0)
    url = f"{REDIS}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def dist(request, pg_url, broker_url, home, monkeypatch, tmp_path):
    """A segmented portfolio on PostgreSQL (``@pytest.mark.customers(n)``, default 400), COMMS_BROKER_URL set,
    and a way to start worker processes."""
    from comms.ingest import ingest_file
    from comms.sample import generate, write
    from comms.segment.run import segment_snapshot

    monkeypatch.setenv("COMMS_BROKER_URL", broker_url)
    settings = Settings.load(home)
    store = Store.open(settings)
    as_of = date(2026, 11, 2)
    size = request.node.get_closest_marker("customers")
    path = write(generate(size.args[0] if size else 400, seed=5, as_of=as_of), tmp_path / "p.csv")
    ingest_file(path, settings=settings, store=store, as_of=as_of)
    segment_snapshot(store, settings)
    procs: list[subprocess.Popen] = []

    def start_worker(name: str, queues: str = "comms,video", *extra: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items()} | {"COMMS_HOME": str(home), "COMMS_BROKER_URL": broker_url,
                                                      "COMMS_DATABASE_URL": pg_url}
        celery = str(Path(sys.executable).with_name("celery"))
        proc = subprocess.Popen([celery, "-A", "worker", "worker", "-Q", queues, "-c", "1", "-n", f"{name}@%h",
                                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
                                 *extra],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield store, settings, start_worker
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    store.dispose()


def use_sendgrid(monkeypatch, fake, **extra) -> None:
    """Point the campaign and the workers (started after this) at the local SendGrid-speaking server."""
    for key, value in {"COMMS_EMAIL_BACKEND": "sendgrid", "COMMS_SENDGRID_API_KEY": fake.api_key,
                       "COMMS_SENDGRID_HOST": fake.url, "COMMS_EMAIL_WINDOW": "00:00-24:00", **extra}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.customers(2000)
def test_a_2000_customer_campaign_completes_across_two_worker_processes_with_exact_counts(dist, monkeypatch):
    """Pages and e-mails for 2,000 customers: every job ends where the plan says, and the provider received
    one message per e-mail sent, no more."""
    from collections import Counter

    from comms.deliver.fake_sendgrid import FakeSendGrid

    store, settings, start_worker = dist
    with FakeSendGrid(api_key="SG.dist") as fake:
        use_sendgrid(monkeypatch, fake)
        settings = Settings.load(settings.home)
        start_worker("w1")
        start_worker("w2")
        report = plan_campaign(store, settings, "dist", ["page", "email"])
        assert report.jobs == 2 * report.customers >= 3900  # a few rows of the sample are bad on purpose
        camp = run_distributed(store, settings, "dist", poll=0.2)
        assert camp.state == "completed"
        c = counts(store, report.campaign_id)
        for channel in ("page", "email"):
            planned = sum(n for key, n in report.planned.items() if key[1] == channel)
            suppressed = sum(n for key, n in report.suppressed.items() if key[1] == channel)
            assert c.get((channel, "sent"), 0) == planned > 0
            assert c.get((channel, "suppressed"), 0) == suppressed > 0
        assert sum(c.values()) == report.jobs  # nothing failed, nothing left in between
        received = Counter(p["custom_args"]["comms_message_id"] for p in fake.accepted)
        assert len(received) == c[("email", "sent")] and max(received.values()) == 1


def test_the_delivery_rate_limit_holds_across_two_workers(dist, monkeypatch):
    """25 messages a second for the whole campaign, however many workers send: measured at the provider."""
    from collections import Counter

    from comms.deliver.fake_sendgrid import FakeSendGrid
    from comms.deliver.ratelimit import GRANT_TTL
    from test_ratelimit import most_in_any_window

    rate, burst = 25.0, 5.0
    store, settings, start_worker = dist
    with FakeSendGrid(api_key="SG.rate") as fake:
        use_sendgrid(monkeypatch, fake, COMMS_EMAIL_RATE=str(rate), COMMS_EMAIL_BURST=str(burst),
                     COMMS_CHUNK_SIZE="10")
        settings = Settings.load(settings.home)
        start_worker("r1")
        start_worker("r2")
        report = plan_campaign(store, settings, "rate", ["email"], limit=150)
        camp = run_distributed(store, settings, "rate", poll=0.2)
        assert camp.state == "completed"
        arrivals = [r["at"] for r in fake.requests]
        assert len(arrivals) == len(fake.accepted) == sum(report.planned.values()) > 100
        assert max(Counter(p["custom_args"]["comms_message_id"] for p in fake.accepted).values()) == 1
        assert most_in_any_window(arrivals, rate, burst) <= 2
        assert max(arrivals) - min(arrivals) >= (len(arrivals) - burst) / rate - GRANT_TTL


def test_celery_beat_runs_a_campaign_nobody_watches_when_its_start_time_comes(dist, monkeypatch):
    """Launched for later and left alone: the scheduler task (beat inside a worker) queues the jobs when
    they fall due, the workers do them, the print batch is assembled and the campaign completes."""
    import csv
    from datetime import datetime, timedelta, timezone

    store, settings, start_worker = dist
    monkeypatch.setenv("COMMS_TICK_SECONDS", "1")
    settings = Settings.load(settings.home)
    start = datetime.now(timezone.utc) + timedelta(seconds=4)
    report = plan_campaign(store, settings, "unwatched", ["page", "letter"], limit=12, start_at=start)
    start_worker("beat", "comms,video", "-B")
    start_worker("plain")
    deadline = time.monotonic() + 120
    while get_campaign(store, "unwatched").state != "completed" and time.monotonic() < deadline:
        time.sleep(0.3)
    camp = get_campaign(store, "unwatched")
    assert camp.state == "completed", counts(store, camp.id)
    c = counts(store, camp.id)
    letters = sum(n for key, n in report.planned.items() if key[1] == "letter")
    assert c[("letter", "sent")] == letters > 0 and c[("page", "sent")] > 0
    with store.begin() as conn:
        first = conn.execute(select(func.min(jobs.c.updated_at)).where(
            jobs.c.campaign_id == camp.id, jobs.c.state == "sent")).scalar_one()
    assert first.replace(tzinfo=first.tzinfo or timezone.utc) >= start  # nothing went out early
    with (settings.artifacts_dir / "unwatched" / "print" / "manifest.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == letters


def test_jobs_queued_before_any_worker_runs_are_done_when_one_starts(dist):
    store, settings, start_worker = dist
    report = plan_campaign(store, settings, "late", ["page"])
    started = {}

    def progress(channel, done, total):
        if "w" not in started:
            started["w"] = start_worker("late1")

    camp = run_distributed(store, settings, "late", poll=0.2, progress=progress)
    assert camp.state == "completed"
    assert counts(store, report.campaign_id).get(("page", "sent"), 0) == sum(report.planned.values())


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_redis_restart_that_loses_every_queued_task_loses_no_customer(pg_url, home, monkeypatch, tmp_path):
    """The broker keeps nothing on disk; after its restart the ledger finds the lost jobs and queues them again."""
    from comms.ingest import ingest_file
    from comms.sample import generate, write
    from comms.segment.run import segment_snapshot

    port = _free_port()
    redis_cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)]
    server = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    monkeypatch.setenv("COMMS_BROKER_URL", url)
    monkeypatch.setenv("COMMS_ENQUEUE_GRACE", "2")
    settings = Settings.load(home)
    store = Store.open(settings)
    as_of = date(2026, 11, 2)
    ingest_file(write(generate(200, seed=3, as_of=as_of), tmp_path / "p.csv"), settings=settings, store=store,
                as_of=as_of)
    segment_snapshot(store, settings)
    report = plan_campaign(store, settings, "restart", ["page"])
    worker = {}

    def progress(channel, done, total):
        nonlocal server
        if "proc" in worker:
            return
        assert redis.Redis.from_url(url).llen("comms") > 0  # the tasks are queued ...
        server.kill()                                       # ... and lost with the broker
        server.wait()
        server = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        assert redis.Redis.from_url(url).llen("comms") == 0
        env = dict(os.environ) | {"COMMS_HOME": str(home), "COMMS_DATABASE_URL": pg_url}
        worker["proc"] = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "worker", "worker", "-Q", "comms", "-c", "1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    try:
        camp = run_distributed(store, settings, "restart", poll=0.2, progress=progress)
        assert camp.state == "completed"
        c = counts(store, report.campaign_id)
        assert c.get(("page", "sent"), 0) == sum(report.planned.values())
        assert sum(c.values()) == report.jobs
    finally:
        if "proc" in worker:
            os.killpg(worker["proc"].pid, signal.SIGTERM)
            worker["proc"].wait(timeout=20)
        server.kill()
        server.wait()
        store.dispose()


def test_kill_9_of_workers_mid_campaign_sends_every_email_and_prints_every_letter_exactly_once(dist, monkeypatch):
    """Three workers render letters and send e-mails to a real SMTP server; one is killed with SIGKILL while
    letters render, another while e-mails go out. The ledger re-queues what they held: nobody is lost, nobody
    gets two e-mails, and the print batch holds each letter once."""
    import csv
    import threading
    from collections import Counter

    from comms.deliver.fake_smtp import RecordingSMTP

    store, settings, start_worker = dist

    def wait_until(done, what: str) -> None:
        deadline = time.monotonic() + 120
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done(), what

    def holds(victim: subprocess.Popen, channel: str) -> bool:
        """The victim (its pool child, in its process group) holds a claim on a job of ``channel``:
        killing it now cuts that job off (a worker is recorded as host:pid:claim-time)."""
        with store.begin() as conn:
            holders = conn.execute(select(jobs.c.worker).distinct().where(
                jobs.c.campaign_id == report.campaign_id, jobs.c.channel == channel,
                jobs.c.state.in_(["rendering", "sending"]))).scalars().all()
        for holder in holders:
            try:
                if os.getpgid(int(holder.split(":")[-2])) == victim.pid:
                    return True
            except (ProcessLookupError, ValueError, IndexError):
                continue
        return False

    with RecordingSMTP() as sink:
        env = {"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_HOST": "127.0.0.1", "COMMS_SMTP_PORT": str(sink.port),
               "COMMS_SMTP_SECURITY": "none", "COMMS_EMAIL_WINDOW": "00:00-24:00", "COMMS_LEASE_SECONDS": "4",
               "COMMS_ENQUEUE_GRACE": "3", "COMMS_CHUNK_SIZE": "5"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings.load(settings.home)
        report = plan_campaign(store, settings, "kill", ["letter", "email"], limit=200)
        letter_victim, email_victim = start_worker("letters-victim"), start_worker("email-victim")
        start_worker("survivor")
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.setdefault(
            "camp", run_distributed(store, settings, "kill", poll=0.2)))
        runner.start()
        wait_until(lambda: holds(letter_victim, "letter"), "the victim never rendered letters")
        os.killpg(letter_victim.pid, signal.SIGKILL)  # the worker and its pool child, mid-chunk
        wait_until(lambda: len(sink.messages) >= 15, "the workers never started sending")
        os.killpg(email_victim.pid, signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
        assert outcome["camp"].state == "completed"

        with store.begin() as conn:
            rows = conn.execute(select(jobs.c.customer_id, jobs.c.channel, jobs.c.state, jobs.c.message_id,
                                       jobs.c.reason, jobs.c.sha256, jobs.c.attempts).where(
                jobs.c.campaign_id == report.campaign_id)).all()
        emails = [r for r in rows if r.channel == "email"]
        received = Counter(m.message["X-Comms-Message-Id"] for m in sink.messages)
        assert max(received.values()) == 1, "somebody got the same e-mail twice"
        per_customer = Counter()
        ids = {r.message_id: r.customer_id for r in emails if r.message_id}
        for message_id in received:
            per_customer[ids[message_id]] += 1
        assert max(per_customer.values()) == 1, "a customer got two e-mails"
        to_send = {r.customer_id for r in emails if r.state != "suppressed"}
        assert len(to_send) == sum(n for key, n in report.planned.items() if key[1] == "email")
        for r in emails:
            if r.state == "sent":
                assert per_customer[r.customer_id] == 1
            elif r.state == "failed":  # only a send cut off by the kill, reported, never repeated
                assert "outcome unknown" in r.reason and per_customer[r.customer_id] <= 1
        assert sum(1 for r in emails if r.state == "failed") <= 5  # at most the victim's one chunk in flight
        assert {r.state for r in emails} <= {"sent", "failed", "suppressed"}

        letters = {r.customer_id: r.sha256 for r in rows if r.channel == "letter" and r.state == "sent"}
        assert any(r.attempts > 1 for r in rows if r.channel == "letter"), "the kill cut no letter off"
        assert len(letters) == sum(n for key, n in report.planned.items() if key[1] == "letter")
        assert {r.state for r in rows if r.channel == "letter"} <= {"sent", "suppressed"}  # a re-render is safe
        folder = settings.artifacts_dir / "kill" / "print"
        with (folder / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            manifest = list(csv.DictReader(fh))
        assert Counter(r["customer_id"] for r in manifest) == Counter(letters.keys())  # each letter once, no other
        assert {r["customer_id"]: r["sha256"] for r in manifest} == letters
        info = subprocess.run(["pdfinfo", str(folder / "letters.pdf")], capture_output=True, text=True,
                              check=True).stdout
        assert int(info.split("Pages:")[1].split()[0]) == sum(int(r["pages"]) for r in manifest)
