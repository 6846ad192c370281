"""The shared delivery rate limit: one token bucket in the store, drawn from by many processes and threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from comms.config import Settings
from comms.deliver.ratelimit import GRANT_TTL, TokenBucket, bucket_for
from comms.errors import ConfigError
from conftest import ROOT

TAKER = """
import json, sys, threading, time
from comms.deliver.ratelimit import TokenBucket
from comms.store import Store
rate, burst, seconds = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
bucket = TokenBucket(Store.open(migrate=False), "email:test", rate, burst)
start = float(sys.argv[4])
while time.time() < start:
    time.sleep(0.005)
taken, lock = [], threading.Lock()
def run():
    while time.time() < start + seconds:
        bucket.take()
        with lock:
            taken.append(time.time())
threads = [threading.Thread(target=run) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(taken))
"""


def most_in_any_window(times: list[float], rate: float, burst: float) -> float:
    """The largest excess of requests over what the bucket allows, over every interval between two takes."""
    times = sorted(times)
    worst = 0.0
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            allowed = burst + rate * (times[j] - first + GRANT_TTL)
            worst = max(worst, (j - i + 1) - allowed)
    return worst


def test_two_processes_with_four_threads_each_stay_under_one_shared_rate(store):
    """Eight takers in two processes as fast as they can: together they get the bucket's rate, no more."""
    rate, burst, seconds = 40.0, 8.0, 2.5
    TokenBucket(store, "email:test", rate, burst)  # the row exists before they race for it
    env = {**os.environ, "COMMS_HOME": str(store.settings.home)}
    if store.dialect == "postgresql":
        env["COMMS_DATABASE_URL"] = store.settings.database_url
    start = time.time() + 2.0  # both imported and connected before the race starts
    procs = [subprocess.Popen([sys.executable, "-c", TAKER, str(rate), str(burst), str(seconds), str(start)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    taken = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        taken += json.loads(out)
    assert len(taken) <= burst + rate * (seconds + GRANT_TTL) + 8  # 8: the grants the last takers hold
    assert len(taken) >= 0.7 * rate * seconds, "the limit starved the senders"
    assert most_in_any_window(taken, rate, burst) <= 2  # a grant in flight between two processes


def test_a_providers_hold_stops_every_taker_until_it_lapses(store):
    bucket = TokenBucket(store, "email:hold", rate=100, burst=50)
    bucket.take()
    other = TokenBucket(store, "email:hold", rate=100, burst=50)  # another worker on the same bucket
    bucket.hold(1.0)
    start = time.monotonic()
    other.take()
    assert time.monotonic() - start >= 0.9


def test_no_rate_configured_means_no_limit_and_a_bad_one_is_one_clear_error(store, monkeypatch):
    assert bucket_for(store.settings, store, "sendgrid") is None
    monkeypatch.setenv("COMMS_EMAIL_RATE", "fast")
    with pytest.raises(ConfigError, match="COMMS_EMAIL_RATE"):
        bucket_for(Settings.load(store.settings.home), store, "sendgrid")
    monkeypatch.setenv("COMMS_EMAIL_RATE", "50")
    bucket = bucket_for(Settings.load(store.settings.home), store, "sendgrid")
    assert bucket.name == "email:sendgrid" and bucket.rate == 50 and bucket.burst == 50
