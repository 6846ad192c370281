"""`comms segment` through the real command: stored runs, the explanation, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from comms.segment.synthetic import save_synthetic_snapshot, synthetic_table
from comms.store import Store
from comms.store.snapshots import get_segment_run, load_assignments

ROOT = Path(__file__).resolve().parent.parent


def save_portfolio(store: Store):
    """A snapshot of 1,500 synthetic customers, one of them with a name that looks like markup."""
    table = synthetic_table(1500, seed=11)
    names = table.column("name").to_pylist()
    names[0] = "[bold red]O'Brien & Sons[/] <script>"
    table = table.set_column(table.schema.get_field_index("name"), "name", pa.array(names))
    return save_synthetic_snapshot(store, table)


@pytest.fixture
def portfolio(settings):
    """The portfolio in the embedded default store (SQLite under the test home)."""
    store = Store.open(settings)
    yield save_portfolio(store)
    store.dispose()


def test_segment_stores_one_assignment_per_customer(cli, store):
    portfolio = save_portfolio(store)  # on SQLite and on PostgreSQL
    proc = cli("segment", env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    for name in ("hardship", "final", "firm", "early*", "hardship_plan", "early_reminder", "email, letter, page"):
        assert name in proc.stdout
    run = get_segment_run(store, snapshot_id=portfolio.id)
    rows = load_assignments(run)
    assert len(rows) == 1500 and rows["customer_id"].is_unique
    assert set(rows.columns) >= {"customer_id", "score", "band", "reasons", "cluster", "segment", "treatment"}
    assert rows["segment"].notna().all() and rows["cluster"].notna().all()
    assert run.score_model_id is None and run.summary["scorer"] == "scorecard"
    assert sum(s["count"] for s in run.summary["segments"]) == 1500
    assert run.segments_sha256 == run.summary["segments_sha256"]


def test_explain_shows_rules_examples_overlaps_and_cluster_profiles(cli, settings, portfolio):
    proc = cli("segment", "--explain", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rule: days_past_due > 30 or band == 'red'" in out
    assert "Rule overlaps" in out
    assert "Cluster profiles in original units" in out and "clusters: k = " in out and "silhouette" in out
    assert "C0000000" in out and "[bold red]O'Brien & Sons[/] <script>" in out  # shown as text, not markup
    assert "days past due" in out and "offers: pay in full" in out


def test_unknown_treatment_is_one_line_and_exit_2(cli, tmp_path, portfolio):
    text = (ROOT / "segments" / "default.yaml").read_text().replace("treatment: firm_notice", "treatment: stern")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = cli("segment", "--segments", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "segment 'firm': unknown treatment 'stern'" in lines[0]
    assert "early_reminder, final_notice, firm_notice, hardship_plan" in lines[0]


@pytest.mark.parametrize("old, new, expected", [
    ("rule: days_past_due > 30 or band == 'red'", "rule: days_past_due >> > 30",
     "segment 'firm': rule 'days_past_due >> > 30': syntax error at column"),
    ("    fallback: true\n", "    rule: 'True'\n", "no fallback segment"),
    ("rule: days_past_due > 30 or band == 'red'", "rule: days_overdue > 30",
     "segment 'firm': rule 'days_overdue > 30' reads unknown column 'days_overdue'"),
])
def test_bad_segments_file_is_one_line_and_exit_2(cli, tmp_path, portfolio, old, new, expected):
    text = (ROOT / "segments" / "default.yaml").read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new))
    proc = cli("segment", "--segments", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert expected in proc.stderr


def test_segment_without_a_snapshot_says_what_to_do(cli, settings):
    Store.open(settings).dispose()
    proc = cli("segment")
    assert proc.returncode == 2
    assert "run `comms ingest FILE` first" in proc.stderr
