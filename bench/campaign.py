"""Benchmark: an end-to-end campaign, and what the orchestration (ledger and broker) costs on top of rendering.

Portfolio: ``comms sample-data`` (seed 7), ``comms ingest``, ``comms segment`` in temporary homes, the real
commands. Two campaigns per run, as an operator would launch them: e-mail, page and letter for every customer
whose segment lists them (``--channels page,letter,email``), and a video for about 2% of the customers (the
first ``--customers/50`` of the smallest segment with video: ``--channels video --segments S --limit L``).
E-mail goes to the outbox backend (the embedded default, .eml files): delivery is then a file write, so what
is measured is orchestration against rendering, not an HTTP server competing for the same two cores;
delivery throughput has its own bench (bench/email_deliver.py). The e-mail window is opened to 24 hours
(COMMS_EMAIL_WINDOW) so that quiet hours, which depend on when the bench runs, delay nothing.

Side by side, in one run, on the same jobs:

* plain loop: the renderers called directly, no ledger, no broker, one process per core (as many as the
  embedded pool uses), channel after channel: ContextBuilder for every job (the page channel is only that),
  VideoRenderer, LetterRenderer.render_many (PDF files) and the print batch, EmailRenderer and the outbox.
  The customers are loaded once per process. This is the render time.
* embedded: plan + run both campaigns with comms.campaign (SQLite ledger, the local process pool).
* celery xN: the same on PostgreSQL with N ``celery -A worker worker -c 1`` processes and Redis.

Each variant is one process tree; CPU-seconds are user + system time of every process that did its work:
the tree (reaped children included: pool processes, ffmpeg), for Celery also the workers' trees, the
PostgreSQL backends serving the bench database and the Redis server (counted, and shown apart: it also serves
whatever else runs on the machine). Per channel: jobs per second and CPU-s from the channel's start to the
next channel's start (letters include the print batch, planning is before the first); total wall and CPU.

    overhead = (campaign CPU-s - plain-loop CPU-s) / plain-loop CPU-s     (and the same with wall seconds)

CPU-seconds are the fair measure on a shared machine (other work does not count); wall time is shown too.

The Celery runs use their own PostgreSQL database (created and dropped on ``--pg-admin-url``) and a Redis
database of their own (``--redis-url``, emptied before and after). At 10,000 customers the four runs take
about 460 CPU-s each: some 20 minutes on a quiet 2-core machine, the 1-worker run alone about 8.

Run: .venv/bin/python bench/campaign.py [--customers 10000] [--quick] [--celery 1,2] [--keep]
Goals (issue 8): orchestration overhead < 10% of render time; throughput grows with worker processes (read
here as >= 1.5x jobs/s with 2 Celery worker processes as with 1, on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COMMS = str(Path(sys.executable).with_name("comms"))
CELERY = str(Path(sys.executable).with_name("celery"))
CHANNELS = ("video", "page", "letter", "email")  # the video campaign runs first, then the main one
MAIN_CHANNELS = ["page", "letter", "email"]
AS_OF = "2026-06-30"
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting -------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def proc_cpu(pid: int) -> float:
    """User + system seconds of a process and of its children it has reaped."""
    fields = _stat(pid)
    return 0.0 if fields is None else sum(int(x) for x in fields[11:15]) / TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree: every live process under ``root`` (reaped ones are in their parent)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += proc_cpu(pid)
        todo.extend(children.get(pid, ()))
    return total


class Sampler:
    """Samples the CPU seconds of named sources every ``period`` seconds in a thread, so that the CPU spent up
    to any instant (a channel boundary) can be read back by interpolation."""

    def __init__(self, sources: dict, period: float = 0.5):
        self.sources, self.period = sources, period
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        self.samples.append((time.time(), {name: fn() for name, fn in self.sources.items()}))

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def __enter__(self) -> "Sampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def at(self, when: float, name: str) -> float:
        """CPU seconds of ``name`` at ``when`` since the first sample."""
        first = self.samples[0][1][name]
        prev = self.samples[0]
        for t, values in self.samples:
            if t >= when:
                span = t - prev[0]
                part = 0.0 if span <= 0 else (when - prev[0]) / span
                return prev[1][name] + part * (values[name] - prev[1][name]) - first
            prev = (t, values)
        return self.samples[-1][1][name] - first


class PostgresBackends:
    """CPU seconds of the PostgreSQL backends serving one database, summed over every backend seen (a backend
    that exits keeps the figure of its last sample)."""

    def __init__(self, admin_url: str, database: str):
        from sqlalchemy import create_engine, text
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.query = text("SELECT pid FROM pg_stat_activity WHERE datname = :db")
        self.database = database
        self.seen: dict[int, float] = {}

    def __call__(self) -> float:
        with self.engine.connect() as conn:
            pids = conn.execute(self.query, {"db": self.database}).scalars().all()
        for pid in pids:
            self.seen[pid] = max(self.seen.get(pid, 0.0), proc_cpu(pid))
        return sum(self.seen.values())


def redis_pid(url: str) -> int | None:
    """The local redis-server process listening on the URL's port, if there is one."""
    port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[-1] if ":" in url.split("://", 1)[1] else "6379"
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("redis-server") and f":{port}" in cmd:
                return int(entry.name)
    return None


# -- the portfolio --------------------------------------------------------------------------------------

def comms(*args: str, env: dict) -> str:
    proc = subprocess.run([COMMS, *args], env=env, cwd=ROOT, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"comms {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_home(home: Path, portfolio: Path, env: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    comms("ingest", str(portfolio), "--as-of", AS_OF, env=env)
    comms("segment", env=env)


def video_segment(env: dict) -> str:
    """The smallest segment whose channels include video (the issue: video for one segment)."""
    code = ("from comms.config import Settings; from comms.store import Store; "
            "from comms.store.snapshots import get_segment_run; from comms.segment.config import load_segments; "
            "s = Settings.load(); run = get_segment_run(Store.open(s, migrate=False)); "
            "n = {x['name']: x['count'] for x in run.summary['segments']}; "
            "c = load_segments(s.segments_file, s.templates_dir); "
            "v = [g.name for g in c.segments if 'video' in [ch.value for ch in g.channels] and n.get(g.name)]; "
            "print(min(v, key=n.get))")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, text=True, check=True,
                          capture_output=True).stdout.strip()


# -- one campaign run (a child process: `campaign.py _campaign NAME SEGMENT LIMIT`) ------------------------

def campaign_driver(name: str, segment: str, limit: int) -> None:
    """Plan both campaigns and run them where the environment says (embedded, or Celery with
    COMMS_BROKER_URL); print the channel start times and the final counts as one JSON line."""
    from comms.campaign.plan import plan_campaign
    from comms.campaign.run import counts, execute
    from comms.config import Settings
    from comms.store import Store

    marks = [("start", time.time())]
    settings = Settings.load()
    store = Store.open(settings, migrate=False)

    def progress(channel: str, done: int, total: int) -> None:
        if channel not in [m[0] for m in marks]:
            marks.append((channel, time.time()))

    video = plan_campaign(store, settings, f"{name}-video", ["video"], segments=[segment], limit=limit)
    main = plan_campaign(store, settings, name, MAIN_CHANNELS)
    states: dict[str, dict[str, int]] = {}
    for report in (video, main):
        camp = execute(store, settings, report.campaign, progress=progress)
        if camp.state != "completed":
            sys.exit(f"campaign {camp.name} ended {camp.state}: {camp.pause_reason}")
        for (channel, state), n in counts(store, report.campaign_id).items():
            states.setdefault(channel, {})[state] = n
    marks.append(("end", time.time()))
    print(json.dumps({"marks": marks, "states": states}))


# -- the plain loop (a child process: `campaign.py _plain SPEC.json`) --------------------------------------

def _plain_channel(channel: str, work: list, tools: SimpleNamespace) -> list:
    """Render one channel's jobs of this process the plain way; letters return what the print batch needs."""
    from comms.render.video import artifact_dir

    out = []
    if channel == "page":
        for cid, seg in work:
            tools.main.build(tools.customers[cid], seg)
    elif channel == "video":
        for cid, seg in work:
            tools.video.render(tools.videos.build(tools.customers[cid], seg),
                               artifact_dir(tools.settings, "plain", cid))
    elif channel == "letter":
        folder = tools.settings.artifacts_dir / "plain" / "letters"
        folder.mkdir(parents=True, exist_ok=True)
        contexts = (tools.main.build(tools.customers[cid], seg) for cid, seg in work)
        for letter in tools.letter.render_many(contexts):
            path = folder / f"{letter.customer_id}.pdf"
            path.write_bytes(letter.pdf)
            out.append((letter.customer_id, str(path), letter.pages, letter.sha256, letter.paper))
    elif channel == "email":
        for i in range(0, len(work), 200):
            emails = [tools.email.render(tools.main.build(tools.customers[cid], seg)) for cid, seg in work[i:i + 200]]
            tools.backend.send_many(emails)
    return out


def _plain_worker(spec: dict, index: int, workers: int, barrier, queue) -> None:
    from comms.config import Settings
    from comms.deliver import backend_from_settings
    from comms.payments import LinkSigner
    from comms.render.context import ContextBuilder, customers_from_snapshot
    from comms.render.email import EmailRenderer
    from comms.render.letter import LetterRenderer
    from comms.render.video import VideoRenderer
    from comms.segment.config import load_segments

    settings = Settings.load()
    segments = load_segments(settings.segments_file, settings.templates_dir)
    mine = {ch: [tuple(x) for x in spec["work"][ch][index::workers]] for ch in CHANNELS}
    ids = {cid for ch in CHANNELS for cid, _ in mine[ch]}
    signer, as_of = LinkSigner.from_settings(settings), date.fromisoformat(spec["as_of"])
    tools = SimpleNamespace(
        settings=settings, customers=customers_from_snapshot(SimpleNamespace(**{
            k: Path(v) for k, v in spec["snapshot"].items()}), ids),
        main=ContextBuilder(settings, segments, signer, "plain", as_of=as_of, channels=MAIN_CHANNELS),
        videos=ContextBuilder(settings, segments, signer, "plain", as_of=as_of, channels=["video"]),
        video=VideoRenderer(settings, segments), letter=LetterRenderer(settings, segments),
        email=EmailRenderer(settings, segments), backend=backend_from_settings(settings))
    for channel in CHANNELS:
        barrier.wait()
        letters = _plain_channel(channel, mine[channel], tools)
        if channel == "letter":
            queue.put(letters)
        barrier.wait()


def _print_batch(spec: dict, letters: list) -> None:
    """The plain loop's print batch: the letters just written, in print order, without the ledger."""
    from comms.render.context import customers_from_snapshot
    from comms.render.letter import Letter
    from comms.render.letters.printbatch import PrintBatch, print_order

    snapshot = SimpleNamespace(**{k: Path(v) for k, v in spec["snapshot"].items()})
    customers = customers_from_snapshot(snapshot, [x[0] for x in letters])
    by_id = {x[0]: x for x in letters}
    contexts = print_order([{"customer": {
        "id": c.customer_id, "name": c.name, "country": c.country, "postal_code": c.postal_code or "",
        "address_lines": list(c.address_lines)}} for c in (customers[x[0]] for x in letters)])
    with PrintBatch(Path(spec["home"]) / "artifacts" / "plain" / "print") as batch:
        for ctx in contexts:
            cid, path, pages, sha, paper = by_id[str(ctx["customer"]["id"])]
            batch.add(Letter(pdf=Path(path).read_bytes(), pages=pages, sha256=sha, paper=paper, customer_id=cid), ctx)


def plain_driver(spec_path: str) -> None:
    """Workers render channel after channel in step (a barrier between channels, as the campaign runs them);
    this process assembles the print batch between letters and e-mails. Prints marks and CPU as JSON."""
    import comms.render.context  # noqa: F401  (imported once here, inherited by the forked workers)
    import comms.render.letter  # noqa: F401

    spec = json.loads(Path(spec_path).read_text())
    workers = spec["workers"]
    marks = [("start", time.time())]
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_plain_worker, args=(spec, k, workers, barrier, queue)) for k in range(workers)]
    for p in procs:
        p.start()
    for channel in CHANNELS:
        barrier.wait()
        marks.append((channel, time.time()))
        barrier.wait()
        if channel == "letter":
            letters = [x for _ in procs for x in queue.get()]
            if letters:
                _print_batch(spec, letters)
    for p in procs:
        p.join()
        if p.exitcode:
            sys.exit(f"a plain-loop worker failed ({p.exitcode})")
    marks.append(("end", time.time()))
    print(json.dumps({"marks": marks}))


def warm_video_cache(segment: str, limit: int) -> None:
    """Render one video per locale among the video customers, so that no measured run pays for the static
    scenes (encoded once per template and locale into the shared COMMS_VIDEO_CACHE_DIR)."""
    from comms.config import Settings
    from comms.payments import LinkSigner
    from comms.render.context import ContextBuilder, customers_from_snapshot
    from comms.render.video import VideoRenderer
    from comms.segment.config import load_segments
    from comms.store import Store
    from comms.store.snapshots import get_segment_run, get_snapshot, load_assignments

    settings = Settings.load()
    store = Store.open(settings, migrate=False)
    snapshot = get_snapshot(store)
    assigned = load_assignments(get_segment_run(store))
    ids = sorted(assigned[assigned.segment == segment].customer_id)[:limit]
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "warm",
                             as_of=snapshot.as_of, channels=["video"])
    renderer = VideoRenderer(settings, segments)
    by_locale = {}
    for customer in customers_from_snapshot(snapshot, ids).values():
        by_locale.setdefault(customer.locale, customer)
    with tempfile.TemporaryDirectory() as tmp:
        for customer in by_locale.values():
            renderer.render(builder.build(customer, segment), Path(tmp) / customer.customer_id)


# -- the orchestration of the bench ---------------------------------------------------------------------

def run_measured(args: list[str], env: dict, sources: dict | None = None) -> dict:
    """Run one variant's process; returns its JSON, wall seconds, CPU per source over the run and per channel.
    The process is reaped with wait4 (its exact rusage, children included) only after the last sample."""
    start = time.time()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        with Sampler({"tree": lambda: tree_cpu(proc.pid), **(sources or {})}) as sampler:
            out = proc.stdout.read()
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            sys.exit(f"{' '.join(args[1:3])} failed:\n{out[-3000:]}\n{err.read()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.time() - start
    result["cpu"] = {name: sampler.at(time.time(), name) for name in sampler.sources}
    result["cpu"]["tree"] = usage.ru_utime + usage.ru_stime
    marks = result["marks"]
    result["channels"] = {}
    for (name, t), (_, t_next) in zip(marks[1:], marks[2:]):
        if name in CHANNELS:
            result["channels"][name] = {"wall": t_next - t,
                                        "cpu": sum(sampler.at(t_next, s) - sampler.at(t, s) for s in sampler.sources)}
    return result


def start_workers(n: int, env: dict) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([CELERY, "-A", "worker", "worker", "-Q", "comms,video", "-c", "1", "-n",
                               f"bench{k}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                               "-l", "WARNING"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True) for k in range(n)]
    from celery import Celery
    app = Celery(broker=env["COMMS_BROKER_URL"])
    deadline = time.time() + 120
    while len(app.control.ping(timeout=1.0) or []) < n:
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            stop_workers(procs)
            sys.exit("the Celery workers did not start")
    app.close()
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def jobs_done(home_env: dict, name: str) -> dict:
    """The plain loop's work: (customer id, segment) of every job the embedded campaigns completed, per channel,
    and the snapshot they were rendered from."""
    code = ("import json; from sqlalchemy import select; from comms.config import Settings; "
            "from comms.store import Store; from comms.store.ledger import campaigns, jobs; "
            "from comms.store.snapshots import get_snapshot; s = Settings.load(); st = Store.open(s, migrate=False); "
            "c = st.engine.connect(); q = select(jobs.c.channel, jobs.c.customer_id, jobs.c.segment).join("
            f"campaigns).where(campaigns.c.name.in_([{name!r}, {name + '-video'!r}]), jobs.c.state == 'sent')"
            ".order_by(jobs.c.id); w = {}\n"
            "for ch, cid, seg in c.execute(q): w.setdefault(ch, []).append([cid, seg])\n"
            "sn = get_snapshot(st); print(json.dumps({'work': w, 'as_of': sn.as_of.isoformat(), "
            "'snapshot': {'customers_path': str(sn.customers_path), 'invoices_path': str(sn.invoices_path)}}))")
    out = subprocess.run([sys.executable, "-c", code], env=home_env, cwd=ROOT, text=True, capture_output=True)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def report(results: dict[str, dict], jobs: dict[str, int], celery: list[int]) -> None:
    plain = results["plain loop"]
    names = list(results)
    width = 14
    print(f"\n{'':34}" + "".join(f"{n:>{width}}" for n in names))
    for channel in CHANNELS:
        label = f"{channel} ({jobs[channel]:,}{' + print batch' if channel == 'letter' else ''}), jobs/s"
        row = [jobs[channel] / r["channels"][channel]["wall"] if r["channels"].get(channel, {}).get("wall") else 0
               for r in results.values()]
        print(f"{label:34}" + "".join(f"{v:>{width},.1f}" for v in row))
    for channel in CHANNELS:
        row = [r["channels"].get(channel, {}).get("cpu", 0) for r in results.values()]
        print(f"{channel + ', CPU-s':34}" + "".join(f"{v:>{width},.1f}" for v in row))
    print(f"{'total wall s':34}" + "".join(f"{r['wall']:>{width},.1f}" for r in results.values()))
    print(f"{'total CPU-s':34}" + "".join(f"{sum(r['cpu'].values()):>{width},.1f}" for r in results.values()))
    for part, title in (("tree", "  run / launcher process tree"), ("workers", "  Celery worker trees"),
                        ("postgres", "  PostgreSQL backends"), ("redis", "  Redis server (shared)")):
        if any(part in r["cpu"] for r in results.values()):
            print(f"{title:34}" + "".join(f"{r['cpu'].get(part, 0):>{width},.1f}" for r in results.values()))
    base_cpu, base_wall = sum(plain["cpu"].values()), plain["wall"]
    print("\noverhead = (campaign - plain loop) / plain loop; goal < 10% of render time")
    for name in names[1:]:
        r = results[name]
        cpu = (sum(r["cpu"].values()) - base_cpu) / base_cpu
        wall = (r["wall"] - base_wall) / base_wall
        print(f"  {name:12} CPU {cpu:+7.1%}  {'ok' if cpu < 0.10 else 'MISSED'}     wall {wall:+7.1%}")
    if len(celery) >= 2:
        lo, hi = f"celery x{min(celery)}", f"celery x{max(celery)}"
        ratio = results[lo]["wall"] / results[hi]["wall"]
        print(f"\nthroughput, {hi} vs {lo}: {ratio:.2f}x jobs/s  (goal >= 1.5x on 2 cores)  "
              f"{'ok' if ratio >= 1.5 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 customers, to try the bench")
    parser.add_argument("--celery", default="1,2", help="worker processes per Celery run ('' for none)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="a Redis database of its own")
    parser.add_argument("--pg-admin-url", default=os.environ.get(
        "COMMS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server where the bench may create (and drop) a database")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    opts = parser.parse_args()
    customers = 1_000 if opts.quick else opts.customers
    celery = [int(x) for x in opts.celery.split(",") if x.strip()]
    video_limit = max(1, customers // 50)
    tmp = Path(tempfile.mkdtemp(prefix="comms-bench-campaign-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")} | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "COMMS_EMAIL_WINDOW": "00:00-24:00", "COMMS_VIDEO_CACHE_DIR": str(tmp / "video-cache")}
    sqlite_env = base | {"COMMS_HOME": str(tmp / "embedded")}
    db = f"comms_bench_{uuid.uuid4().hex[:10]}"
    from sqlalchemy import create_engine, text
    admin = create_engine(opts.pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        portfolio = tmp / "portfolio.csv"
        print(f"portfolio: {customers:,} customers (comms sample-data, ingest, segment) ...", flush=True)
        comms("sample-data", "--rows", str(customers), "--seed", "7", "--as-of", AS_OF, "--out", str(portfolio),
              env=base)
        build_home(tmp / "embedded", portfolio, sqlite_env)
        segment = video_segment(sqlite_env)
        print(f"video: the first {video_limit:,} customers of segment {segment}; warming the video cache ...",
              flush=True)
        subprocess.run([sys.executable, __file__, "_warm", segment, str(video_limit)], env=sqlite_env, cwd=ROOT,
                       check=True)
        me = [sys.executable, __file__]
        results: dict[str, dict] = {}
        print("embedded campaign ...", flush=True)
        embedded = run_measured([*me, "_campaign", "bench", segment, str(video_limit)], sqlite_env)
        work = jobs_done(sqlite_env, "bench")
        jobs = {ch: len(work["work"].get(ch, [])) for ch in CHANNELS}
        print("jobs done: " + ", ".join(f"{ch} {n:,}" for ch, n in jobs.items()), flush=True)
        spec = tmp / "plain.json"
        spec.write_text(json.dumps(work | {"home": str(tmp / "embedded"),
                                           "workers": max(1, min(os.cpu_count() or 1, 4))}))
        print("plain loop ...", flush=True)
        results["plain loop"] = run_measured([*me, "_plain", str(spec)], sqlite_env)
        results["embedded"] = embedded
        if celery:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db}"'))
            import redis
            broker = redis.Redis.from_url(opts.redis_url)
            dist_env = base | {"COMMS_HOME": str(tmp / "celery"), "COMMS_BROKER_URL": opts.redis_url,
                               "COMMS_DATABASE_URL": opts.pg_admin_url.rsplit("/", 1)[0] + f"/{db}"}
            build_home(tmp / "celery", portfolio, dist_env)
            backends = PostgresBackends(opts.pg_admin_url, db)
            rpid = redis_pid(opts.redis_url)
            for n in celery:
                broker.flushdb()
                print(f"Celery, {n} worker process{'es' if n > 1 else ''} ...", flush=True)
                workers = start_workers(n, dist_env)
                try:
                    sources = {"workers": lambda: sum(tree_cpu(w.pid) for w in workers), "postgres": backends}
                    if rpid:
                        sources["redis"] = lambda: proc_cpu(rpid)
                    results[f"celery x{n}"] = run_measured([*me, "_campaign", f"bench-{n}", segment,
                                                            str(video_limit)], dist_env, sources)
                finally:
                    stop_workers(workers)
                got = {ch: results[f"celery x{n}"]["states"].get(ch, {}).get("sent", 0) for ch in CHANNELS}
                if got != jobs:
                    print(f"  note: jobs done differ from the embedded run: {got}")
            broker.flushdb()
        print(f"\n{customers:,} customers, {sum(jobs.values()):,} jobs on {os.cpu_count()} CPUs; e-mail to the "
              f"outbox; every job of every run ended 'sent'")
        report(results, jobs, celery)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
        if opts.keep:
            print(f"homes kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_campaign":
        campaign_driver(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_plain":
        plain_driver(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "_warm":
        warm_video_cache(sys.argv[2], int(sys.argv[3]))
    else:
        main()
