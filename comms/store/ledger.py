"""The ledger: campaigns and their jobs, the source of truth of who gets what (the broker is only transport).

One job per (campaign, customer, channel), unique. A job moves through one closed set of states, and only
:func:`comms.campaign.states.check` decides which moves are allowed. A worker claims a job by moving it
to a working state with a lease; a sweeper puts jobs whose lease ran out back where they can be retried.
"""

from __future__ import annotations

from sqlalchemy import (JSON, Column, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from .schema import metadata

campaigns = Table(
    "campaigns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_id", Integer, ForeignKey("snapshots.id"), nullable=False),
    Column("segment_run_id", Integer, ForeignKey("segment_runs.id"), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("segments", JSON, nullable=False),  # the segments it targets (all when launched without --segments)
    Column("state", String(16), nullable=False),  # running | paused | completed | cancelled
    Column("start_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("pause_reason", String(500)),
    Column("error_budget", Integer, nullable=False),  # failures tolerated before pausing by itself
    Column("settings", JSON, nullable=False),  # as-of date, link ttl, duplex: what the run needs to repeat itself
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("treatment", String(64), nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", DateTime(timezone=True)),  # quiet hours: not sent before this instant
    Column("lease_until", DateTime(timezone=True)),
    Column("worker", String(100)),
    Column("message_id", String(64)),  # our own id: idempotency key, matched by webhook events
    Column("provider_id", String(200)),  # the provider's message id, recorded before acknowledging
    Column("artifact", String(1000)),
    Column("sha256", String(64)),
    Column("reason", Text),  # why it failed or was suppressed, one line
    Column("claimed_at", DateTime(timezone=True)),  # the last claim: with updated_at, the report's timings
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("campaign_id", "customer_id", "channel", name="uq_jobs_campaign_customer_channel"),
    Index("ix_jobs_campaign_state", "campaign_id", "channel", "state"),
)

rate_buckets = Table(
    "rate_buckets", metadata,  # shared delivery rate limits (comms.deliver.ratelimit): one token bucket each
    Column("name", String(100), primary_key=True),
    Column("tokens", Float, nullable=False),  # level at `updated`; negative while a provider's hold lasts
    Column("updated", Float, nullable=False),  # the database's clock, seconds since the epoch
)
