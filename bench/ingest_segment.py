"""Benchmark: ingest + validate + score + segment a million customers, ours next to the naive way.

Ours is the real command line on a fresh home (SQLite, the embedded default): ``comms ingest FILE`` then
``comms segment``, each in its own process, measured for wall time, CPU time and peak memory (wait4 rusage).
The naive way is bench/naive_ingest.py: Python's csv module and a per-row validation with the standard
library applying the same rules, on the first rows of the same file (it would take minutes on all of them);
rows per second are compared, and so are the rows each rejected among those first rows (they must agree
but for a customer cut off at the limit: the same rules, the same work). The naive way does not score,
segment or store anything, so the ratio still flatters it.

Run: make bench   or   .venv/bin/python bench/ingest_segment.py [--customers 1000000] [--naive-rows 300000]
Goals (issue 3): >= 250,000 invoice rows/s end to end, >= 20x the naive way, peak memory < 4 GiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
COMMS = str(Path(sys.executable).with_name("comms"))
AS_OF = "2026-06-30"


def run_measured(args: list[str], env: dict) -> tuple[float, float, float, str]:
    """(wall s, cpu s, peak RSS MiB, stdout) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def rejected_within(folder: Path, last_line: int) -> int:
    """Rows of our rejects file(s) whose original line is at most ``last_line`` (line 1 is the header)."""
    import csv

    count = 0
    for path in folder.glob("*.rejects.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            count += sum(1 for row in csv.DictReader(fh) if int(row["line"].lstrip("'")) <= last_line)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=300_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    opts = parser.parse_args()

    cache = ROOT / "var" / "bench"
    portfolio = cache / f"portfolio-{opts.customers}.csv"
    if not portfolio.exists():
        print(f"generating {opts.customers:,} customers into {portfolio} (once) ...", flush=True)
        subprocess.run([COMMS, "sample-data", "--rows", str(opts.customers), "--out", str(portfolio),
                        "--seed", "7", "--as-of", AS_OF], check=True)
    with portfolio.open("rb") as fh:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b"")) - 1

    home = Path(tempfile.mkdtemp(prefix="comms-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")} | {"COMMS_HOME": str(home)}
    print(f"\nportfolio: {rows:,} invoice rows of {opts.customers:,} customers ({portfolio.stat().st_size/1e6:.0f} MB)")
    ing = run_measured([COMMS, "ingest", str(portfolio), "--as-of", AS_OF], env)
    seg = run_measured([COMMS, "segment"], env)
    ours_wall = ing[0] + seg[0]
    print(f"ours  ingest : {ing[0]:6.1f} s wall {ing[1]:6.1f} s CPU  peak {ing[2]:6.0f} MiB")
    print(f"ours  segment: {seg[0]:6.1f} s wall {seg[1]:6.1f} s CPU  peak {seg[2]:6.0f} MiB")
    ours_rate = rows / ours_wall

    from naive_ingest import naive_ingest
    start, cpu0 = time.perf_counter(), time.process_time()
    n_in, n_ok, n_cust = naive_ingest(str(portfolio), date.fromisoformat(AS_OF), limit=opts.naive_rows)
    naive_wall, naive_cpu = time.perf_counter() - start, time.process_time() - cpu0
    naive_rate = n_in / naive_wall
    print(f"naive ingest : {naive_wall:6.1f} s wall {naive_cpu:6.1f} s CPU  for the first {n_in:,} rows "
          f"(validation and features only, no scoring, no store)")
    ours_rejected = rejected_within(home / "rejects", last_line=n_in + 1)
    print(f"rows rejected among the first {n_in:,}: naive {n_in - n_ok:,}, ours {ours_rejected:,} "
          "(the same rules: these agree but for a customer cut off at the limit)")

    peak = max(ing[2], seg[2])
    print("\n                       rows/s   goal")
    print(f"ours end to end  {ours_rate:12,.0f}   >= 250,000  {'ok' if ours_rate >= 250_000 else 'MISSED'}")
    print(f"naive            {naive_rate:12,.0f}")
    print(f"ratio            {ours_rate / naive_rate:12.1f}x  >= 20x      {'ok' if ours_rate / naive_rate >= 20 else 'MISSED'}")
    print(f"peak memory      {peak:9,.0f} MiB  < 4,096 MiB {'ok' if peak < 4096 else 'MISSED'}")
    if not opts.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
