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

from comms.campaign.plan import plan_campaign
from comms.campaign.run import counts, run_distributed
from comms.config import Settings
from comms.store import Store
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
def dist(pg_url, broker_url, home, monkeypatch, tmp_path):
    """A segmented portfolio on PostgreSQL, COMMS_BROKER_URL set, and a way to start worker processes."""
    from comms.ingest import ingest_file
    from comms.sample import generate, write
    from comms.segment.run import segment_snapshot

    monkeypatch.setenv("COMMS_BROKER_URL", broker_url)
    settings = Settings.load(home)
    store = Store.open(settings)
    as_of = date(2026, 11, 2)
    path = write(generate(400, seed=5, as_of=as_of), tmp_path / "p.csv")
    ingest_file(path, settings=settings, store=store, as_of=as_of)
    segment_snapshot(store, settings)
    procs: list[subprocess.Popen] = []

    def start_worker(name: str, queues: str = "comms,video") -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items()} | {"COMMS_HOME": str(home), "COMMS_BROKER_URL": broker_url,
                                                      "COMMS_DATABASE_URL": pg_url}
        celery = str(Path(sys.executable).with_name("celery"))
        proc = subprocess.Popen([celery, "-A", "worker", "worker", "-Q", queues, "-c", "1", "-n", f"{name}@%h",
                                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
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


def test_campaign_completes_across_two_worker_processes_with_exact_counts(dist):
    store, settings, start_worker = dist
    start_worker("w1")
    start_worker("w2")
    report = plan_campaign(store, settings, "dist", ["page"])
    camp = run_distributed(store, settings, "dist", poll=0.2)
    assert camp.state == "completed"
    c = counts(store, report.campaign_id)
    assert c.get(("page", "sent"), 0) == sum(report.planned.values())
    assert c.get(("page", "suppressed"), 0) == sum(report.suppressed.values())
    assert sum(c.values()) == report.jobs


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


def test_kill_9_of_a_worker_mid_campaign_sends_every_email_exactly_once(dist, monkeypatch):
    """Two workers send e-mails to a real SMTP server; one is killed with SIGKILL in the middle. The ledger
    re-queues what it held; nobody is lost and nobody gets two e-mails."""
    import threading
    from collections import Counter

    from sqlalchemy import select

    from comms.deliver.fake_smtp import RecordingSMTP
    from comms.store.ledger import jobs

    store, settings, start_worker = dist
    with RecordingSMTP() as sink:
        env = {"COMMS_EMAIL_BACKEND": "smtp", "COMMS_SMTP_HOST": "127.0.0.1", "COMMS_SMTP_PORT": str(sink.port),
               "COMMS_SMTP_SECURITY": "none", "COMMS_EMAIL_WINDOW": "00:00-24:00", "COMMS_LEASE_SECONDS": "4",
               "COMMS_ENQUEUE_GRACE": "3", "COMMS_CHUNK_SIZE": "5"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings.load(settings.home)
        report = plan_campaign(store, settings, "kill", ["email"])
        victim = start_worker("victim")
        start_worker("survivor")
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.setdefault(
            "camp", run_distributed(store, settings, "kill", poll=0.2)))
        runner.start()
        deadline = time.monotonic() + 120
        while len(sink.messages) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.messages) >= 15, "the workers never started sending"
        os.killpg(victim.pid, signal.SIGKILL)  # the worker and its pool child, mid-chunk
        runner.join(timeout=300)
        assert not runner.is_alive()
        assert outcome["camp"].state == "completed"

        with store.begin() as conn:
            rows = conn.execute(select(jobs.c.customer_id, jobs.c.state, jobs.c.message_id, jobs.c.reason).where(
                jobs.c.campaign_id == report.campaign_id, jobs.c.channel == "email")).all()
        received = Counter(m.message["X-Comms-Message-Id"] for m in sink.messages)
        assert max(received.values()) == 1, "somebody got the same e-mail twice"
        per_customer = Counter()
        ids = {r.message_id: r.customer_id for r in rows if r.message_id}
        for message_id in received:
            per_customer[ids[message_id]] += 1
        assert max(per_customer.values()) == 1, "a customer got two e-mails"
        to_send = {r.customer_id for r in rows if r.state != "suppressed"}
        assert len(to_send) == sum(report.planned.values())
        for r in rows:
            if r.state == "sent":
                assert per_customer[r.customer_id] == 1
            elif r.state == "failed":  # only a send cut off by the kill, reported, never repeated
                assert "outcome unknown" in r.reason and per_customer[r.customer_id] <= 1
        assert sum(1 for r in rows if r.state == "failed") <= 5  # at most the victim's one chunk in flight
        assert {r.state for r in rows} <= {"sent", "failed", "suppressed"}
