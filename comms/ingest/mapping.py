"""Mapping files: how an outsider's export becomes canonical fields, without editing the export.

A mapping is a small YAML file (see mappings/README.md)::

    name: Aged receivables from ACME ERP
    layout: invoice                 # or customer; detected when absent
    read: {delimiter: ";", encoding: cp1252, decimal: ",", thousands: ".", date_format: "%d.%m.%Y",
           sheet: 0, na_values: ["", "NA", "-"]}
    columns: {customer_id: Kundennr, name: Name, due_date: Fällig, open_amount: Offen}
    values: {dispute: {J: true, N: false}}
    constants: {currency: EUR, country: DE, locale: de-DE, timezone: Europe/Berlin}
    derive: {balance: "max(BILL_AMT1, 0)", customer_id: "concat('UCI-', ID)"}
    fill: {seed: 7, fields: {name: fake_name, email: fake_email}}
    extra: {credit_limit: LIMIT_BAL}

Steps, in this order, on text columns: pick the ``columns`` (a canonical field not named there is taken
from a column with the same name, ignoring case, spaces and dashes), undo spreadsheet-formula
neutralization, turn ``na_values`` into empty cells (``NA`` in a country column stays Namibia), map
``values`` (matched ignoring case and surrounding spaces; unlisted values pass through to validation),
set ``constants``, evaluate ``derive`` expressions (comms.segment.expr, over the source columns, numbers
typed as numbers, in file order; later ones see earlier ones), ``fill`` empty contact fields with clearly
fake values, and keep ``extra`` numeric columns. Anything a mapping names that the file lacks is a
MappingError naming the mapping file and the columns that do exist.

Example: mapped = load_mapping("mappings/uci_credit_card.yaml").apply(raw, Path("uci.csv"))  (mapping_file)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MappingError
from ..models import FIELDS
from .derive import derive_column, map_values
from .fake import GENERATORS, fake_columns
from .parallel import parallel_map
from .problems import Formats
from .readers import RawTable, ReadOptions
from .text import clean_cells, to_numpy

DEFAULT_NA = ("NA", "N/A", "n/a", "NULL", "null", "#N/A", "NaN")


def normalize_name(name: str) -> str:
    """'Customer ID' / 'customer-id' / 'CUSTOMER_ID' -> 'customer_id'."""
    return re.sub(r"[\s\-./]+", "_", str(name).strip().lower()).strip("_")


def shorten(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


@dataclass(frozen=True)
class FillSpec:
    seed: int
    fields: dict[str, str]  # canonical field (or "address") -> generator


@dataclass
class Mapped:
    """Canonical text columns of one file, ready for validation."""

    n: int
    fields: dict[str, pa.Array]
    constants: dict[str, str]
    extras: dict[str, pa.Array]
    origin: dict[str, str]                 # field -> where it came from, for messages
    sources: dict[str, str] = field(default_factory=dict)  # field -> the source column it was read from
    filled: dict[str, str] = field(default_factory=dict)
    filled_rows: dict[str, int] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.fields or name in self.constants

    def column(self, name: str) -> pa.Array:
        if name in self.fields:
            return self.fields[name]
        return pa.repeat(pa.scalar(self.constants[name], pa.string()), self.n)


@dataclass(frozen=True)
class Mapping:
    name: str | None = None
    path: Path | None = None
    layout: str | None = None
    read: ReadOptions = ReadOptions()
    formats: Formats = Formats()
    na_values: tuple[str, ...] = DEFAULT_NA
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    derive: dict[str, object] = field(default_factory=dict)  # field -> compiled Expression
    fill: FillSpec | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"mapping {self.path}" if self.path else "the file's own column names (no --mapping)"

    # --- applying -------------------------------------------------------------------------------------

    def apply(self, raw: RawTable, source: Path) -> Mapped:
        table = raw.table
        names = table.column_names
        by_norm: dict[str, list[str]] = {}
        for n in names:
            by_norm.setdefault(normalize_name(n), []).append(n)

        def find(src: str, purpose: str) -> str:
            if src in names:
                return src
            hits = by_norm.get(normalize_name(src), [])
            if len(hits) == 1:
                return hits[0]
            close = difflib.get_close_matches(src, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise MappingError(f"{self.where}: column {src!r} ({purpose}) is not in {source.name}{hint}; "
                               f"its columns are {shorten(names)}")

        cache: dict[str, pa.Array] = {}

        def text(src: str, kind: str | None = None) -> pa.Array:
            key = f"{src}\0{kind == 'country'}"
            if key not in cache:
                tokens = tuple(t for t in self.na_values if not (kind == "country" and t.upper() == "NA"))
                cache[key] = clean_cells(table.column(src), tokens)
            return cache[key]

        fields: dict[str, pa.Array] = {}
        origin: dict[str, str] = {}
        sources: dict[str, str] = {}
        wanted = []
        for fname in FIELDS:
            if fname in self.constants or (fname in self.derive and fname not in self.columns):
                continue
            if fname in self.columns:
                wanted.append((find(self.columns[fname], f"for {fname}"), FIELDS[fname].kind))
            elif by_norm.get(fname):
                wanted.append((by_norm[fname][0], FIELDS[fname].kind))
        wanted += [(find(src, f"extra {e}"), None) for e, src in self.extra.items() if e not in self.derive]
        parallel_map(lambda sk: text(*sk), list(dict.fromkeys(wanted)))  # fills the cache, two at a time
        for fname in FIELDS:
            if fname in self.constants or (fname in self.derive and fname not in self.columns):
                continue
            if fname in self.columns:
                src = find(self.columns[fname], f"for {fname}")
            else:
                hits = by_norm.get(fname, [])
                if not hits:
                    continue
                src = hits[0]
            fields[fname] = text(src, FIELDS[fname].kind)
            origin[fname] = f"column {src!r}"
            sources[fname] = src
        extras = {}
        for ename, src in self.extra.items():
            if ename in self.derive:
                continue
            col = find(src, f"extra {ename}")
            extras[ename] = text(col)
            origin[ename] = f"column {col!r}"
        for fname, mapping in self.values.items():
            target = fields if fname in fields else extras if fname in extras else None
            if target is None:
                raise MappingError(f"{self.where}: values for {fname!r}, but no column is mapped to {fname}")
            target[fname] = map_values(target[fname], mapping)
        mapped = Mapped(table.num_rows, fields, dict(self.constants), extras, origin, sources)
        for fname, expr in self.derive.items():
            result = derive_column(fname, expr, mapped, raw.table.column_names, text, self.formats, self.where)
            if fname in FIELDS:
                fields[fname] = result
            else:
                extras[fname] = result
            origin[fname] = f"derived ({expr.text})"
        if self.fill:
            self._fill(mapped)
        return mapped

    def _fill(self, mapped: Mapped) -> None:
        ids = mapped.fields.get("customer_id")
        if ids is None:
            return
        locales = mapped.column("locale") if mapped.has("locale") else None
        for target, generator in self.fill.fields.items():
            wanted = GENERATORS[generator]
            missing = {f: (np.ones(mapped.n, bool) if not mapped.has(f) else
                           to_numpy(mapped.column(f).is_null())) for f in wanted if f not in mapped.constants}
            if not any(m.any() for m in missing.values()):
                continue
            values = fake_columns(generator, ids, locales, self.fill.seed)
            for f, need in missing.items():
                if not need.any():
                    continue
                if f in mapped.fields:
                    mapped.fields[f] = pc.if_else(pa.array(need), values[f], mapped.fields[f])
                else:
                    mapped.fields[f] = values[f]
                mapped.filled[f] = f"{generator} (seed {self.fill.seed})"
                mapped.filled_rows[f] = int(need.sum())
                mapped.origin[f] = f"filled with {generator}"


def default_mapping() -> Mapping:
    """No mapping file: the export's columns must already carry the canonical names."""
    return Mapping()
