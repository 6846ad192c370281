"""The README's demo: a sample portfolio in, scored and explained segments out, on the embedded default.

Runs the real `comms` commands one after the other, as a user would type them, and stops at the first
that fails. Everything lands under COMMS_HOME (./var unless set).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMS = str(Path(sys.executable).with_name("comms"))
HOME = Path(os.environ.get("COMMS_HOME", ROOT / "var")).resolve()
ROWS = os.environ.get("COMMS_DEMO_ROWS", "5000")


def step(title: str, *args: str) -> None:
    print(f"\n\033[1m== {title}\033[0m\n$ comms {shlex.join(args)}", flush=True)
    result = subprocess.run([COMMS, *args], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    portfolio = HOME / "demo" / "portfolio.csv"
    step("1. a synthetic portfolio: one row per open invoice, six locales, some bad rows",
         "sample-data", "--rows", ROWS, "--seed", "7", "--out", str(portfolio))
    step("2. import it: every row validated, rejects written out with their reasons",
         "ingest", str(portfolio))
    step("3. score every customer: transparent 0-100 risk score, bands and reasons", "score")
    step("4. segment: rules, clusters and treatments, explained", "segment", "--explain")
    print(f"\nDone. Everything is under {HOME} (database comms.db, snapshots/, rejects/).")


if __name__ == "__main__":
    main()
