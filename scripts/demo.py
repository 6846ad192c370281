"""The README's demo: a sample portfolio in, every channel out, on the embedded default.

Runs the real `comms` commands one after the other, as a user would type them, and stops at the first that
fails. Everything lands under COMMS_HOME (./var unless set). Each run makes new campaigns (named by the time),
so running it again shows a second, independent campaign on a fresh snapshot.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMS = str(Path(sys.executable).with_name("comms"))
HOME = Path(os.environ.get("COMMS_HOME", ROOT / "var")).resolve()
ROWS = os.environ.get("COMMS_DEMO_ROWS", "2000")
VIDEOS = os.environ.get("COMMS_DEMO_VIDEOS", "6")


def step(title: str, *args: str, capture: bool = False) -> str:
    print(f"\n\033[1m== {title}\033[0m\n$ comms {shlex.join(args)}", flush=True)
    result = subprocess.run([COMMS, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if capture and result.stdout:
        print(result.stdout, end="")
    if result.returncode != 0:
        sys.exit(result.returncode)
    return result.stdout or ""


def video_segment() -> tuple[str, list[str]]:
    """The smallest segment whose treatment has video, and the other segments."""
    sys.path.insert(0, str(ROOT))
    from comms.config import Settings
    from comms.store import Store
    from comms.store.snapshots import get_segment_run

    settings = Settings.load(HOME)
    run = get_segment_run(Store.open(settings))
    from comms.segment.config import load_segments
    config = load_segments(settings.segments_file, settings.templates_dir)
    counts = {s["name"]: s["count"] for s in run.summary["segments"]}
    with_video = [s.name for s in config.segments if "video" in [c.value for c in s.channels] and counts.get(s.name)]
    chosen = min(with_video, key=lambda name: counts[name])
    return chosen, [s.name for s in config.segments if s.name != chosen and counts.get(s.name)]


def main() -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    portfolio = HOME / "demo" / "portfolio.csv"
    step("1. a synthetic portfolio: one row per open invoice, six locales, some bad rows",
         "sample-data", "--rows", ROWS, "--seed", "7", "--out", str(portfolio))
    step("2. import it: every row validated, rejects written out with their reasons", "ingest", str(portfolio))
    step("3. score every customer: transparent 0-100 risk score, bands and reasons", "score")
    step("4. segment: rules, clusters and treatments, explained", "segment", "--explain")
    video_seg, others = video_segment()
    main_campaign, video_campaign = f"demo-{stamp}", f"demo-{stamp}-video"
    step(f"5. campaign {main_campaign}: personal pages, PDF letters and e-mails for every other segment",
         "campaign", "launch", main_campaign, "--channels", "page,letter,email", "--segments", ",".join(others))
    step(f"6. campaign {video_campaign}: the same plus a personal video, for {VIDEOS} customers of segment "
         f"{video_seg}", "campaign", "launch", video_campaign, "--channels", "page,video,letter,email",
         "--segments", video_seg, "--limit", VIDEOS)
    report = HOME / "demo" / f"report-{main_campaign}.html"
    step("7. the report", "campaign", "report", main_campaign, "--html", str(report))
    step("8. one personal link per segment (open them while `comms serve` runs)", "campaign", "links",
         main_campaign, "--base-url", "http://127.0.0.1:8000")
    step(f"   ... and for segment {video_seg}, whose page also plays the customer's video", "campaign", "links",
         video_campaign, "--base-url", "http://127.0.0.1:8000")
    artifacts = HOME / "artifacts"
    print(f"""
Done. Where to look:
  e-mails (.eml, open in any mail client)  {HOME / 'outbox' / main_campaign}
  letters, one PDF each                    {artifacts / main_campaign / 'letters'}
  print batch for the print house          {artifacts / main_campaign / 'print'}
  videos (mp4, captions, poster)           {artifacts / video_campaign / 'video'}
  campaign report                          {report}
  rejected rows of the import              {HOME / 'rejects'}
Serve the personal pages:  COMMS_HOME={HOME} .venv/bin/comms serve   then open a link printed above
""")


if __name__ == "__main__":
    main()
