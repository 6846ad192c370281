"""The segments file (segments/*.yaml) and the treatments it names (templates/<treatment>/treatment.yaml).

A segments file holds an optional clustering step and an ordered list of segments: the first rule that
matches a customer wins, and the last segment is the one fallback that catches everyone else. Each segment
names its treatment (a folder under the templates directory), its channels and its payment offers.
Every mistake is one line naming the file, the segment and the key.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import SegmentConfigError
from ..models import Channel
from .expr import Expression, compile_expression
from .scorecard import read_yaml, validation_message

# Columns every rule may read besides the snapshot's own: what scoring and clustering add.
DERIVED_COLUMNS = frozenset({"score", "band", "cluster"})
TONES = ("friendly", "firm", "final", "supportive")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettlementDiscount(_Strict):
    percent: Decimal = Field(gt=0, lt=100)
    deadline_days: int = Field(ge=1, le=365)


class Instalments(_Strict):
    months: list[int] = Field(min_length=1)
    minimum: Decimal = Field(ge=0, decimal_places=2)

    @field_validator("months")
    @classmethod
    def _plans(cls, months: list[int]) -> list[int]:
        if any(m < 2 or m > 60 for m in months) or len(set(months)) != len(months):
            raise ValueError("instalment plans are distinct numbers of months between 2 and 60")
        return sorted(months)


class PromiseToPay(_Strict):
    max_days: int = Field(ge=1, le=90)


class Offers(_Strict):
    """The payment choices a customer of the segment gets on the page, in the e-mail and on the letter."""

    pay_in_full: bool = True
    settlement_discount: SettlementDiscount | None = None
    instalments: Instalments | None = None
    promise_to_pay: PromiseToPay | None = None

    @model_validator(mode="after")
    def _something(self):
        if not (self.pay_in_full or self.settlement_discount or self.instalments or self.promise_to_pay):
            raise ValueError("a segment must offer at least one way to pay")
        return self


class Segment(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    rule: str | None = None
    fallback: bool = False
    treatment: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    channels: list[Channel] = Field(min_length=1)
    offers: Offers = Offers()
    description: str = ""

    @model_validator(mode="after")
    def _rule_or_fallback(self):
        if self.fallback and self.rule:
            raise ValueError("the fallback segment takes everyone left: leave out its rule")
        if not self.fallback and not (self.rule or "").strip():
            raise ValueError("a segment needs a rule (or fallback: true for the last one)")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("a channel is listed twice")
        return self


class Clustering(_Strict):
    features: list[str] = Field(min_length=1)
    k: Literal["auto"] | int = "auto"
    k_range: tuple[int, int] = (2, 8)
    sample: int = Field(default=20_000, ge=100, le=1_000_000)
    silhouette_sample: int = Field(default=3_000, ge=100, le=20_000)
    seed: int = 7

    @model_validator(mode="after")
    def _k(self):
        lo, hi = self.k_range
        if not 2 <= lo <= hi <= 30:
            raise ValueError("k_range must be [low, high] with 2 <= low <= high <= 30")
        if isinstance(self.k, int) and not 1 <= self.k <= 100:
            raise ValueError("k must be 'auto' or a whole number from 1 to 100")
        return self


class SegmentsFile(_Strict):
    clustering: Clustering | None = None
    segments: list[Segment] = Field(min_length=1)


class Treatment(BaseModel):
    """templates/<name>/treatment.yaml: how a treatment presents itself (titles per locale, tone)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = ""
    title: dict[str, str]
    tone: Literal[TONES]  # type: ignore[valid-type]
    description: str

    @field_validator("title")
    @classmethod
    def _english(cls, title: dict[str, str]) -> dict[str, str]:
        if "en" not in title:
            raise ValueError("needs at least an 'en' title")
        return title

    def title_for(self, locale: str) -> str:
        """The title in the customer's language: exact locale, then its language, then English."""
        return self.title.get(locale) or self.title.get(locale.split("-")[0]) or self.title["en"]


class SegmentsConfig:
    """A validated segments file: segments in order (fallback last), compiled rules, treatments."""

    def __init__(self, spec: SegmentsFile, path: Path, sha256: str, rules: list[Expression | None],
                 treatments: dict[str, Treatment]):
        self.spec = spec
        self.path = path
        self.sha256 = sha256
        self.segments = spec.segments
        self.clustering = spec.clustering
        self.rules = rules
        self.treatments = treatments

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def rule_columns(self) -> frozenset[str]:
        return frozenset().union(*(r.names for r in self.rules if r is not None))

    def check_columns(self, available: set[str] | frozenset[str]) -> None:
        """Every rule names only columns that exist (the snapshot's plus score, band and cluster)."""
        for seg, rule in zip(self.segments, self.rules):
            unknown = sorted(rule.names - set(available)) if rule else []
            if unknown:
                known = ", ".join(sorted(available))
                raise SegmentConfigError(f"{self.path}: segment {seg.name!r}: rule {rule.text!r} reads unknown "
                                         f"column {unknown[0]!r} (available: {known})")


def load_treatment(templates_dir: Path, name: str) -> Treatment:
    """Read templates/<name>/treatment.yaml; SegmentConfigError names the file and the key."""
    path = Path(templates_dir) / name / "treatment.yaml"
    data = read_yaml(path)
    try:
        return Treatment.model_validate({**(data or {}), "name": name})
    except ValidationError as exc:
        raise SegmentConfigError(validation_message(path, exc)) from None


def treatment_names(templates_dir: Path) -> list[str]:
    root = Path(templates_dir)
    return sorted(p.name for p in root.iterdir() if (p / "treatment.yaml").is_file()) if root.is_dir() else []


def load_segments(path: Path | str, templates_dir: Path | str,
                  columns: set[str] | frozenset[str] | None = None) -> SegmentsConfig:
    """Read and validate a segments file against the treatments that exist.

    ``columns``: when given, rules may read only these (plus score, band, cluster); without it, only
    the canonical fields and features, and the snapshot's extras are checked when segmenting.

    Example: load_segments("segments/default.yaml", "templates").names[-1] == "early_reminder"
    """
    path = Path(path)
    data = read_yaml(path)
    try:
        spec = SegmentsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise SegmentConfigError(_name_segment(validation_message(path, exc), data)) from None
    names = [s.name for s in spec.segments]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SegmentConfigError(f"{path}: segment name {dupes[0]!r} is used twice")
    fallbacks = [s.name for s in spec.segments if s.fallback]
    if not fallbacks:
        raise SegmentConfigError(f"{path}: no fallback segment: add a last segment with `fallback: true` "
                                 "so every customer lands somewhere")
    if len(fallbacks) > 1:
        raise SegmentConfigError(f"{path}: more than one fallback segment ({', '.join(fallbacks)}): keep one")
    if not spec.segments[-1].fallback:
        raise SegmentConfigError(f"{path}: the fallback segment {fallbacks[0]!r} must be the last one "
                                 "(segments are tried in order)")
    treatments: dict[str, Treatment] = {}
    existing = treatment_names(Path(templates_dir))
    for seg in spec.segments:
        if seg.treatment not in treatments:
            if seg.treatment not in existing:
                raise SegmentConfigError(
                    f"{path}: segment {seg.name!r}: unknown treatment {seg.treatment!r} "
                    f"(folders in {templates_dir}: {', '.join(existing) or 'none'})")
            treatments[seg.treatment] = load_treatment(Path(templates_dir), seg.treatment)
    rules = [None if seg.fallback else compile_expression(seg.rule or "", where=f"{path}: segment {seg.name!r}")
             for seg in spec.segments]
    config = SegmentsConfig(spec, path, hashlib.sha256(path.read_bytes()).hexdigest(), rules, treatments)
    if "cluster" in config.rule_columns() and spec.clustering is None:
        raise SegmentConfigError(f"{path}: a rule reads 'cluster' but the file has no clustering section")
    if columns is not None:  # otherwise the snapshot's extras are not known yet: checked when segmenting
        config.check_columns(frozenset(columns) | DERIVED_COLUMNS)
    return config


def _name_segment(message: str, data: object) -> str:
    """Turn 'segments[2].offers...' into "segments[2] 'firm'.offers..." so the user finds it."""
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        return message
    for i, seg in enumerate(data["segments"]):
        marker = f"segments[{i}]"
        if marker + "." in message or message.endswith(marker) or marker + ":" in message:
            if isinstance(seg, dict) and seg.get("name"):
                return message.replace(marker, f"{marker} ({seg['name']})", 1)
    return message
