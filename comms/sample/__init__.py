"""Synthetic portfolios for demos, tests and benchmarks: ``generate`` a table, ``write`` it to a file.

The portfolio is in the invoice layout (one row per open invoice, customer fields repeated on each of the
customer's rows) with the canonical column names of :data:`comms.models.SCHEMA`, so ``comms ingest``
reads it without a mapping. It is deterministic: the same seed, as-of date and arguments give the same
table and byte-identical files.

Customers are generated in fixed-size chunks, each with its own random stream derived from the seed, so a
million customers can be streamed to a file in bounded memory and ``generate`` (all chunks concatenated)
gives exactly the rows the streaming writer writes. Changing :data:`CHUNK` changes every sample file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .defects import DEFECTS, adversarial, break_rows
from .output import FORMATS, XLSX_MAX_ROWS, check_path, write
from .pools import LOCALE_WEIGHTS, LOCALES
from .portfolio import build_chunk

CHUNK = 100_000  # customers per chunk
DEFAULT_LOCALES = tuple(LOCALES)
COLUMNS = ("customer_id", "name", "given_name", "email", "phone", "address_line1", "address_line2",
           "postal_code", "city", "region", "country", "locale", "timezone", "currency", "consent_email",
           "consent_sms", "consent_letter", "do_not_contact", "dispute", "customer_since", "billed_history",
           "paid_history", "broken_promises", "invoice_number", "issue_date", "due_date", "amount",
           "open_amount")
METADATA_KEY = b"comms.sample"

__all__ = ["generate", "iter_chunks", "write", "parse_locales", "Summary", "DEFAULT_LOCALES", "COLUMNS",
           "DEFECTS", "FORMATS", "XLSX_MAX_ROWS", "check_path", "summary_of"]


@dataclass
class Summary:
    """What was generated: shown by the command, kept in the table's schema metadata."""
    customers: int = 0
    rows: int = 0
    bad_rows: int = 0
    defects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECTS, 0))
    adversarial_customers: int = 0

    def add(self, other: "Summary") -> None:
        self.customers += other.customers
        self.rows += other.rows
        self.bad_rows += other.bad_rows
        self.adversarial_customers += other.adversarial_customers
        for k, v in other.defects.items():
            self.defects[k] = self.defects.get(k, 0) + v

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


def parse_locales(value: str | Iterable[str]) -> tuple[str, ...]:
    """``en-US,it-IT`` (or ``en,it``, ``en_US``) as canonical locale codes, in the order given."""
    items = value.split(",") if isinstance(value, str) else list(value)
    by_language = {code.split("-")[0]: code for code in LOCALES}
    out: list[str] = []
    for raw in items:
        item = raw.strip().replace("_", "-")
        if not item:
            continue
        match = next((c for c in LOCALES if c.lower() == item.lower()), None) or by_language.get(item.lower())
        if match is None:
            raise InputError(f"unknown locale {raw.strip()!r}: choose from {', '.join(LOCALES)}")
        if match not in out:
            out.append(match)
    if not out:
        raise InputError(f"no locales given: choose from {', '.join(LOCALES)}")
    return tuple(out)


def _schema(summary: Summary | None = None) -> pa.Schema:
    types = {"consent_email": pa.bool_(), "consent_sms": pa.bool_(), "consent_letter": pa.bool_(),
             "do_not_contact": pa.bool_(), "dispute": pa.bool_(), "broken_promises": pa.int64()}
    schema = pa.schema([pa.field(c, types.get(c, pa.string())) for c in COLUMNS])
    return schema.with_metadata({METADATA_KEY: summary.to_json()}) if summary else schema


def iter_chunks(rows: int, seed: int = 7, locales: str | Iterable[str] = DEFAULT_LOCALES,
                as_of: date | None = None, bad_share: float = 0.005) -> Iterator[tuple[pa.Table, Summary]]:
    """Yield the portfolio chunk by chunk (each a table of whole customers) with each chunk's summary."""
    if rows < 0:
        raise InputError("--rows must be at least 0")
    if not 0 <= bad_share <= 0.5:
        raise InputError(f"--bad-share must be between 0 and 0.5, not {bad_share}")
    codes = parse_locales(locales)
    weights = np.array([LOCALE_WEIGHTS[c] for c in codes])
    weights = weights / weights.sum()
    as_of = as_of or date.today()
    first_row = 0
    for chunk_index, start in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - start)
        rng = np.random.default_rng([seed, chunk_index])
        cols, facts = build_chunk(codes, weights, seed, as_of, start, first_row, n, rng)
        protected = adversarial(cols, facts["owner"], facts["customer_locale"], rng)
        defects = break_rows(cols, facts["owner"], facts["invoice_count"], protected, bad_share, rng)
        summary = Summary(customers=n, rows=len(facts["owner"]), bad_rows=sum(defects.values()),
                          defects=defects, adversarial_customers=int(len(np.unique(facts["owner"][protected]))))
        first_row += summary.rows
        yield pa.table([cols[c] for c in COLUMNS], schema=_schema()), summary


def generate(rows: int, seed: int = 7, locales: str | Iterable[str] = DEFAULT_LOCALES,
             as_of: date | None = None, bad_share: float = 0.005,
             progress: Callable[[int], None] | None = None) -> pa.Table:
    """The whole portfolio of ``rows`` customers as one table (invoice rows).

    Money and dates are text columns (``"1234.50"``, ``"2024-05-31"``) because bad rows carry values that
    are neither; flags are booleans and ``broken_promises`` an integer. The schema metadata key
    ``comms.sample`` holds the :class:`Summary` as JSON. ``progress`` is called with customers done.
    """
    total = Summary()
    tables = []
    for table, summary in iter_chunks(rows, seed, locales, as_of, bad_share):
        tables.append(table)
        total.add(summary)
        if progress:
            progress(summary.customers)
    table = pa.concat_tables(tables) if tables else _schema().empty_table()
    return table.replace_schema_metadata({METADATA_KEY: total.to_json()})


def summary_of(table: pa.Table) -> Summary:
    """The :class:`Summary` a generated table carries in its schema metadata."""
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise InputError("this table was not made by comms sample-data")
    return Summary(**json.loads(raw))
