"""Risk scoring, segment rules, clustering and assignment of every customer to exactly one segment.

Modules: expr and values (the safe rule language), scorecard (transparent points score), model (trained
scores), score (either scorer), config (segments file and treatments), cluster (k-means, k by silhouette),
assignment (rules -> one segment each), run (the snapshot-level entry points the CLI and the campaign layer
call), synthetic (feature tables for tests and benchmarks).

Public functions are loaded lazily so that ``comms.segment.expr`` stays cheap to import.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "compile_expression": "expr", "Expression": "expr",
    "load_scorecard": "scorecard", "Scorecard": "scorecard",
    "TrainedModel": "model", "fit_model": "model",
    "score_customers": "score", "score_report": "score",
    "load_segments": "config", "SegmentsConfig": "config", "load_treatment": "config", "Treatment": "config",
    "fit_clusters": "cluster",
    "assign": "assignment",
    "segment_snapshot": "run", "train_model": "run", "score_snapshot": "run", "use_model": "run",
    "use_scorecard": "run", "load_features": "run", "current_scorer": "run",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'comms.segment' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = sorted(_EXPORTS)
