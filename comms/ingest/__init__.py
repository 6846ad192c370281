"""Ingestion: a portfolio file in, validated customers and invoices out, every rejected row written down.

``read_and_validate`` is the pure pipeline (readers -> mapping -> validate -> features; see
:mod:`comms.ingest.pipeline` for the rules that protect customers); ``ingest_file`` adds the store: it
saves the import as an immutable snapshot (which also updates the ``customers`` table by id) and writes
the rejects file, CSV through comms.csvsafe, next to the home's snapshots.

Example: report = ingest_file(Path("portfolio.csv"), settings=settings, store=store)
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from .. import csvsafe
from ..config import Settings
from ..errors import InputError
from .mapping import Mapping
from .mapping_file import as_mapping, load_mapping
from .pipeline import IngestStats, read_and_validate

__all__ = ["IngestReport", "IngestStats", "Mapping", "ingest_file", "load_mapping", "read_and_validate"]


@dataclass
class IngestReport:
    rows_in: int
    accepted: int
    rejected: int
    customers: int
    invoices: int
    snapshot: object | None          # comms.store.snapshots.Snapshot; None when no row was accepted
    rejects_path: Path | None        # None when nothing was rejected
    filled_fields: dict[str, str]
    defaulted_fields: list[str]
    reasons_count: dict[str, int]
    stats: IngestStats | None = None
    notes: list[str] = field(default_factory=list)


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def default_rejects_path(settings: Settings, source: Path, snapshot_id: int | None) -> Path:
    stamp = str(snapshot_id) if snapshot_id is not None else datetime.now().strftime("%Y%m%dT%H%M%S")
    return settings.home / "rejects" / f"{stamp}-{source.stem}.rejects.csv"


def ingest_file(path: str | Path, *, settings: Settings, store, mapping_path: str | Path | Mapping | None = None,
                as_of: date | None = None, rejects_path: str | Path | None = None,
                progress: Callable[[str], None] | None = None) -> IngestReport:
    """Import one file as a new snapshot; rejected rows go to the rejects file with every reason.

    When no row at all is accepted, nothing is imported (no snapshot) but the rejects file is still written.
    """
    path = Path(path)
    mapping = as_mapping(mapping_path)
    # the source's SHA-256 in a thread (hashlib releases the GIL), started once the parse is done: beside
    # the parse it would take a core the parse needs, after it a core is idle for stretches
    with ThreadPoolExecutor(1, thread_name_prefix="source-digest") as pool:
        digest = []
        customers, invoices, rejects, stats = read_and_validate(
            path, mapping, as_of, progress=progress, on_read=lambda: digest.append(pool.submit(_file_sha256, path)))

        def source_sha256() -> str:
            try:
                return digest[0].result()
            except OSError as exc:
                raise InputError(f"{path}: cannot be read ({exc})") from None

        snapshot = None
        if stats.accepted:
            if progress:
                progress("saving the snapshot")
            from ..store.snapshots import save_snapshot

            snapshot = save_snapshot(
                store, customers, invoices, as_of=stats.as_of, source_name=str(path.resolve()),
                source_sha256=source_sha256, mapping_name=str(mapping.path) if mapping.path else None,
                layout=stats.layout, rows_in=stats.rows_in, rows_accepted=stats.accepted,
                rows_rejected=stats.rejected, filled_fields=stats.filled_fields,
                defaulted_fields=stats.defaulted_fields)
    written = None
    if rejects.num_rows:
        written = Path(rejects_path) if rejects_path else default_rejects_path(
            settings, path, snapshot.id if snapshot else None)
        csvsafe.write_table(rejects, written)
    return IngestReport(rows_in=stats.rows_in, accepted=stats.accepted, rejected=stats.rejected,
                        customers=stats.customers, invoices=stats.invoices, snapshot=snapshot,
                        rejects_path=written, filled_fields=stats.filled_fields,
                        defaulted_fields=stats.defaulted_fields, reasons_count=stats.reasons_count,
                        stats=stats, notes=stats.notes)
