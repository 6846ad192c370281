"""``comms sample-data``: write a synthetic portfolio file (see :mod:`comms.sample`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from .main import cli, console, err_console

PROGRESS_FROM = 200_000  # customers: below this the command finishes in a couple of seconds


@cli.command("sample-data")
@click.option("--rows", type=click.IntRange(min=1), required=True,
              help="Number of customers; each gets 1-6 open invoices, one row per invoice.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .csv, .parquet, .jsonl or .xlsx (at most 1,000,000 rows).")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same file.")
@click.option("--locales", default="en-US,it-IT,pl-PL,ru-RU,he-IL,zh-CN", show_default=True,
              help="Comma-separated locales to draw customers from (en, it, pl, ru, he, zh also work).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date the aging is measured from, YYYY-MM-DD (default: today).")
@click.option("--bad-share", type=click.FloatRange(0, 0.5), default=0.005, show_default=True,
              help="Share of rows given one deliberate defect each, for ingest to reject.")
def sample_data(rows: int, out: Path, seed: int, locales: str, as_of, bad_share: float) -> None:
    """Write a realistic synthetic portfolio: one row per open invoice, in six locales and currencies.

    Names are in their own scripts, addresses, time zones and amounts fit each country, aging runs from
    current to over a year, some customers dispute, opted out or broke promises, a few have hostile names
    (valid, to be escaped) and about --bad-share of the rows are broken on purpose (ingest rejects them).
    The columns are the canonical ones, so `comms ingest` needs no mapping.

    \b
    Example: comms sample-data --rows 10000 --out var/portfolio.csv --seed 7 --as-of 2025-06-30
    """
    from .. import sample

    suffix = sample.check_path(out)
    codes = sample.parse_locales(locales)
    if suffix == ".xlsx" and rows > sample.XLSX_MAX_ROWS:
        raise InputError(f"{rows:,} customers do not fit in an Excel sheet (limit {sample.XLSX_MAX_ROWS:,} "
                         "rows): write .csv or .parquet instead")
    total = sample.Summary()

    def chunks(advance=None):
        for table, summary in sample.iter_chunks(rows, seed, codes, as_of.date() if as_of else None,
                                                 bad_share):
            total.add(summary)
            if advance:
                advance(summary.customers)
            yield table

    if rows >= PROGRESS_FROM:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task("generate", total=rows)
            path = sample.write(chunks(lambda n: progress.advance(task, n)), out)
    else:
        path = sample.write(chunks(), out)
    console.print(f"wrote {total.customers:,} customers, {total.rows:,} invoice rows "
                  f"({total.bad_rows:,} deliberately bad) to {path}", markup=False, soft_wrap=True)
