"""Personal pages served per second on loopback, with p50/p99 latency, next to the naive way.

    .venv/bin/python bench/pages.py [--customers 20000] [--seconds 15] [--workers 2] [--connections 16]

Builds a portfolio with the real commands (sample-data, ingest, segment) in a temporary home, signs one
link per customer, serves the app with uvicorn (``--workers`` processes, rate limits off: one client on
loopback would trip them) and drives it with wrk (Debian's, installed with apt when missing and allowed;
otherwise an asyncio httpx client, which itself takes CPU from the server). Three servers are measured:

  naive           each request loads and compiles the page templates (no template cache, no page cache)
  compiled        templates compiled once, every page rendered for its request (page cache off)
  compiled+cache  the shipped configuration: compiled once, repeat views of a page served from memory (a page
                  is kept from its second view on, so a first view costs what it costs without the cache)

and two traffic patterns: ``first views`` (every request a different customer, none seen before) and
``repeat views`` (a set of 1,000 customers visited again and again, as reloads and returning customers do).
Every response is checked for status 200 while warming up. Goal on 2 cores: >= 1,000 pages/s with
p99 < 50 ms for the shipped configuration's first views (the last lines say whether it is met). Numbers are
one run on a shared machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMS = str(Path(sys.executable).with_name("comms"))
CAMPAIGN = "bench"
LUA = """
local urls = {}
for line in io.lines(os.getenv("BENCH_URLS")) do urls[#urls + 1] = line end
local threads, counter = {}, 1
function setup(thread) thread:set("id", counter); counter = counter + 1; table.insert(threads, thread) end
function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS"))
  per = math.floor(#urls / n); first = (id - 1) * per; i = 0
end
function request()
  local url = urls[first + (i % per) + 1]; i = i + 1
  return wrk.format("GET", url)
end
"""


# -- the naive server: templates loaded and compiled for every request --------------------------------

def naive_app():
    from comms.config import Settings
    from comms.web import create_app
    from comms.web.cache import PageCache
    from comms.web.view import PageTemplates

    class NaiveTemplates(PageTemplates):
        def environment(self, treatment):
            self._envs.clear()  # a fresh environment: every template read from disk and compiled again
            return super().environment(treatment)

    app = create_app(Settings.load(), serving=True)
    templates = NaiveTemplates(app.site.templates.templates_dir)
    app.site.templates = templates
    app.site.page_cache = PageCache(max_bytes=0)
    return app


def compiled_app():
    from comms.config import Settings
    from comms.web import create_app
    from comms.web.cache import PageCache

    app = create_app(Settings.load(), serving=True)
    app.site.page_cache = PageCache(max_bytes=0)
    return app


def cached_app():
    from comms.config import Settings
    from comms.web import create_app
    return create_app(Settings.load(), serving=True)


FACTORIES = {"naive": "naive_app", "compiled": "compiled_app", "compiled+cache": "cached_app"}


# -- orchestration --------------------------------------------------------------------------------------

def run(*args: str, env: dict) -> None:
    subprocess.run([COMMS, *args], env=env, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(home: Path, customers: int, env: dict) -> list[str]:
    """A portfolio through the real commands; one signed page path per customer."""
    run("sample-data", "--rows", str(customers), "--seed", "11", "--out", str(home / "portfolio.csv"), env=env)
    run("ingest", str(home / "portfolio.csv"), env=env)
    run("segment", env=env)
    code = ("from comms.config import Settings; from comms.store import Store; "
            "from comms.store.snapshots import get_snapshot, load_customers; from comms.payments import LinkSigner;"
            "s=Settings.load(); st=Store.open(s); ids=load_customers(get_snapshot(st), ['customer_id']).customer_id;"
            f"print('\\n'.join('/p/'+t for t in LinkSigner.from_settings(s).sign_many({CAMPAIGN!r}, list(ids))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return out.stdout.split()


def start_server(mode: str, port: int, workers: int, env: dict) -> subprocess.Popen:
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import uvicorn; "
            f"uvicorn.run('pages:{FACTORIES[mode]}', factory=True, host='127.0.0.1', port={port}, "
            f"workers={workers}, access_log=False, log_level='warning', server_header=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.2)
    else:
        stop_server(proc)
        raise SystemExit(f"the {mode} server did not start")
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def warm(base: str, paths: list[str], views: int = 1) -> None:
    """Every page ``views`` times (checks they answer 200; the page cache keeps a page from its second view)."""
    import httpx
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(views):
            for path in paths:
                r = client.get(path)
                if r.status_code != 200:
                    raise SystemExit(f"warm-up: {r.status_code} for a page: the bench setup is broken")


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found or os.geteuid() != 0:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return shutil.which("wrk")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wrk(base: str, paths: list[str], seconds: int, connections: int, tmp: Path) -> dict:
    threads = 2
    urls = tmp / "urls.txt"
    urls.write_text("\n".join(paths) + "\n")
    script = tmp / "urls.lua"
    script.write_text(LUA)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(script), base], capture_output=True, text=True,
                         env={**os.environ, "BENCH_URLS": str(urls), "BENCH_THREADS": str(threads)}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "errors": int(errors.group(1)) if errors else 0}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def _py_load(base: str, paths: list[str], seconds: int, connections: int) -> dict:
    import httpx
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            i = offset
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await client.get(paths[i % len(paths)])
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += r.status_code != 200
                i += connections

    start = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {"rps": len(latencies) / (time.monotonic() - start), "p50": pick(0.5), "p99": pick(0.99),
            "errors": errors}


def measure(base, paths, seconds, connections, tmp, use_wrk, server_pid) -> dict:
    """Throughput and latency, plus the server's CPU time per page (what a busy, shared machine cannot
    distort much: pages/s per core = 1000 / cpu_ms)."""
    before, t0 = cpu_seconds(server_pid), time.monotonic()
    if use_wrk:
        result = wrk(base, paths, seconds, connections, tmp)
    else:
        result = asyncio.run(_py_load(base, paths, seconds, connections))
    pages = result["rps"] * (time.monotonic() - t0)
    result["cpu_ms"] = (cpu_seconds(server_pid) - before) * 1000 / max(pages, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--repeat-set", type=int, default=1_000)
    ap.add_argument("--modes", default=",".join(FACTORIES), help="servers to measure (default: all three)")
    args = ap.parse_args()

    use_wrk = ensure_wrk() is not None
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmpdir:
        tmp = Path(tmpdir)
        home = tmp / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMS_")}
        env.update(COMMS_HOME=str(home), COMMS_WEB_RATE_IP="0", COMMS_WEB_RATE_LINK="0",
                   COMMS_WEB_RATE_BAD_LINK="0")
        print(f"preparing {args.customers:,} customers (sample-data, ingest, segment) ...", flush=True)
        paths = prepare(home, args.customers, env)
        repeat = paths[:args.repeat_set]
        print(f"{len(paths):,} links; load generator: {'wrk' if use_wrk else 'python httpx (fallback)'}; "
              f"{args.workers} uvicorn worker(s), {args.connections} connections, {args.seconds} s per run\n")
        results = []
        for mode in args.modes.split(","):
            port = free_port()
            server = start_server(mode, port, args.workers, env)
            base = f"http://127.0.0.1:{port}"
            try:
                if mode == "compiled+cache":
                    warm(base, repeat, views=2)  # the repeat set, into the page cache
                else:
                    warm(base, repeat[:50])  # check the pages answer
                first = measure(base, paths[args.repeat_set:], args.seconds, args.connections, tmp, use_wrk,
                                server.pid)
                again = measure(base, repeat, args.seconds, args.connections, tmp, use_wrk, server.pid)
            finally:
                stop_server(server)
            results.append((mode, first, again))
        load = os.getloadavg()[0]
        print(f"{'server':<16} {'traffic':<14} {'pages/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'CPU ms/page':>12} {'pages/s/core':>13}")
        for mode, first, again in results:
            for label, r in (("first views", first), ("repeat views", again)):
                print(f"{mode:<16} {label:<14} {r['rps']:>9,.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7} "
                      f"{r['cpu_ms']:>12.2f} {1000 / r['cpu_ms']:>13,.0f}")
        print(f"\nload average at the end: {load:.1f} on {os.cpu_count()} cores (other work on the machine "
              "lowers pages/s and raises p99; CPU ms/page is what the server itself spent)")
        by = {mode: (first, again) for mode, first, again in results}
        if "compiled+cache" in by:
            shipped = by["compiled+cache"][0]
            met = shipped["rps"] >= 1000 and shipped["p99"] < 50
            print(f"goal, shipped configuration, first views (>= 1,000 pages/s, p99 < 50 ms): "
                  f"{shipped['rps']:,.0f} pages/s, p99 {shipped['p99']:.1f} ms: {'met' if met else 'NOT met'}")
        if {"naive", "compiled", "compiled+cache"} <= set(by):
            naive = by["naive"]
            print(f"repeat views: compiled {by['compiled'][1]['rps'] / naive[1]['rps']:.1f}x naive, compiled+cache "
                  f"{by['compiled+cache'][1]['rps'] / naive[1]['rps']:.1f}x naive; first views: compiled "
                  f"{by['compiled'][0]['rps'] / naive[0]['rps']:.1f}x naive (by CPU per page: "
                  f"{naive[0]['cpu_ms'] / by['compiled'][0]['cpu_ms']:.1f}x)")


if __name__ == "__main__":
    main()
