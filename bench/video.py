"""Personalized video, side by side: the naive way (one moviepy composite per customer) and ours.

The same 15-second 1280x720 30 fps spec (an intro, a 3-second personal scene with the customer's name,
amount and QR code, two closing scenes, music) for the same customers, in one run:

  naive   bench/naive_video.py: the whole video composited by moviepy and encoded by libx264 per customer
  ours    comms.render.video.VideoRenderer: static scenes encoded once (cache), the personal scene piped into
          one ffmpeg, parts and music joined without re-encoding; plus poster, preview and captions
  2 procs ours in two worker processes at once (this machine has 2 cores): videos per hour
  floor   ffmpeg encoding the 90 personal frames alone (the same encoder settings), nothing else

Prints wall and CPU seconds per video (CPU = this process + its ffmpeg children) and the ratios. Not a test:
numbers depend on the machine and its load.

    .venv/bin/python bench/video.py [--customers 20] [--naive 20] [--throughput 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

SPEC = """
fps: 30
music: {file: music/calm-pad.m4a, volume: 0.3}
defs:
  out: &out {effect: fade, duration: 0.4}
scenes:
  - name: intro
    duration: 4
    background: {image: backgrounds/firm.jpg, dim: 0.1}
    layers:
      - {logo: logos/example-collections.png, box: [0.06, 0.07, 0.36, 0.14], enter: fade, exit: *out}
      - {text: "{{ t.video.intro_title }}", box: [0.06, 0.30, 0.88, 0.26], font: bold, size: 60, shadow: true,
         valign: bottom, enter: {effect: slide, at: 0.3, duration: 0.7}, exit: *out}
      - {text: "{{ t.video.intro_sub }}", box: [0.06, 0.58, 0.80, 0.16], size: 32, valign: top,
         enter: {effect: fade, at: 0.9, duration: 0.6}, exit: *out}
  - name: you
    duration: 3
    background: {gradient: ["#14213d", "#1c3264"], angle: 120}
    layers:
      - {text: "{{ t.video.hello }}", box: [0.06, 0.09, 0.56, 0.11], size: 44, enter: {effect: slide, at: 0.2}}
      - {text: "{{ t.balance_label }}", box: [0.06, 0.23, 0.56, 0.07], size: 28, enter: {effect: fade, at: 0.4}}
      - {text: "{{ balance }}", box: [0.06, 0.30, 0.56, 0.18], font: bold, size: 88, color: "#ffd166",
         enter: {effect: slide-up, at: 0.5, duration: 0.6}}
      - {qr: "{{ links.pay }}", box: [0.66, 0.12, 0.28, 0.62], align: center, enter: {effect: fade, at: 0.7}}
      - {text: "{{ t.video.scan_to_pay }}", box: [0.66, 0.76, 0.28, 0.08], size: 26, align: center,
         enter: {effect: fade, at: 0.9}}
  - name: options
    duration: 4
    background: {image: backgrounds/firm.jpg, dim: 0.3}
    layers:
      - {text: "{{ t.video.options_title }}", box: [0.06, 0.16, 0.88, 0.16], font: bold, size: 52,
         enter: {effect: slide, at: 0.2, duration: 0.6}, exit: *out}
      - {text: "{{ t.video.options_body }}", box: [0.06, 0.38, 0.78, 0.40], size: 34, valign: top,
         enter: {effect: fade, at: 0.7, duration: 0.6}, exit: *out}
  - name: outro
    duration: 4
    background: {gradient: ["#14213d", "#1f3b73"], angle: 200}
    layers:
      - {text: "{{ t.video.closing }}", box: [0.06, 0.12, 0.88, 0.22], font: bold, size: 40, enter: fade}
      - {text: "{{ t.video.page_hint }}", box: [0.06, 0.38, 0.80, 0.16], size: 30,
         enter: {effect: fade, at: 0.4}}
      - {text: "{{ t.contact }}", box: [0.06, 0.58, 0.88, 0.12], size: 22, enter: {effect: fade, at: 0.7}}
      - {logo: logos/example-collections.png, box: [0.06, 0.76, 0.36, 0.14], enter: {effect: fade, at: 0.9}}
"""
NAMES = ["Jordan Miller", "Avery Johnson", "Riley Thompson", "Casey Martinez", "Morgan Lee", "Taylor Brooks",
         "Jamie Rivera", "Quinn Parker", "Drew Bennett", "Skyler Hayes"]


def cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def setup(home: Path):
    os.environ["COMMS_HOME"] = str(home)
    from comms.config import Settings
    from comms.payments import LinkSigner
    from comms.render.context import ContextBuilder
    from comms.render.samples import sample_customer
    from comms.render.video import VideoRenderer
    from comms.render.videos.spec import parse_template
    from comms.segment.config import load_segments

    settings = Settings.load(home)
    segments = load_segments(settings.segments_file, settings.templates_dir)
    builder = ContextBuilder(settings, segments, LinkSigner.from_settings(settings), "bench")
    template = parse_template(SPEC, Path("bench-spec.yaml"), settings.media_dir)
    base = sample_customer("en-US")

    def contexts(n: int, offset: int = 0):
        for i in range(offset, offset + n):
            who = NAMES[i % len(NAMES)]
            c = replace(base, customer_id=f"B-{i:05d}", name=f"{who} {i}", given_name=who.split()[0],
                        balance=Decimal(137 + 19 * i) + Decimal("0.45"))
            yield builder.build(c, "firm")

    return VideoRenderer(settings, segments), template, contexts


def _ours(renderer, template, contexts, out: Path) -> list:
    return [renderer.render(ctx, out / ctx["customer"]["id"], "landscape", template=template) for ctx in contexts]


def _worker(args) -> int:
    home, n, offset, out = args
    renderer, template, contexts = setup(Path(home))
    return len(_ours(renderer, template, contexts(n, offset), Path(out)))


def floor(renderer, template, contexts, work: Path) -> float:
    """CPU seconds for ffmpeg alone to encode the personal scene's frames (prepared beforehand)."""
    from comms.render.videos.encode import FFmpeg, encoder_args, raw_input_args

    ctx = next(contexts(1, 999))
    words = renderer.words(template, ctx)
    you = next(w for w in words if w.personal)
    ff = FFmpeg(renderer.ffmpeg, work)
    frames = [bytes(buf) for _, buf, _ in renderer.composer.frames(you, "landscape", (1280, 720), 30, "en-US", False,
                                                                   ff)]
    raw = work / "personal.yuv"
    raw.write_bytes(b"".join(frames))
    before = cpu()
    ff.run([*raw_input_args((1280, 720), 30)[:-2], "-i", str(raw), *encoder_args(30), str(work / "floor.mp4")])
    return cpu() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20, help="videos rendered our way")
    parser.add_argument("--naive", type=int, default=20, help="videos rendered the naive way")
    parser.add_argument("--throughput", type=int, default=40, help="videos per process in the 2-process run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        tmp = Path(tmp)
        renderer, template, contexts = setup(tmp / "home")
        print(f"spec: {sum(s.duration for s in template.scenes):g} s, 1280x720, {template.fps} fps; personal scene "
              f"3 s; {os.cpu_count()} CPUs; ffmpeg {renderer.ffmpeg}")

        t0, c0 = time.perf_counter(), cpu()
        _ours(renderer, template, contexts(1, 10_000), tmp / "cold")
        cold_wall, cold_cpu = time.perf_counter() - t0, cpu() - c0

        t0, c0 = time.perf_counter(), cpu()
        arts = _ours(renderer, template, contexts(args.customers), tmp / "ours")
        ours_wall, ours_cpu = (time.perf_counter() - t0) / len(arts), (cpu() - c0) / len(arts)

        from naive_video import render_naive

        (tmp / "naive").mkdir()
        t0, c0 = time.perf_counter(), cpu()
        for ctx in contexts(args.naive):
            render_naive(renderer, template, ctx, tmp / "naive" / f"{ctx['customer']['id']}.mp4")
        naive_wall, naive_cpu = (time.perf_counter() - t0) / args.naive, (cpu() - c0) / args.naive

        floor_cpu = floor(renderer, template, contexts, tmp)

        t0 = time.perf_counter()
        jobs = [(str(tmp / "home"), args.throughput, 20_000 + k * args.throughput, str(tmp / f"proc{k}"))
                for k in range(2)]
        with mp.get_context("spawn").Pool(2) as pool:
            done = sum(pool.map(_worker, jobs))
        per_hour = done / (time.perf_counter() - t0) * 3600

        print(f"\n{'':38}{'wall s/video':>14}{'CPU s/video':>14}")
        print(f"{'naive (moviepy composite + libx264)':38}{naive_wall:14.2f}{naive_cpu:14.2f}   ({args.naive} videos)")
        print(f"{'ours (cached static + personal pipe)':38}{ours_wall:14.3f}{ours_cpu:14.3f}   ({len(arts)} videos)")
        print(f"{'ours, first video (builds the cache)':38}{cold_wall:14.2f}{cold_cpu:14.2f}")
        print(f"{'floor (ffmpeg: 3 personal s only)':38}{'':14}{floor_cpu:14.3f}")
        print(f"\nours vs naive: {naive_cpu / ours_cpu:.1f}x less CPU per video (goal >= 20x), "
              f"{naive_wall / ours_wall:.1f}x less wall")
        print(f"throughput, 2 worker processes: {per_hour:,.0f} videos/hour ({done} videos; goal >= 3,000)")
        print(f"distance to the floor: ours takes {ours_cpu / floor_cpu:.2f}x the CPU of encoding the personal "
              f"seconds alone (+{ours_cpu - floor_cpu:.3f} CPU-s: compositing, QR, text, mux, poster, preview)")


if __name__ == "__main__":
    main()
