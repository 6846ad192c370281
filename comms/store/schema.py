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

# The current state of every customer ever imported, updated by id on each re-import.
customers = Table(
    "customers", metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("snapshot_id", Integer, ForeignKey("snapshots.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254)),
    Column("country", String(2), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("consent_email", Boolean, nullable=False),
    Column("consent_sms", Boolean, nullable=False),
    Column("consent_letter", Boolean, nullable=False),
    Column("do_not_contact", Boolean, nullable=False),
    Column("dispute", Boolean, nullable=False),
    Column("balance", Money, nullable=False),
    Column("days_past_due", Integer, nullable=False),
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
