"""Derived fields: a mapping's ``derive:`` expressions (comms.segment.expr) evaluated over the source
columns, and their results turned back into the text validation reads.

An expression sees numbers as numbers (a source column whose every cell is a number becomes int64 or
float64; canonical money and counts always do), yes/no fields as booleans and the rest as text. A result
for a money field is rounded half-even once, to cents, from the float's shortest decimal form.

Example: balance = derive_column("balance", expr, mapped, raw_names, text, Formats(), "mapping m.yaml")
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MappingError
from ..models import FIELDS
from .amounts import money_text, normalize_numbers
from .problems import Formats
from .text import clean_cells, combine
from .validate import FALSE_WORDS, TRUE_WORDS


def derive_column(fname: str, expr, mapped, raw_names: list[str], text, formats: Formats, where: str) -> pa.Array:
    """The value of ``fname`` for every row: text for a canonical field, float64 for an extra column."""
    from .mapping import normalize_name, shorten
    frame = {}
    for name in sorted(expr.names):
        if mapped.has(name) or name in mapped.extras:
            kind = FIELDS[name].kind if name in FIELDS else "number"
            col = mapped.extras[name] if name in mapped.extras else mapped.column(name)
            frame[name] = _typed_series(col, kind, formats)
        else:
            src = _find_source(name, raw_names, normalize_name)
            if src is None:
                available = sorted(set(raw_names) | set(mapped.fields) | set(mapped.constants))
                raise MappingError(f"{where}: derive {fname}: unknown column {name!r}; columns are {shorten(available)}")
            frame[name] = _typed_series(text(src), None, formats)
    df = pd.DataFrame(frame, index=pd.RangeIndex(mapped.n))
    series = expr.evaluate(df)
    kind = FIELDS[fname].kind if fname in FIELDS else "number"
    return clean_cells(_result_text(series, kind)) if fname in FIELDS else _result_number(series)


def _find_source(name: str, names: list[str], normalize_name) -> str | None:
    if name in names:
        return name
    hits = [n for n in names if normalize_name(n) == name]
    return hits[0] if len(hits) == 1 else None


def map_values(col: pa.Array, mapping: dict[str, str | None]) -> pa.Array:
    """Replace listed values (ignoring case and surrounding spaces), per distinct value."""
    lookup = {str(k).strip().casefold(): v for k, v in mapping.items()}
    enc = combine(col.dictionary_encode())
    new = [lookup.get(v.strip().casefold(), v) if v is not None else None for v in enc.dictionary.to_pylist()]
    return pa.array(new, pa.string()).take(enc.indices)


def _typed_series(col: pa.Array, kind: str | None, formats: Formats) -> pd.Series:
    """A column as an expression sees it: numbers as numbers, yes/no as booleans, the rest as text."""
    col = combine(col)
    if kind in ("money", "number", "int", "outcome") or kind is None:
        numbers = normalize_numbers(col, formats)
        for target in (pa.int64(), pa.float64()):
            try:
                return pd.Series(pd.arrays.ArrowExtensionArray(pc.cast(numbers, target)))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        if kind is not None:
            ok = pc.match_substring_regex(numbers, r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
            clean = pc.if_else(ok, numbers, pa.scalar(None, pa.string()))
            return pd.Series(pd.arrays.ArrowExtensionArray(pc.cast(clean, pa.float64())))
    if kind == "bool":
        low = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        value = pc.if_else(pc.is_in(low, pa.array(TRUE_WORDS)), True,
                           pc.if_else(pc.is_in(low, pa.array(FALSE_WORDS)), False, pa.scalar(None, pa.bool_())))
        return pd.Series(pd.arrays.ArrowExtensionArray(value))
    return pd.Series(pd.arrays.ArrowExtensionArray(col))


def _to_arrow(series: pd.Series) -> pa.Array:
    arr = pa.array(series, from_pandas=True) if not isinstance(series.dtype, pd.ArrowDtype) \
        else series.array.__arrow_array__()
    return combine(arr)


def _result_text(series: pd.Series, kind: str) -> pa.Array:
    """A derived value as the text validation reads; money rounded half-even once, to cents."""
    arr = _to_arrow(series)
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_null(typ):
        return arr.cast(pa.string())
    if pa.types.is_boolean(typ):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_integer(typ):
        return arr.cast(pa.string())
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        floats = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        if kind == "money":
            return money_text(floats)
        if kind in ("int", "outcome"):
            whole = np.round(floats)  # numpy rounds half to even
            return pc.cast(pa.array(whole, mask=~np.isfinite(whole)).cast(pa.int64()), pa.string())
        return pc.cast(pa.array(floats, mask=~np.isfinite(floats)), pa.string())
    return pc.cast(arr, pa.string())


def _result_number(series: pd.Series) -> pa.Array:
    arr = _to_arrow(series)
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_boolean(arr.type):
        return arr.cast(pa.int8()).cast(pa.float64())
    return arr.cast(pa.float64())
