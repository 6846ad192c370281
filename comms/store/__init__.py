"""The store: SQLAlchemy 2 over SQLite (WAL, the embedded default) or PostgreSQL (``COMMS_DATABASE_URL``).

Small, hot, shared state lives in tables (snapshots, customers, runs, revocations, later the job ledger);
bulk immutable data (a snapshot's customers and invoices, a run's assignments) lives in Parquet files next
to it, recorded with their SHA-256 so a campaign can prove which data it used.
"""

from .db import Store, as_utc

__all__ = ["Store", "as_utc"]
