"""Benchmark: one-page PDF letters, ours next to the naive way and next to headless Chromium.

Input: sample customers (comms.render.samples, it-IT and en-US alternating: EUR with a SEPA QR code, USD on
US Letter), 3 invoices each, the final-notice treatment (letterhead SVG, invoice table, offers, payment QR
codes); contexts built beforehand by comms.render.context (the render kit's cost, not counted here).
Every variant writes real PDF files. Side by side, in one run:

* ours: ``LetterRenderer.render_many`` in W worker processes (default 2, one per core), each laying out
  its customers ``--chunk`` to a document, stamping the static parts, cutting one PDF/A-3b file per letter;
* naive: per letter, the complete standalone HTML (stationery inline, page numbers in @page margin boxes)
  through ``HTML(string=...).write_pdf(pdf_variant="pdf/a-3b")`` with fresh settings each time;
* Chromium: Debian's chromium driven by Playwright, one page reused, the same standalone HTML printed one
  letter at a time, and ``--chromium-batch`` letters laid out as one document (the fast way to use it).

CPU seconds are those of the processes doing the work (our workers; this process for naive; the browser's
process tree for Chromium), so the shared machine's load does not count. Peak memory: max RSS of each
worker, RSS after every chunk (flat or growing?), and sampled RSS of the browser's processes.

Run: .venv/bin/python bench/letters.py [--letters 1000] [--workers 2] [--naive 200] [--chromium 200]
Goals (issue 5): >= 3x the naive way in CPU-s per letter; >= 35 letters/s on 2 cores; < 300 MB per
worker, flat; and the distance to Chromium's batch printed.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 6, 30)
LOCALES = ("it-IT", "en-US")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _setup(home: str):
    os.environ["COMMS_HOME"] = home
    from comms.config import Settings
    from comms.payments import LinkSigner
    from comms.render.context import ContextBuilder
    from comms.segment.config import load_segments
    settings = Settings.load(home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "bench", as_of=AS_OF)
    return settings, segments, builder


def contexts(builder, indexes) -> list[dict]:
    from comms.render.samples import sample_customer
    out = []
    for i in indexes:
        customer = sample_customer(LOCALES[i % len(LOCALES)], as_of=AS_OF, invoices=3)
        customer = replace(customer, customer_id=f"B{i:07d}", name=f"{customer.name} {i}")
        out.append(builder.build(customer, "final"))
    return out


def standalone_html(renderer, context: dict) -> str:
    """One letter as a complete HTML document, the way one would write it without our machinery: the
    stationery and "page 1 of 1" inline, in sheet coordinates (no page margins, the margins are the
    letter's padding), so WeasyPrint and Chromium print the same one-page letter."""
    from comms.render.letters.compose import letter_context, letter_templates
    templates = letter_templates(renderer.templates_dir, context["treatment"]["name"])
    lctx = letter_context(context, "letter-0", renderer.beneficiary)
    paper = lctx["letter"]["paper_class"]
    inner = re.compile(r'<article class="stamp[^"]*"[^>]*>(.*?)</article>', re.S)
    stationery = inner.search(renderer.stamp_html(templates, lctx, "stationery", None)).group(1)
    label = inner.search(renderer.stamp_html(templates, lctx, "pagelabel", 1)).group(1)
    css = "\n".join(src for _, src in templates.css) + (
        "\n@page a4 { margin: 0 } @page us { margin: 0 } .letter { position: relative }"
        " .letter.a4 { padding: 20mm 20mm 21mm 25mm } .letter.us { padding: 0.75in 0.75in 0.9in 1in }")
    logo = "data:image/svg+xml;base64," + base64.b64encode(
        (Path(renderer.settings.media_dir) / "letter" / "logo.svg").read_bytes()).decode()
    stationery = stationery.replace('src="letter/logo.svg"', f'src="{logo}"')  # Chromium has no base URL
    article = templates.article(lctx).replace(
        '<div class="head">', f'<div class="{paper}">{stationery}{label}</div><div class="head">', 1)
    article = re.sub(r"<!--/?static-->", "", article)
    return (f'<!DOCTYPE html><html lang="{lctx["customer"]["lang"]}"><head><meta charset="utf-8">'
            f"<style>{css}</style></head><body>{article}</body></html>")


# -- ours: worker processes ----------------------------------------------------------------------------
def _ours_worker(home: str, indexes: list[int], chunk: int, out_dir: str, queue, memory_mb: int, barrier) -> None:
    settings, segments, builder = _setup(home)
    from comms.render.letter import LetterRenderer
    from comms.render.letters.engine import limit_process_memory, rss_megabytes
    limit_process_memory(memory_mb)  # what a render worker would do
    renderer = LetterRenderer(settings, segments)
    ctxs = contexts(builder, indexes)
    barrier.wait()  # all workers start rendering together, so letters/s is that of the cores working at once
    start_cpu, start = time.process_time(), time.time()
    rss, pages, n, first_chunk_cpu = [], 0, 0, None
    for letter in renderer.render_many(ctxs, chunk=chunk):
        Path(out_dir, f"{letter.customer_id}.pdf").write_bytes(letter.pdf)
        pages += letter.pages
        n += 1
        if n % chunk == 0:
            rss.append(round(rss_megabytes()))
            if first_chunk_cpu is None:  # the first chunk also pays for fonts, stylesheets and stamps
                first_chunk_cpu = time.process_time() - start_cpu
    cpu = time.process_time() - start_cpu
    queue.put({"cpu": cpu, "steady_cpu": cpu - (first_chunk_cpu or 0), "steady_letters": n - min(n, chunk),
               "start": start, "end": time.time(), "letters": n,
               "pages": pages, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "rss_trace": rss})


def run_ours(home: str, n: int, workers: int, chunk: int, out_dir: Path, memory_mb: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(workers)
    shares = [list(range(i, n, workers)) for i in range(workers)]
    start = time.perf_counter()
    procs = [ctx.Process(target=_ours_worker, args=(home, share, chunk, str(out_dir), queue, memory_mb,
                                                         barrier))
             for share in shares]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    # Wall time of the rendering itself: from the common start to the last worker's end (contexts are built
    # before the start).
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"letters": sum(r["letters"] for r in results), "pages": sum(r["pages"] for r in results),
            "cpu": sum(r["cpu"] for r in results),
            "steady": sum(r["steady_cpu"] for r in results) / max(1, sum(r["steady_letters"] for r in results)),
            "wall": wall, "elapsed": time.perf_counter() - start,
            "peak_mb": [round(r["peak_mb"]) for r in results], "rss_trace": [r["rss_trace"] for r in results]}


# -- naive ---------------------------------------------------------------------------------------------
def run_naive(settings, renderer, ctxs: list[dict], out_dir: Path) -> dict:
    from weasyprint import HTML
    from comms.render.letters.fetcher import MediaFetcher
    docs = [standalone_html(renderer, c) for c in ctxs]
    start_cpu, start = time.process_time(), time.perf_counter()
    for i, html in enumerate(docs):
        fetcher = MediaFetcher(settings.media_dir)
        HTML(string=html, base_url=fetcher.base_url, url_fetcher=fetcher).write_pdf(
            out_dir / f"naive-{i}.pdf", pdf_variant="pdf/a-3b")
    return {"letters": len(docs), "cpu": time.process_time() - start_cpu, "wall": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# -- Chromium ------------------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _cpu_and_rss(pids: list[int]) -> tuple[float, float]:
    tick = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(fields[21]) * resource.getpagesize() / 2**20
        except (OSError, IndexError, ValueError):
            pass
    return cpu, rss


def run_chromium(docs: list[str], batch_docs: list[str], out_dir: Path) -> dict:
    from playwright.sync_api import sync_playwright
    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content("<p>warm up</p>")
        page.pdf()
        pids = [p for p in _descendants(os.getpid()) if "chrom" in _cmdline(p)]
        peak = [0.0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _cpu_and_rss(_descendants(os.getpid()))[1])
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for name, items in (("one_by_one", docs), ("batch", batch_docs)):
            if not items:
                continue
            cpu0 = _cpu_and_rss(_descendants(os.getpid()))[0]
            start_cpu, start = time.process_time(), time.perf_counter()
            letters = 0
            for i, (html, count) in enumerate(items):
                page.set_content(html)
                page.pdf(path=str(out_dir / f"chromium-{name}-{i}.pdf"), prefer_css_page_size=True,
                         print_background=True)
                letters += count
            cpu = _cpu_and_rss(_descendants(os.getpid()))[0] - cpu0 + (time.process_time() - start_cpu)
            results[name] = {"letters": letters, "cpu": cpu, "wall": time.perf_counter() - start}
        stop.set()
        sampler.join()
        results["peak_mb"] = peak[0]
        results["processes"] = len(pids)
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--naive", type=int, default=200, help="letters rendered the naive way (0: skip)")
    parser.add_argument("--chromium", type=int, default=200, help="letters printed one by one (0: skip)")
    parser.add_argument("--chromium-batch", type=int, default=100, help="letters per Chromium document")
    parser.add_argument("--memory-limit-mb", type=int, default=1024, help="heap cap of each worker")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-letters-"))
    home = work / "home"
    home.mkdir()
    settings, segments, builder = _setup(str(home))
    from comms.render.letter import LetterRenderer
    renderer = LetterRenderer(settings, segments)
    for sub in ("ours", "naive", "chromium"):
        (work / sub).mkdir()
    print(f"{args.letters} one-page letters (final notice, {'/'.join(LOCALES)}), output in {work}")

    ours = run_ours(str(home), args.letters, args.workers, args.chunk, work / "ours", args.memory_limit_mb)
    per = ours["cpu"] / ours["letters"]
    print(f"ours   : {ours['letters']} letters, {ours['pages']} pages, {ours['letters'] / ours['wall']:.1f} letters/s "
          f"on {args.workers} workers, {per:.4f} CPU-s/letter ({ours['steady']:.4f} after each worker's first "
          f"chunk), peak RSS per worker {ours['peak_mb']} MB")
    for i, trace in enumerate(ours["rss_trace"]):
        print(f"         worker {i} RSS after each chunk of {args.chunk} (MB): {trace}")
    naive = None
    if args.naive:
        sample = contexts(builder, range(10_000_000, 10_000_000 + args.naive))
        naive = run_naive(settings, renderer, sample, work / "naive")
        naive_per = naive["cpu"] / naive["letters"]
        print(f"naive  : {naive['letters']} letters, {naive['letters'] / naive['wall']:.1f} letters/s on 1 core, "
              f"{naive_per:.4f} CPU-s/letter -> ours is {naive_per / per:.1f}x less CPU per letter "
              f"({naive_per / ours['steady']:.1f}x after the first chunk); peak RSS {naive['peak_mb']:.0f} MB "
              "(this process)")
    if args.chromium or args.chromium_batch:
        sample = contexts(builder, range(20_000_000, 20_000_000 + max(args.chromium, args.chromium_batch)))
        docs = [(standalone_html(renderer, c), 1) for c in sample[:args.chromium]]
        batch_docs = []
        if args.chromium_batch:
            bodies = [standalone_html(renderer, c) for c in sample[:args.chromium_batch]]
            head = bodies[0].split("<body>")[0]
            joined = "".join(b.split("<body>", 1)[1].rsplit("</body>", 1)[0] for b in bodies)
            batch_docs = [(f"{head}<body>{joined}</body></html>", len(bodies))]
        chromium = run_chromium(docs, batch_docs, work / "chromium")
        for name in ("one_by_one", "batch"):
            if name in chromium:
                r = chromium[name]
                c_per = r["cpu"] / r["letters"]
                print(f"chromium {name}: {r['letters']} letters, {r['letters'] / r['wall']:.1f} letters/s, "
                      f"{c_per:.4f} CPU-s/letter (ours / chromium = {per / c_per:.1f}x)")
        print(f"chromium peak RSS of its {chromium['processes']} processes: {chromium['peak_mb']:.0f} MB")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
