"""Dates as exports write them: a strftime-like format (given, or detected from the distinct values),
parsed with one regex and numpy arithmetic, so an impossible date (2024-02-30) is told apart from text
that is not a date at all, and a day/month ambiguity is a question for the user, never a guess.

Example: typed = convert_date(FIELDS["due_date"], col, problems, None)
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MappingError
from ..models import FieldSpec
from .problems import Problems, message
from .text import codes_of, combine

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%Y%m%d")
TIME_SUFFIX = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"


def date_regex(fmt: str) -> str:
    """A regex with named groups Y, m, d for a strftime-like format (%Y %m %d %y only)."""
    out, i = [], 0
    parts = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})", "%y": r"(?P<y>\d{2})"}
    if fmt == "%Y%m%d":
        return r"^(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})" + TIME_SUFFIX + "$"
    while i < len(fmt):
        token = fmt[i:i + 2]
        if token in parts:
            out.append(parts[token])
            i += 2
        elif fmt[i] == "%":
            raise MappingError(f"date_format {fmt!r}: only %Y, %m, %d and %y are supported")
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "^" + "".join(out) + TIME_SUFFIX + "$"


def _parse_dates(values: pa.Array, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days since epoch, shape ok, calendar ok) for each value under ``fmt``."""
    parts = pc.extract_regex(values, date_regex(fmt))
    shape = np.asarray(pc.fill_null(pc.is_valid(parts), False))
    names = [parts.type.field(i).name for i in range(parts.type.num_fields)]

    def num(name):
        return np.asarray(pc.fill_null(pc.cast(pc.struct_field(parts, name), pa.int32()), 0).to_numpy(
            zero_copy_only=False), dtype=np.int64) if len(values) else np.zeros(0, np.int64)
    year = num("Y") if "Y" in names else 2000 + num("y")
    month, day = num("m"), num("d")
    ok = shape & (month >= 1) & (month <= 12) & (day >= 1)
    months = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[M]").astype("datetime64[D]") - first).astype(np.int64)
    ok &= day <= length
    days = (first.astype(np.int64) + np.clip(day, 1, None) - 1)
    return days, shape, ok


def detect_date_format(values: pa.Array, field_name: str) -> str:
    """The format that reads most distinct values; a day/month tie with nothing to tell them apart
    is a question for the user, never a guess."""
    sample = values.filter(pc.is_valid(values)) if values.null_count else values
    if not len(sample):
        return DATE_FORMATS[0]
    scores = {f: int(_parse_dates(sample, f)[2].sum()) for f in DATE_FORMATS}
    best = max(scores.values())
    winners = [f for f in DATE_FORMATS if scores[f] == best]
    if best and {"%d/%m/%Y", "%m/%d/%Y"} <= set(winners) and winners[0] != "%Y-%m-%d":
        example = sample[0].as_py()
        raise MappingError(f"{field_name}: dates such as {example!r} can be read day-first or month-first; "
                           f"set read: {{date_format: '%d/%m/%Y'}} (or '%m/%d/%Y') in the mapping")
    return winners[0]


def convert_date(spec: FieldSpec, col: pa.Array, problems: Problems, fmt: str | None) -> pa.Array:
    enc = combine(col.dictionary_encode())
    values = enc.dictionary
    fmt = fmt or detect_date_format(values, spec.name)
    days, shape, ok = _parse_dates(values, fmt)
    year = (days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970) if len(days) else days
    plausible = ok & (year >= 1900) & (year <= 2100)
    typed_d = pa.array(days.astype(np.int32), pa.int32(), mask=~plausible).cast(pa.date32())
    typed = typed_d.take(enc.indices)
    codes = codes_of(enc.indices)
    for bad_d, text, key in ((~shape, f"{spec.name}: not a date ", f"{spec.name}: not a date"),
                             (shape & ~ok, f"{spec.name}: impossible date ", f"{spec.name}: impossible date"),
                             (ok & ~plausible, f"{spec.name}: implausible year ", f"{spec.name}: implausible year")):
        if bad_d.any():
            rows = np.flatnonzero(np.append(bad_d, False)[codes])
            suffix = f" (expected {fmt})" if key.endswith("not a date") else ""
            problems.add(rows, message(text, values, suffix).take(pa.array(codes[rows])), key)
    return typed


