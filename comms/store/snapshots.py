"""Portfolio snapshots, segment runs and score models: what was imported and decided, and where it lies.

A snapshot is immutable: its customers and invoices are written once as Parquet under
``<snapshots_dir>/<id>/`` and their SHA-256 recorded, so a campaign that points at a snapshot id always
sees the same data. The ``customers`` table holds each customer's current state, updated by id on
every import (customers missing from a newer export keep their last state and snapshot id).

Saving a snapshot uses both cores: the Parquet files are written and hashed in a thread (pyarrow and
hashlib release the GIL) while the calling thread upserts the customers in the same transaction.
"""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, insert, select, update

from ..errors import StoreError
from . import schema as t
from .db import Store

CUSTOMER_COLUMNS = [c.name for c in t.customers.columns if c.name not in ("snapshot_id", "updated_at")]


@dataclass(frozen=True)
class Snapshot:
    id: int
    created_at: datetime
    as_of: date
    source_name: str
    layout: str
    rows_in: int
    rows_accepted: int
    rows_rejected: int
    customers: int
    invoices: int
    filled_fields: dict
    defaulted_fields: list
    data_path: Path
    data_sha256: str

    @property
    def customers_path(self) -> Path:
        return self.data_path / "customers.parquet"

    @property
    def invoices_path(self) -> Path:
        return self.data_path / "invoices.parquet"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sha256(*paths: Path) -> str:
    """One SHA-256 over the files' bytes, one after the other."""
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _to_arrow(frame: pd.DataFrame | pa.Table) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def save_snapshot(store: Store, customers: pd.DataFrame | pa.Table, invoices: pd.DataFrame | pa.Table, *,
                  as_of: date, source_name: str, source_sha256: str | Callable[[], str], mapping_name: str | None,
                  layout: str, rows_in: int, rows_accepted: int, rows_rejected: int,
                  filled_fields: dict[str, str], defaulted_fields: list[str]) -> Snapshot:
    """Write the snapshot's Parquet files, record it, and upsert every customer's row by id (pointed at this
    snapshot, balance and dispute as the export says).

    ``source_sha256`` may be a function returning it, called once the customers are written: a digest
    computed in a thread then runs beside the upsert. It is recorded in the same transaction.
    """
    cust = _to_arrow(customers)
    inv = _to_arrow(invoices)
    with store.begin() as conn:
        snap_id = conn.execute(insert(t.snapshots).values(
            created_at=_now(), as_of=as_of, source_name=source_name[:500], source_sha256="",
            mapping_name=mapping_name, layout=layout, rows_in=rows_in, rows_accepted=rows_accepted,
            rows_rejected=rows_rejected, customers=cust.num_rows, invoices=inv.num_rows,
            filled_fields=filled_fields, defaulted_fields=defaulted_fields, data_path="", data_sha256="",
        ).returning(t.snapshots.c.id)).scalar_one()
        folder = store.settings.snapshots_dir / str(snap_id)
        if folder.exists():  # left over from a database that was reset: never mix two snapshots
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        # the two files are written beside the customer upsert, each in its own thread (Arrow's writer and
        # sqlite3's steps release the GIL), so the three share the cores
        with ThreadPoolExecutor(2, thread_name_prefix="snapshot-files") as pool:
            files = [pool.submit(_write_customers, folder, cust), pool.submit(_write_invoices, folder, inv)]
            _upsert_customers(store, conn, cust, snap_id)
            for written in files:
                written.result()  # an error there rolls the snapshot back too
        data_sha256 = _sha256(folder / "customers.parquet", folder / "invoices.parquet")
        source_digest = source_sha256() if callable(source_sha256) else source_sha256
        conn.execute(update(t.snapshots).where(t.snapshots.c.id == snap_id)
                     .values(source_sha256=source_digest, data_path=str(folder), data_sha256=data_sha256))
    return get_snapshot(store, snap_id)


def _write_customers(folder: Path, cust: pa.Table) -> None:
    pq.write_table(cust, folder / "customers.parquet", compression="zstd")


def _write_invoices(folder: Path, inv: pa.Table) -> None:
    # dictionary pages only for the dates: ids and numbers are nearly unique, and trying them doubled the
    # time to write the file (and made it larger)
    pq.write_table(inv, folder / "invoices.parquet", compression="zstd", row_group_size=256_000,
                   use_dictionary=[c for c in ("issue_date", "due_date") if c in inv.column_names])


# SQLite: rows per INSERT statement. sqlite3 spends about 1 us per executed statement on top of binding
# the values, so 128 customers share one statement, and the constant columns are bound once per statement.
ROWS_PER_STATEMENT = 128
SQLITE_SLICE = 65_536  # customers turned into Python values at a time: bounds the memory of the upsert
SQLITE_CACHE_KIB = 262_144  # page cache during the upsert, so the B-tree is not spilled to the WAL midway


def _sorted_by_id(cust: pa.Table) -> pa.Table:
    """Rows sorted by id (B-tree locality: a sorted upsert is about twice as fast); ingest's output
    already is, which one comparison pass confirms."""
    ids = cust.column("customer_id")
    if len(ids) < 2 or pc.all(pc.greater(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py():
        return cust
    return cust.take(pc.sort_indices(ids))


def _sqlite_values(col: pa.ChunkedArray) -> list:
    """A column as the Python values sqlite3 binds cheapest: money as exact text, flags as 0/1 ints
    (a bool or None goes through sqlite3's adapter lookup, several times the cost of an int)."""
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.string())
    elif pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int8())
    return col.to_pylist()


def _sqlite_upsert(conn, cust: pa.Table, names: list[str], updates: str, snap_id: int, now: datetime) -> None:
    """Multi-row INSERT ... ON CONFLICT statements: ?1 and ?2 (snapshot id, time) are bound once per
    statement, each customer's values follow in CUSTOMER_COLUMNS order. The page cache is enlarged for
    the upsert and put back afterwards."""
    width = len(CUSTOMER_COLUMNS)
    # the timestamp as the text SQLAlchemy itself stores for a DateTime on SQLite
    stamp = now.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def statement(rows: int) -> str:
        values = ", ".join("(" + ", ".join(f"?{3 + r * width + j}" for j in range(width)) + ", ?1, ?2)"
                           for r in range(rows))
        return (f"INSERT INTO customers ({', '.join(names)}) VALUES {values} "
                f"ON CONFLICT (customer_id) DO UPDATE SET {updates}")

    full_sql = statement(ROWS_PER_STATEMENT)
    step = ROWS_PER_STATEMENT * width
    head = (snap_id, stamp)
    cur = conn.connection.driver_connection.cursor()
    cache = cur.execute("PRAGMA cache_size").fetchone()[0]
    cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        for start in range(0, cust.num_rows, SQLITE_SLICE):
            part = cust.slice(start, SQLITE_SLICE)
            n = part.num_rows
            flat: list = [None] * (n * width)
            for j, name in enumerate(CUSTOMER_COLUMNS):
                if name in part.column_names:
                    flat[j::width] = _sqlite_values(part.column(name))
            whole = n // ROWS_PER_STATEMENT * ROWS_PER_STATEMENT
            cur.executemany(full_sql, (head + tuple(flat[i:i + step]) for i in range(0, whole * width, step)))
            if whole < n:
                cur.execute(statement(n - whole), head + tuple(flat[whole * width:]))
    finally:
        cur.execute(f"PRAGMA cache_size = {int(cache)}")
        cur.close()


def _postgres_columns(cust: pa.Table, snap_id: int, now: datetime) -> list[list]:
    """Columns as Python lists in CUSTOMER_COLUMNS order + snapshot_id, updated_at."""
    n = cust.num_rows
    cols = [cust.column(name).to_pylist() if name in cust.column_names else [None] * n for name in CUSTOMER_COLUMNS]
    return cols + [[snap_id] * n, [now] * n]


def _upsert_customers(store: Store, conn, cust: pa.Table, snap_id: int) -> None:
    """Insert or update every customer of the snapshot by id, in bulk (multi-row statements on SQLite;
    COPY into a temporary table then one INSERT ... ON CONFLICT on PostgreSQL)."""
    names = CUSTOMER_COLUMNS + ["snapshot_id", "updated_at"]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "customer_id")
    cust = _sorted_by_id(cust)
    if store.dialect == "sqlite":
        _sqlite_upsert(conn, cust, names, updates, snap_id, _now())
        return
    cols = _postgres_columns(cust, snap_id, _now())
    raw = conn.connection.driver_connection  # psycopg 3
    with raw.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE customers_in (LIKE customers INCLUDING DEFAULTS) ON COMMIT DROP")
        with cur.copy(f"COPY customers_in ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*cols):
                copy.write_row(row)
        cur.execute(f"INSERT INTO customers ({', '.join(names)}) SELECT {', '.join(names)} FROM customers_in "
                    f"ON CONFLICT (customer_id) DO UPDATE SET {updates}")


def _snapshot(row: Any) -> Snapshot:
    m = row._mapping
    return Snapshot(id=m["id"], created_at=m["created_at"], as_of=m["as_of"], source_name=m["source_name"],
                    layout=m["layout"], rows_in=m["rows_in"], rows_accepted=m["rows_accepted"],
                    rows_rejected=m["rows_rejected"], customers=m["customers"], invoices=m["invoices"],
                    filled_fields=m["filled_fields"], defaulted_fields=m["defaulted_fields"],
                    data_path=Path(m["data_path"]), data_sha256=m["data_sha256"])


def get_snapshot(store: Store, snapshot_id: int | None = None) -> Snapshot:
    """A snapshot by id, or the newest one. StoreError when there is none."""
    with store.begin() as conn:
        q = select(t.snapshots)
        q = q.where(t.snapshots.c.id == snapshot_id) if snapshot_id else q.order_by(t.snapshots.c.id.desc()).limit(1)
        row = conn.execute(q).first()
    if row is None:
        if snapshot_id:
            raise StoreError(f"there is no snapshot {snapshot_id}")
        raise StoreError("no portfolio has been imported yet: run `comms ingest FILE` first")
    return _snapshot(row)


def list_snapshots(store: Store) -> list[Snapshot]:
    with store.begin() as conn:
        return [_snapshot(r) for r in conn.execute(select(t.snapshots).order_by(t.snapshots.c.id))]


def load_customers(snapshot: Snapshot, columns: list[str] | None = None) -> pd.DataFrame:
    """The snapshot's customers with their derived features (Arrow-backed strings, Decimal money)."""
    _check_data(snapshot)
    return pq.read_table(snapshot.customers_path, columns=columns).to_pandas()


def load_invoices(snapshot: Snapshot, customer_ids: list[str] | None = None) -> pd.DataFrame:
    _check_data(snapshot)
    filters = [("customer_id", "in", customer_ids)] if customer_ids is not None else None
    return pq.read_table(snapshot.invoices_path, filters=filters).to_pandas()


def _check_data(snapshot: Snapshot) -> None:
    if not snapshot.customers_path.exists():
        raise StoreError(f"the data of snapshot {snapshot.id} is missing from {snapshot.data_path}")


def count_customers(store: Store) -> int:
    with store.begin() as conn:
        return conn.execute(select(func.count()).select_from(t.customers)).scalar_one()


# --- segment runs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentRun:
    id: int
    created_at: datetime
    snapshot_id: int
    segments_sha256: str
    score_model_id: int | None
    summary: dict
    data_path: Path


def save_segment_run(store: Store, snapshot_id: int, assignments: pd.DataFrame | pa.Table, *,
                     segments_sha256: str, score_model_id: int | None, summary: dict) -> SegmentRun:
    """Record a segmentation of a snapshot; one row per customer goes to assignments.parquet."""
    table = _to_arrow(assignments)
    with store.begin() as conn:
        run_id = conn.execute(insert(t.segment_runs).values(
            created_at=_now(), snapshot_id=snapshot_id, segments_sha256=segments_sha256,
            score_model_id=score_model_id, summary=summary, data_path="",
        ).returning(t.segment_runs.c.id)).scalar_one()
        folder = store.settings.snapshots_dir / str(snapshot_id) / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.parquet"
        pq.write_table(table, path, compression="zstd")
        conn.execute(update(t.segment_runs).where(t.segment_runs.c.id == run_id).values(data_path=str(path)))
    return get_segment_run(store, run_id)


def get_segment_run(store: Store, run_id: int | None = None, snapshot_id: int | None = None) -> SegmentRun:
    """A run by id, or the newest run (of a snapshot, if given). StoreError when there is none."""
    with store.begin() as conn:
        q = select(t.segment_runs)
        if run_id:
            q = q.where(t.segment_runs.c.id == run_id)
        if snapshot_id:
            q = q.where(t.segment_runs.c.snapshot_id == snapshot_id)
        row = conn.execute(q.order_by(t.segment_runs.c.id.desc()).limit(1)).first()
    if row is None:
        raise StoreError("the portfolio has not been segmented yet: run `comms segment` first")
    m = row._mapping
    return SegmentRun(id=m["id"], created_at=m["created_at"], snapshot_id=m["snapshot_id"],
                      segments_sha256=m["segments_sha256"], score_model_id=m["score_model_id"],
                      summary=m["summary"], data_path=Path(m["data_path"]))


def load_assignments(run: SegmentRun) -> pd.DataFrame:
    return pq.read_table(run.data_path).to_pandas()


# --- score models -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreModel:
    id: int
    kind: str
    path: Path
    sha256: str
    features: list
    auc_model: float
    auc_scorecard: float
    test_rows: int
    active: bool
    snapshot_id: int


def register_model(store: Store, *, snapshot_id: int, kind: str, path: Path, features: list[str],
                   auc_model: float, auc_scorecard: float, test_rows: int, activate: bool) -> ScoreModel:
    """Record a trained model file; with ``activate`` it becomes the one scoring uses."""
    with store.begin() as conn:
        if activate:
            conn.execute(update(t.score_models).values(active=False))
        mid = conn.execute(insert(t.score_models).values(
            created_at=_now(), snapshot_id=snapshot_id, kind=kind, path=str(path), sha256=_sha256(path),
            features=features, auc_model=auc_model, auc_scorecard=auc_scorecard, test_rows=test_rows,
            active=activate,
        ).returning(t.score_models.c.id)).scalar_one()
    return get_model(store, mid)


def _model(row: Any) -> ScoreModel:
    m = row._mapping
    return ScoreModel(id=m["id"], kind=m["kind"], path=Path(m["path"]), sha256=m["sha256"],
                      features=m["features"], auc_model=m["auc_model"], auc_scorecard=m["auc_scorecard"],
                      test_rows=m["test_rows"], active=m["active"], snapshot_id=m["snapshot_id"])


def get_model(store: Store, model_id: int) -> ScoreModel:
    with store.begin() as conn:
        row = conn.execute(select(t.score_models).where(t.score_models.c.id == model_id)).first()
    if row is None:
        raise StoreError(f"there is no score model {model_id}")
    return _model(row)


def active_model(store: Store) -> ScoreModel | None:
    with store.begin() as conn:
        row = conn.execute(select(t.score_models).where(t.score_models.c.active.is_(True))).first()
    return _model(row) if row else None


def set_active_model(store: Store, model_id: int | None) -> None:
    """Make a trained model the one campaigns use, or (None) go back to the transparent scorecard."""
    if model_id is not None:
        get_model(store, model_id)
    with store.begin() as conn:
        conn.execute(update(t.score_models).values(active=False))
        if model_id is not None:
            conn.execute(update(t.score_models).where(t.score_models.c.id == model_id).values(active=True))
