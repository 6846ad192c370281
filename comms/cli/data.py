"""``comms ingest`` and ``comms snapshots``: import a portfolio file, list what was imported."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click

from ..errors import InputError
from .main import cli, console, err_console, pass_context

TOP_REASONS = 8


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of {value!r} is not a date like 2025-06-30") from None


@cli.command("ingest")
@click.argument("file", metavar="FILE")
@click.option("--mapping", "mapping_path", metavar="M.yaml",
              help="Mapping file: renames columns, maps values, sets constants, derives and fills fields.")
@click.option("--as-of", "as_of", metavar="DATE", help="Date the aging is measured from, YYYY-MM-DD (default: today).")
@click.option("--rejects", "rejects_path", metavar="PATH",
              help="Where to write rejected rows (default: <home>/rejects/<snapshot>-<file>.rejects.csv).")
@pass_context
def ingest(ctx, file: str, mapping_path: str | None, as_of: str | None, rejects_path: str | None) -> None:
    """Import a portfolio (CSV, XLSX, Parquet, JSON Lines) as a new snapshot.

    One row per customer or one row per open invoice (grouped into customers). Every row is validated;
    rejected rows go to a rejects file with their line number and every reason, and the counts always
    reconcile: rows in = accepted + rejected. Customers are updated by id; each import stays a snapshot.

    \b
    Example: comms ingest ../shared/datasets/german_credit_data.csv --mapping mappings/german_credit.yaml
    """
    from ..ingest import ingest_file

    _bulk_memory_pool()
    day = _parse_date(as_of)
    path = Path(file)
    size = path.stat().st_size if path.is_file() else 0
    if size > 20_000_000 and err_console.is_terminal:
        with err_console.status("reading", spinner="dots") as status:
            report = ingest_file(path, settings=ctx.settings, store=ctx.store, mapping_path=mapping_path,
                                 as_of=day, rejects_path=rejects_path,
                                 progress=lambda stage: status.update(f"{stage} ({size / 1e6:,.0f} MB)"))
    else:
        report = ingest_file(path, settings=ctx.settings, store=ctx.store, mapping_path=mapping_path,
                             as_of=day, rejects_path=rejects_path)
    _print_report(report)
    if not report.accepted:
        raise InputError(f"no row of {path.name} was accepted: nothing imported (see {report.rejects_path})")


def _bulk_memory_pool() -> None:
    """Arrow buffers from jemalloc for this import, unless ARROW_DEFAULT_MEMORY_POOL names a pool: on a
    million-customer export, mimalloc spent about 3 s more system time faulting memory in and giving it
    back between stages (and held a larger peak)."""
    import pyarrow as pa

    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and "jemalloc" in pa.supported_memory_backends():
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def _out(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_report(report) -> None:
    stats = report.stats
    _out(f"rows in {report.rows_in} = accepted {report.accepted} + rejected {report.rejected}")
    _out(f"customers {report.customers}, invoices {report.invoices} ({stats.layout} layout, as of {stats.as_of})")
    if report.snapshot is not None:
        _out(f"snapshot {report.snapshot.id}")
    if report.rejects_path:
        _out(f"rejects file: {report.rejects_path}")
    if report.reasons_count:
        _out("top rejection reasons (rows):")
        for reason, rows in list(report.reasons_count.items())[:TOP_REASONS]:
            _out(f"  {rows:>9}  {reason}")
        if len(report.reasons_count) > TOP_REASONS:
            _out(f"  ... {len(report.reasons_count) - TOP_REASONS} more kinds, see the rejects file")
    if report.filled_fields:
        by_seed: dict[str, list[str]] = {}
        for name, how in report.filled_fields.items():
            by_seed.setdefault(how.partition(" (")[2].rstrip(")"), []).append(name)
        for seed, names in by_seed.items():
            _out(f"filled with fake values: {', '.join(names)} ({seed})")
    if report.defaulted_fields:
        from ..models import FLAG_DEFAULTS

        def shown(name: str) -> str:
            value = FLAG_DEFAULTS.get(name, "amount")
            return f"{name}={str(value).lower() if isinstance(value, bool) else value}"
        absent = [shown(n) for n in report.defaulted_fields if n not in stats.defaulted_rows]
        blank = [f"{shown(n)} ({rows} cells)" for n, rows in stats.defaulted_rows.items()]
        if absent:
            _out(f"defaulted (not in the file): {', '.join(absent)}")
        if blank:
            _out(f"defaulted (empty cells): {', '.join(blank)}")
    for note in report.notes:
        _out(f"note: {note}")


@cli.command("snapshots")
@pass_context
def snapshots(ctx) -> None:
    """List imported snapshots (newest last): id, date, source file and counts.

    \b
    Example: comms snapshots
    """
    from ..store.snapshots import list_snapshots

    rows = list_snapshots(ctx.store)
    if not rows:
        _out("no snapshots yet: run `comms ingest FILE`")
        return
    _out(f"{'id':>4}  {'created':<16}  {'as of':<10}  {'layout':<8} {'rows in':>9} {'accepted':>9} {'rejected':>9} "
         f"{'customers':>9} {'invoices':>9}  source")
    for s in rows:
        _out(f"{s.id:>4}  {s.created_at:%Y-%m-%d %H:%M}  {s.as_of!s:<10}  {s.layout:<8} {s.rows_in:>9} "
             f"{s.rows_accepted:>9} {s.rows_rejected:>9} {s.customers:>9} {s.invoices:>9}  {s.source_name}")
