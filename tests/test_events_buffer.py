"""The page-event buffer: a database hiccup loses no event, and a long outage is bounded and reported."""

from __future__ import annotations

import logging

import pytest

import comms.events as events
from comms.events import EventBuffer, event_counts


def test_a_failed_write_keeps_its_events_for_the_next_flush(store, monkeypatch):
    buffer = EventBuffer(store, max_rows=1000)
    for i in range(5):
        buffer.add("page_viewed", campaign="c", channel="page", customer_id=f"C{i}")
    real = events.record_events
    monkeypatch.setattr(events, "record_events", lambda *a, **k: (_ for _ in ()).throw(OSError("db away")))
    with pytest.raises(OSError):
        buffer.flush()
    assert len(buffer) == 5
    monkeypatch.setattr(events, "record_events", real)
    assert buffer.flush() == 5 and len(buffer) == 0
    assert event_counts(store, "c") == {"page_viewed": 5}


def test_a_long_outage_keeps_a_bounded_backlog_and_logs_what_it_drops(store, monkeypatch, caplog):
    buffer = EventBuffer(store, max_rows=4)
    monkeypatch.setattr(events, "record_events", lambda *a, **k: (_ for _ in ()).throw(OSError("db away")))
    with caplog.at_level(logging.ERROR, logger="comms.events"):
        for i in range(30):  # the page goes on being served: add() never raises
            buffer.add("page_viewed", campaign="c", channel="page", customer_id=f"C{i}")
    assert len(buffer) == EventBuffer.KEEP_BATCHES * 4
    assert buffer.dropped == 30 - len(buffer)
    assert "dropped" in caplog.text
