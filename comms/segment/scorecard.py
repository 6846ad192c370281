"""The transparent points scorecard: 100 minus deductions per feature band, with the reasons behind it.

A scorecard (segments/scorecard.yaml) lists factors. Each factor's value is an expression of the safe rule
language (usually just a column name); its bands are checked in order, the first ``below`` the value is
above wins, the last band has no ``below`` and takes the rest; ``missing`` covers empty values. The score
is ``start + sum(points)`` clamped to 0..100 and rounded to one decimal, so a collector can recompute any
score by hand from the reasons.

Everything is vectorized: one ``np.searchsorted`` per factor, one ``argsort`` over the small
(customers x factors) points matrix, and reason texts built once per distinct combination.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import SegmentConfigError
from .expr import Expression, compile_expression

TOP_REASONS = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    below: float | None = None
    points: float
    reason: str = ""

    @model_validator(mode="after")
    def _reason_for_deduction(self):
        if self.points < 0 and not self.reason.strip():
            raise ValueError("a band that deducts points needs a reason a collector can read")
        return self


class Missing(_Strict):
    points: float = 0
    reason: str = ""


class Factor(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    value: str
    bands: list[Band] = Field(min_length=1)
    missing: Missing = Missing()

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: list[Band]) -> list[Band]:
        edges = [b.below for b in bands[:-1]]
        if any(e is None for e in edges):
            raise ValueError("every band but the last needs 'below'")
        if bands[-1].below is not None:
            raise ValueError("the last band takes the rest: leave out its 'below'")
        if any(a >= b for a, b in zip(edges, edges[1:])):
            raise ValueError("'below' values must increase from band to band")
        return bands


class ModelSettings(_Strict):
    """Which columns a trained model may use; ``auto`` takes every numeric column but the excluded ones."""

    features: list[str] | str = "auto"
    exclude: list[str] = []
    log_scale: list[str] = []


class ScorecardFile(_Strict):
    start: float = 100
    factors: list[Factor] = Field(min_length=1)
    model: ModelSettings = ModelSettings()


def validation_message(path: Path | str, exc: ValidationError) -> str:
    """The first pydantic error as one line naming the file and the key, e.g. factors[2].bands[0].points."""
    err = exc.errors()[0]
    key = ""
    for part in err["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: {key or 'top level'}: {msg}"


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise SegmentConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SegmentConfigError(f"{path}: not valid YAML{at}: {problem}") from None


class Scorecard:
    """A validated scorecard with its factor expressions compiled."""

    def __init__(self, spec: ScorecardFile, path: Path | str = "scorecard"):
        self.spec = spec
        self.path = Path(path)
        self.factors = spec.factors
        self.expressions: list[Expression] = [
            compile_expression(f.value, where=f"{path}: factors[{i}].value") for i, f in enumerate(spec.factors)]
        # One global code per (factor, band) and per factor's "missing"; code 0 means "no reason".
        texts, cost, factor_of = [""], [0], [-1]
        self._codes: list[np.ndarray] = []
        self._cents: list[np.ndarray] = []
        for j, f in enumerate(spec.factors):
            bands = [*f.bands, f.missing]
            self._codes.append(np.arange(len(texts), len(texts) + len(bands), dtype=np.int32))
            self._cents.append(np.asarray([round(b.points * 100) for b in bands], dtype=np.int64))
            for band in bands:
                texts.append(reason_text(band.reason, band.points))
                cost.append(max(-round(band.points * 100), 0) if band.reason else 0)
                factor_of.append(j)
        self.reasons = ReasonCodes(texts, np.asarray(cost), np.asarray(factor_of))

    @property
    def names(self) -> frozenset[str]:
        return frozenset().union(*(e.names for e in self.expressions))

    def points(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Total points (in hundredths) per customer, and the reason code of each factor's band.

        Codes come as a (factors x customers) array: one contiguous row per factor.
        """
        n, k = len(frame), len(self.factors)
        total = np.zeros(n, dtype=np.int64)
        codes = np.zeros((k, n), dtype=np.int32)
        for j, (factor, expr) in enumerate(zip(self.factors, self.expressions)):
            values = expr.numbers(frame)
            edges = np.asarray([b.below for b in factor.bands[:-1]], dtype=np.float64)
            index = np.searchsorted(edges, values, side="right")  # first band whose 'below' is above
            index[np.isnan(values)] = len(factor.bands)
            total += self._cents[j][index]
            codes[j] = self._codes[j][index]
        return total, codes

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """DataFrame(score, band, reasons) on the frame's index."""
        total, codes = self.points(frame)
        raw = self.spec.start + total / 100
        scores = np.round(np.clip(raw, 0.0, 100.0), 1)
        reasons = top_reasons(codes, self.reasons)
        return pd.DataFrame({"score": scores, "band": bands_for(scores), "reasons": reasons}, index=frame.index)


def load_scorecard(path: Path | str) -> Scorecard:
    """Read and validate a scorecard file; SegmentConfigError/RuleError name the file and the key.

    Example: load_scorecard("segments/scorecard.yaml").score(frame)
    """
    path = Path(path)
    data = read_yaml(path)
    try:
        spec = ScorecardFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise SegmentConfigError(validation_message(path, exc)) from None
    return Scorecard(spec, path)


def reason_text(reason: str, points: float) -> str:
    """'61-90 days past due (-25)': the words a collector reads and the points they cost."""
    shown = int(points) if float(points).is_integer() else round(points, 1)
    return f"{reason} ({shown:+})" if reason else ""


def bands_for(scores: np.ndarray) -> pd.Categorical:
    """Vectorized comms.models.band_for: green >= 80, yellow 60-79.9, red < 60 (on the rounded score)."""
    index = (scores >= 60).astype(np.int8) + (scores >= 80).astype(np.int8)
    return pd.Categorical.from_codes(index, categories=["red", "yellow", "green"])


class ReasonCodes:
    """Every reason a scorer can give: its text, the points it costs (hundredths) and its factor.

    Reasons are ranked once, globally, by cost (largest first), then factor order, then code. Within one
    customer every factor contributes one code, so ranks never tie and top-k is k passes of a minimum.
    """

    def __init__(self, texts: list[str], cost: np.ndarray, factor: np.ndarray):
        self.texts = texts
        order = np.lexsort((np.arange(len(texts)), factor, -cost))
        order = order[cost[order] > 0]  # only deductions are reasons
        self.none = len(order)  # rank given to codes that are no reason
        self.rank_of_code = np.full(len(texts), self.none, dtype=np.int32)
        self.rank_of_code[order] = np.arange(len(order), dtype=np.int32)
        self.code_of_rank = np.append(order, 0)


def top_reasons(codes: np.ndarray, reasons: ReasonCodes, top: int = TOP_REASONS) -> pd.Categorical:
    """The ``top`` biggest deductions per customer, joined with '; ', as a categorical.

    ``codes`` is (factors x customers). Ties go to the factor listed first. Customers are keyed by the
    ranks of their top reasons; each distinct key's text is built once, so a million customers cost a few
    numpy passes, not a million string joins.
    """
    k, n = codes.shape
    top = min(top, k)
    ranks = reasons.rank_of_code[codes]
    base = reasons.none + 1
    key = np.zeros(n, dtype=np.int64)
    floor = np.full(n, -1, dtype=np.int32)
    for _ in range(top):
        best = np.where(ranks > floor, ranks, reasons.none).min(axis=0)
        key = key * base + best
        floor = best
    if base ** top <= 4_000_000:  # dense lookup: O(n), no sort
        present = np.zeros(base ** top, dtype=bool)
        present[key] = True
        uniques = np.flatnonzero(present)
        inverse = (np.cumsum(present) - 1)[key]
    else:
        uniques, inverse = np.unique(key, return_inverse=True)
    labels = []
    for value in uniques.tolist():
        parts = []
        for _ in range(top):
            value, rank = divmod(value, base)
            parts.append(rank)
        labels.append("; ".join(reasons.texts[reasons.code_of_rank[r]] for r in reversed(parts)
                                if r != reasons.none))
    distinct = list(dict.fromkeys(labels))
    position = {label: i for i, label in enumerate(distinct)}
    remap = np.asarray([position[label] for label in labels], dtype=np.int64)
    return pd.Categorical.from_codes(remap[inverse.reshape(-1)], categories=pd.Index(distinct, dtype="str"))
