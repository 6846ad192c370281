"""The store's tables (SQLAlchemy Core). Changing a table means a new migration in migrations/versions."""

from __future__ import annotations

from sqlalchemy import (JSON, Boolean, Column, DateTime, Float, ForeignKey, Integer, MetaData, Numeric,
                        String, Table, Text, Date)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

Money = Numeric(18, 2, asdecimal=True)

# One row per import: what came in, what was kept, where the immutable data lies.
snapshots = Table(
    "snapshots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("mapping_name", String(500)),
    Column("layout", String(16), nullable=False),  # customer | invoice
    Column("rows_in", Integer, nullable=False),
    Column("rows_accepted", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("invoices", Integer, nullable=False),
    Column("filled_fields", JSON, nullable=False),     # fields the mapping generated (fake contact data)
    Column("defaulted_fields", JSON, nullable=False),  # optional fields absent from the file, set to defaults
    Column("data_path", String(1000), nullable=False),  # folder with customers.parquet, invoices.parquet
    Column("data_sha256", String(64), nullable=False),  # of customers.parquet + invoices.parquet
)

# Every customer ever imported, by id, with what changes between imports: which import holds their current
# data (name, contacts, invoices: read from that snapshot's Parquet files, never copied here), and the state
# that answers on the page and payments change (balance, dispute). Each re-import points every customer it
# carries at the new snapshot and resets their balance and dispute to the export's.
customers = Table(
    "customers", metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("snapshot_id", Integer, ForeignKey("snapshots.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance", Money, nullable=False),
    Column("dispute", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A trained scoring model; at most one is active and then used instead of the transparent scorecard.
score_models = Table(
    "score_models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_id", Integer, ForeignKey("snapshots.id"), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("path", String(1000), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("features", JSON, nullable=False),
    Column("auc_model", Float, nullable=False),
    Column("auc_scorecard", Float, nullable=False),
    Column("test_rows", Integer, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
)

# One row per segmentation of a snapshot; the per-customer result is in assignments.
segment_runs = Table(
    "segment_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_id", Integer, ForeignKey("snapshots.id"), nullable=False, index=True),
    Column("segments_sha256", String(64), nullable=False),
    Column("score_model_id", Integer, ForeignKey("score_models.id")),
    Column("summary", JSON, nullable=False),  # per segment counts, clusters, overlaps
    Column("data_path", String(1000), nullable=False),  # assignments.parquet: one row per customer
)

# Payment-link revocations: a single link (by digest) or every link of a customer.
link_revocations = Table(
    "link_revocations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_digest", String(64), index=True),
    Column("customer_ref", String(64), index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(200), nullable=False),
)

# --- 0002: what customers answer (micro-site, payments, webhooks) and what stops reminders ---------------
# None of these tables holds a name, an e-mail address or a token in clear: customers are referred to by
# their CRM id, addresses by a digest (comms.payments.preferences.address_digest).
from sqlalchemy import Index, UniqueConstraint  # noqa: E402  (kept with the tables that use them)

# Every customer- and provider-side event, ready for reporting. ``data`` holds only opaque, structured values
# (amounts, months, quartiles, reason codes). ``dedupe_key`` makes a replayed event (a webhook retry, a second
# video beacon for the same quartile) a no-op.
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("campaign", String(64)),
    Column("channel", String(16)),
    Column("variant", String(64)),
    Column("customer_id", String(64), index=True),
    Column("message_id", String(100), index=True),
    Column("dedupe_key", String(128), unique=True),
    Column("data", JSON, nullable=False),
    Index("ix_events_campaign_kind", "campaign", "kind"),
)

# A payment the customer started: the amount is decided here, server-side, never taken from the browser.
# The id is random and opaque: it is what travels to the payment provider and comes back in its callback.
checkouts = Table(
    "checkouts", metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("purpose", String(16), nullable=False),  # full | settlement | instalment
    Column("amount", Money, nullable=False),
    Column("waive", Money, nullable=False),  # forgiven when this checkout is paid (a settlement's discount)
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # open | paid | cancelled
    Column("completed_at", DateTime(timezone=True)),
)

# Money received. (provider, provider_ref) is unique: a replayed callback records nothing twice.
payments = Table(
    "payments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_ref", String(100), nullable=False),
    Column("checkout_id", String(32), ForeignKey("checkouts.id")),
    Column("campaign", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("waived", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("provider", "provider_ref"),
)

# What the customer arranged instead of paying at once: an instalment plan, a promise to pay, a dispute.
# An open row stops reminders (see comms.payments.status.contact_blockers) until it ends or is closed.
arrangements = Table(
    "arrangements", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # plan | promise | dispute
    Column("status", String(16), nullable=False),  # open | closed
    Column("months", Integer),
    Column("amount", Money),
    Column("currency", String(3)),
    Column("until", Date),  # promise date, last instalment
    Column("reason", String(32)),  # dispute reason code
    Column("details", Text),  # the customer's own words about a dispute (never copied into events)
    Column("schedule", JSON),  # [[iso date, amount string], ...]
    Column("closed_at", DateTime(timezone=True)),
)

# Opt-outs per customer and channel, or per address (address_digest set): RFC 8058 one-click, the page's
# contact preferences, SendGrid unsubscribe and spam reports. withdrawn_at: the customer opted back in.
contact_opt_outs = Table(
    "contact_opt_outs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("customer_id", String(64), index=True),
    Column("channel", String(16), nullable=False),  # email | letter | all
    Column("address_digest", String(64), index=True),
    Column("source", String(32), nullable=False),  # page | one-click | sendgrid
    Column("campaign", String(64)),
    Column("withdrawn_at", DateTime(timezone=True)),
)
