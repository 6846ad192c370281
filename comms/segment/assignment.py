"""Assignment: every customer to exactly one segment (first matching rule, else the fallback).

Each rule is evaluated once over all customers into one column of a (customers x rules) boolean matrix;
the first true column wins, rows with none go to the fallback. The same matrix gives the overlaps:
how many customers each pair of rules both match (the diagonal is how many each rule matches at all),
which is what tells an analyst that a later segment is starved by an earlier one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SegmentConfigError
from .cluster import ClusterResult, fit_clusters
from .config import SegmentsConfig
from .values import Context, looks_decimal, numeric

EXAMPLES = 3
BANDS = ("red", "yellow", "green")


def rule_frame(frame: pd.DataFrame, scores: pd.DataFrame, clusters: np.ndarray | None,
               names: frozenset[str]) -> pd.DataFrame:
    """The columns rules read: the snapshot's, plus score, band and cluster; Decimal objects as floats."""
    band = scores["band"]
    extra: dict[str, Any] = {
        "score": scores["score"].to_numpy(),
        "band": band.array if isinstance(band.dtype, pd.CategoricalDtype) else band.to_numpy(),
        "cluster": pd.arrays.IntegerArray(clusters.astype(np.int32), np.zeros(len(frame), dtype=bool))
        if clusters is not None else pd.arrays.IntegerArray(np.zeros(len(frame), dtype=np.int32),
                                                            np.ones(len(frame), dtype=bool)),
    }
    for name in names:
        if name in frame.columns and name not in extra and looks_decimal(frame[name]):
            extra[name] = numeric(frame[name], Context(frame, None), name).to_numpy()  # type: ignore[arg-type]
    return frame.assign(**extra)


def assign(frame: pd.DataFrame, config: SegmentsConfig, scores: pd.DataFrame,
           clusters: ClusterResult | None = None) -> tuple[pd.DataFrame, dict]:
    """(assignments, summary): one row per customer and a JSON-able account of the segmentation.

    ``frame`` holds the customers with their features, ``scores`` the DataFrame(score, band, reasons)
    of score_customers on the same rows. Clustering runs first when the file configures it, unless the
    caller brings its result (``fit_clusters(frame, config.clustering)``, run beside the scoring, say).

    Example: assignments, summary = assign(frame, load_segments(path, templates), score_customers(frame, card))
    """
    if len(scores) != len(frame):
        raise ValueError("scores must have one row per customer of the frame")
    if "customer_id" not in frame.columns:
        raise SegmentConfigError("the customers have no customer_id column")
    n = len(frame)
    if clusters is None and config.clustering:
        clusters = fit_clusters(frame, config.clustering)
    data = rule_frame(frame, scores, clusters.labels if clusters else None, config.rule_columns())
    config.check_columns(frozenset(map(str, data.columns)))

    rules = config.rules[:-1]  # the fallback is last and has no rule
    matches = np.zeros((n, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        matches[:, j] = rule.mask(data)
    any_match = matches.any(axis=1)
    chosen = np.where(any_match, matches.argmax(axis=1), len(rules)).astype(np.int32)

    names = config.names
    seg_treatments = [s.treatment for s in config.segments]
    assignments = pd.DataFrame({
        "customer_id": frame["customer_id"].array,
        "score": scores["score"].to_numpy(dtype=np.float64),
        "band": pd.Categorical(scores["band"], categories=list(BANDS)),
        "reasons": scores["reasons"].to_numpy() if not isinstance(scores["reasons"].dtype, pd.CategoricalDtype)
        else scores["reasons"].array,
        "cluster": data["cluster"].array,
        "segment": pd.Categorical.from_codes(chosen, categories=names),
        "treatment": pd.Categorical.from_codes(
            np.asarray([sorted(set(seg_treatments)).index(t) for t in seg_treatments], dtype=np.int32)[chosen]
            if n else np.zeros(0, dtype=np.int32), categories=sorted(set(seg_treatments))),
    })
    summary = _summary(frame, config, assignments, chosen, matches)
    summary["clustering"] = clusters.summary() if clusters else None
    return assignments, summary


def _summary(frame: pd.DataFrame, config: SegmentsConfig, assignments: pd.DataFrame, chosen: np.ndarray,
             matches: np.ndarray) -> dict:
    n = len(frame)
    s_count = len(config.segments)
    counts = np.bincount(chosen, minlength=s_count)
    band_codes = assignments["band"].cat.codes.to_numpy()
    by_band = np.bincount(chosen.astype(np.int64) * 3 + band_codes, minlength=s_count * 3).reshape(s_count, 3)
    balances = balance_by(frame, chosen, s_count)
    segments = []
    for i, seg in enumerate(config.segments):
        rows = np.flatnonzero(chosen == i)[:EXAMPLES] if counts[i] else []
        segments.append({
            "name": seg.name, "treatment": seg.treatment, "channels": [c.value for c in seg.channels],
            "rule": seg.rule, "fallback": seg.fallback, "description": seg.description,
            "offers": seg.offers.model_dump(mode="json", exclude_none=True),
            "count": int(counts[i]), "share": round(float(counts[i]) / n, 4) if n else 0.0,
            "matched": int(matches[:, i].sum()) if i < matches.shape[1] else int(counts[i]),
            "bands": {b: int(by_band[i, j]) for j, b in enumerate(BANDS)},
            "balance": balances.get(i, {}),
            "examples": [str(x) for x in frame["customer_id"].iloc[rows]],
        })
    k = matches.shape[1]
    matrix = [[int(np.count_nonzero(matches[:, a] & matches[:, b])) for b in range(k)] for a in range(k)]
    return {
        "customers": n,
        "segments_file": str(config.path),
        "segments_sha256": config.sha256,
        "segments": segments,
        "bands": {b: int(by_band[:, j].sum()) for j, b in enumerate(BANDS)},
        "overlaps": {"segments": config.names[:-1], "matrix": matrix,
                     "customers_matching_several": int((matches.sum(axis=1) > 1).sum())},
    }


def money_array(series: pd.Series) -> pa.Array:
    """A money column as an Arrow decimal128(18, 2) array, exact for Decimal input."""
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype):
        return pc.cast(series.array.__arrow_array__(), pa.decimal128(38, 2)).combine_chunks()
    if looks_decimal(series) or series.dtype == object:
        return pa.array(series.to_numpy(), type=pa.decimal128(38, 2), from_pandas=True)
    floats = np.round(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan), 2)
    return pc.cast(pa.array(floats, from_pandas=True), pa.decimal128(38, 2), safe=False)


def balance_by(frame: pd.DataFrame, chosen: np.ndarray, s_count: int) -> dict[int, dict[str, str]]:
    """Exact balance sums per segment and currency, as strings ("1234.50"), never summed across currencies."""
    if "balance" not in frame.columns or not len(frame):
        return {}
    currency = frame["currency"].astype("str").to_numpy() if "currency" in frame.columns \
        else np.full(len(frame), "", dtype=object)
    table = pa.table({"segment": pa.array(chosen), "currency": pa.array(currency, pa.string(), from_pandas=True),
                      "balance": money_array(frame["balance"])})
    sums = table.group_by(["segment", "currency"]).aggregate([("balance", "sum")]).to_pylist()
    out: dict[int, dict[str, str]] = {}
    for row in sorted(sums, key=lambda r: (r["segment"], r["currency"] or "")):
        total = row["balance_sum"]
        out.setdefault(row["segment"], {})[row["currency"] or "?"] = f"{total:.2f}" if total is not None else "0.00"
    return out
