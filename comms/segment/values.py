"""Values inside a rule: column coercions (numbers, truth, text) and the whitelisted functions.

A value is either a pandas Series aligned to the frame or a Python scalar; every helper accepts both,
so constants never get broadcast until the end. Errors go through ``ctx.expression._fail`` so they carry
the rule's text and origin.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from .expr import Expression

Value = Any  # a pandas Series or a Python scalar (int, float, str, bool, None)


@dataclass
class Context:
    frame: pd.DataFrame
    expression: Expression
    raw: dict[str, pd.Series] = field(default_factory=dict)


# --- value helpers ------------------------------------------------------------------------------------

def is_series(v: Value) -> bool:
    return isinstance(v, pd.Series)


def is_text(v: Value) -> bool:
    if is_series(v):
        if isinstance(v.dtype, pd.CategoricalDtype):  # e.g. band: compare like the text it holds
            return pd.api.types.is_string_dtype(v.dtype.categories.dtype)
        return pd.api.types.is_string_dtype(v.dtype) and not looks_decimal(v)
    return isinstance(v, str)


def looks_decimal(s: pd.Series) -> bool:
    if s.dtype != object:
        return False
    first = s.first_valid_index()
    return first is not None and isinstance(s.at[first], decimal.Decimal)


def numeric(v: Value, ctx: Context, what: str) -> Value:
    """Numbers as float64 (Series) or float (scalar); text is an error, missing becomes NaN."""
    if is_series(v):
        dtype = v.dtype
        if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
            return v
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype):
            floats = pc.cast(v.array.__arrow_array__(), pa.float64())  # in C, not via Decimal objects
            return pd.Series(floats.to_numpy(), index=v.index)
        if isinstance(dtype, pd.ArrowDtype) or pd.api.types.is_numeric_dtype(dtype) \
                or pd.api.types.is_bool_dtype(dtype):
            try:
                return pd.Series(v.to_numpy(dtype="float64", na_value=np.nan), index=v.index)
            except (TypeError, ValueError):
                pass
        if looks_decimal(v) or v.isna().all():
            return pd.to_numeric(v, errors="coerce").astype("float64")
        if dtype == object:  # e.g. if_else(..., None, n): numbers and missing values mixed
            converted = pd.to_numeric(v, errors="coerce").astype("float64")
            if not (converted.isna() & v.notna()).any() and not v.map(type).eq(str).any():
                return converted
        ctx.expression._fail(f"{what} needs numbers, got text (use concat(...) for text)")
    if v is None:
        return np.nan
    if isinstance(v, (bool, int, float, np.number, np.bool_)):
        return float(v)
    if isinstance(v, decimal.Decimal):
        return float(v)
    ctx.expression._fail(f"{what} needs numbers, got text {v!r}")


def truth(v: Value, ctx: Context) -> Value:
    """Element-wise truth: a missing value is false."""
    if is_series(v):
        if v.dtype == bool:
            return v
        if is_text(v):
            return (v.notna() & (v != "")).astype(bool)
        dtype = v.dtype
        if isinstance(dtype, pd.ArrowDtype) or pd.api.types.is_numeric_dtype(dtype) \
                or pd.api.types.is_bool_dtype(dtype):
            try:
                arr = v.to_numpy(dtype="float64", na_value=np.nan)
                return pd.Series((arr != 0) & ~np.isnan(arr), index=v.index)
            except (TypeError, ValueError):
                pass
        return (v.notna() & v.astype(bool)).astype(bool)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return False
    return bool(v)


def broadcast(v: Value, ctx: Context) -> pd.Series:
    if is_series(v):
        return v
    return pd.Series(v, index=ctx.frame.index, dtype=object if v is None else None)


def as_text(v: Value) -> Value:
    if is_series(v):
        plain = is_text(v) and not isinstance(v.dtype, pd.CategoricalDtype)
        return v if plain else v.astype("str")
    return v if isinstance(v, str) or v is None else str(v)


# --- functions ----------------------------------------------------------------------------------------

def _fn_minmax(np_fn):
    def run(ctx: Context, args: list[Value]) -> Value:
        values = [numeric(a, ctx, "min/max") for a in args]
        out = values[0]
        for v in values[1:]:
            out = np_fn(out, v)
        return pd.Series(out, index=ctx.frame.index) if isinstance(out, np.ndarray) else out
    return run


def _fn_abs(ctx, args):
    return abs(numeric(args[0], ctx, "abs"))


def _fn_round(ctx, args):
    x = numeric(args[0], ctx, "round")
    n = int(args[1]) if len(args) > 1 else 0
    return x.round(n) if is_series(x) else round(x, n)


def _fn_clip(ctx, args):
    x, lo, hi = (numeric(a, ctx, "clip") for a in args)
    out = np.minimum(np.maximum(x, lo), hi)  # a missing x stays missing
    return pd.Series(out, index=ctx.frame.index) if isinstance(out, np.ndarray) else out


def _fn_coalesce(ctx, args):
    out = args[0]
    for nxt in args[1:]:
        if not is_series(out):
            if out is None or (isinstance(out, float) and np.isnan(out)):
                out = nxt
            continue
        out = out.where(out.notna(), nxt)
    return out


def _fn_if_else(ctx, args):
    cond = truth(args[0], ctx)
    if not is_series(cond):
        return args[1] if cond else args[2]
    a, b = args[1], args[2]
    if not (is_text(a) or is_text(b)):  # numbers (None is a missing number): stay float64, vectorized
        a, b = numeric(a, ctx, "if_else"), numeric(b, ctx, "if_else")
        return pd.Series(np.where(np.asarray(cond, dtype=bool), a, b), index=ctx.frame.index)
    return broadcast(a, ctx).where(cond, b)


def _fn_is_null(ctx, args):
    v = args[0]
    if is_series(v):
        return v.isna()
    return v is None or (isinstance(v, float) and np.isnan(v))


def _fn_case(method):
    def run(ctx, args):
        v = as_text(args[0])
        if is_series(v):
            return getattr(v.str, method)()
        return None if v is None else getattr(v, method)()
    return run


def _fn_concat(ctx, args):
    parts = [as_text(a) for a in args]
    parts = [p.fillna("") if is_series(p) else ("" if p is None else p) for p in parts]
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


# name -> (function, min args, max args or None)
FUNCTIONS: dict[str, tuple[Callable, int, int | None]] = {
    "min": (_fn_minmax(np.fmin), 1, None),
    "max": (_fn_minmax(np.fmax), 1, None),
    "abs": (_fn_abs, 1, 1),
    "round": (_fn_round, 1, 2),
    "clip": (_fn_clip, 3, 3),
    "coalesce": (_fn_coalesce, 1, None),
    "if_else": (_fn_if_else, 3, 3),
    "is_null": (_fn_is_null, 1, 1),
    "lower": (_fn_case("lower"), 1, 1),
    "upper": (_fn_case("upper"), 1, 1),
    "concat": (_fn_concat, 1, None),
}
