"""A video worker over many renders: no ffmpeg left running, no temporary file left, memory flat; and the
plain path (every scene personal) and spoken lines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from videotools import VideoEnv, ffprobe, parse_vtt

from comms.render.videos.spec import parse_template

RENDERS = 1000

TINY = """
formats: {tiny: [160, 90]}
scenes:
  - name: you
    duration: 1
    background: {color: "#102a43"}
    layers:
      - text: "{{ customer.name }} {{ balance }}"
        box: [0.05, 0.1, 0.9, 0.4]
        size: 60
        enter: fade
      - qr: "{{ links.pay }}"
        box: [0.6, 0.5, 0.4, 0.5]
"""


@pytest.fixture
def env(home, tmp_path, monkeypatch):
    monkeypatch.setenv("COMMS_VIDEO_TMP_DIR", str(tmp_path / "video-tmp"))
    return VideoEnv(home)


def _children() -> list[str]:
    """Commands of this process's living children (zombies included: a reaped child is gone from /proc)."""
    me, out = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            out.append(stat[stat.index("(") + 1:stat.rindex(")")])
    return out


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_thousand_renders_leave_no_ffmpeg_no_temp_file_and_flat_memory(env, tmp_path):
    tpl = parse_template(TINY, Path("tiny.yaml"), env.settings.media_dir)
    ctx = env.context("en-US")
    scratch = tmp_path / "video-tmp"
    out = tmp_path / "out"
    rss = {}
    for i in range(1, RENDERS + 1):
        art = env.renderer.render(ctx, out, "tiny", template=tpl)
        if i in (100, RENDERS):
            rss[i] = _rss_mb()
            assert not [c for c in _children() if "ffmpeg" in c]
            assert list(scratch.iterdir()) == []
    assert {p.name for p in out.iterdir()} == {"video.mp4", "captions.vtt", "poster.jpg", "preview.webp"}
    info = ffprobe(art.mp4)
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (160, 90)
    assert rss[RENDERS] - rss[100] < 8, rss  # megabytes: no growth with the number of renders


def test_a_template_whose_every_scene_is_personal_is_encoded_in_one_pass(env, tmp_path, monkeypatch):
    source = TINY + """
  - name: amount
    duration: 1.5
    background: {gradient: ["#000000", "#203040"]}
    layers:
      - text: "{{ balance }}"
        box: [0.05, 0.2, 0.9, 0.6]
"""
    tpl = parse_template(source, Path("two.yaml"), env.settings.media_dir)
    calls = []
    original = env.renderer.composer.encode
    monkeypatch.setattr(env.renderer.composer, "encode", lambda runs, *a, **k: calls.append(
        [w.scene.name for w, _ in runs]) or original(runs, *a, **k))
    art = env.renderer.render(env.context("pl-PL"), tmp_path / "out", "tiny", template=tpl)
    assert calls == [["you", "amount"]]
    assert float(ffprobe(art.mp4)["format"]["duration"]) == pytest.approx(2.5, abs=0.05)
    cache = env.settings.home / "cache" / "video"
    assert not cache.exists() or all(p.name == "fonts" for p in cache.iterdir())


def test_spoken_line_is_heard_at_its_scene_and_written_in_the_captions(env, tmp_path):
    """Also: clip backgrounds, streamed into a static scene and cached (dimmed) for a personal one."""
    source = """
formats: {small: [320, 180]}
scenes:
  - name: quiet
    duration: 1.5
    background: {video: clips/drift.mp4}
    layers: [{text: "{{ creditor.name }}", box: [0.1, 0.1, 0.8, 0.8]}]
  - name: you
    duration: 3
    background: {video: clips/drift.mp4, dim: 0.5}
    speech: "{{ t.video.hello }} {{ balance }}"
    layers: [{text: "{{ balance }}", box: [0.1, 0.1, 0.8, 0.8]}]
"""
    tpl = parse_template(source, Path("speech.yaml"), env.settings.media_dir)
    ctx = env.context("it-IT")
    art = env.renderer.render(ctx, tmp_path / "out", "small", template=tpl)
    audio = next(s for s in ffprobe(art.mp4)["streams"] if s["codec_type"] == "audio")
    assert audio["codec_name"] == "aac"

    def loudness(start: float, seconds: float) -> float:
        done = subprocess.run(["ffmpeg", "-v", "info", "-ss", str(start), "-t", str(seconds), "-i", str(art.mp4),
                               "-map", "0:a", "-af", "volumedetect", "-f", "null", "-"], capture_output=True, text=True)
        return float(done.stderr.split("mean_volume:")[1].split("dB")[0])

    assert loudness(0, 1.4) < -80  # the first scene says nothing (and has no music)
    assert loudness(1.6, 2.0) > -40  # the customer's line is spoken in the second
    cues = parse_vtt(art.vtt.read_text(encoding="utf-8"))
    assert cues[1][:2] == (1.5, 4.5)
    assert "Gentile Giulia" in cues[1][2] and "€" in cues[1][2]
    assert not _children()


def test_a_failing_ffmpeg_is_one_error_line_and_leaves_nothing_behind(env, tmp_path, monkeypatch):
    from comms.render.sandbox import RenderError

    media = tmp_path / "media"
    (media / "clips").mkdir(parents=True)
    (media / "clips" / "broken.mp4").write_bytes(b"this is not a video")
    monkeypatch.setattr(env.renderer.composer, "media_dir", media)
    source = TINY.replace('background: {color: "#102a43"}', "background: {video: clips/broken.mp4}")
    tpl = parse_template(source, Path("broken.yaml"), media)
    with pytest.raises(RenderError, match="ffmpeg failed") as exc:
        env.renderer.render(env.context(), tmp_path / "out", "tiny", template=tpl)
    assert "\n" not in str(exc.value)
    assert list((tmp_path / "video-tmp").iterdir()) == []
    assert not _children()
    assert not (tmp_path / "out" / "video.mp4").exists()
    cache = env.settings.home / "cache" / "video"
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no half-built cache entry


def test_a_template_with_nothing_personal_is_joined_from_the_cache_alone(env, tmp_path, monkeypatch):
    from PIL import Image

    source = TINY.replace('"{{ customer.name }} {{ balance }}"', '"{{ creditor.name }}"').replace(
        'qr: "{{ links.pay }}"', 'qr: "{{ creditor.website }}"')
    tpl = parse_template(source, Path("static.yaml"), env.settings.media_dir)
    env.renderer.render(env.context("en-US"), tmp_path / "a", "tiny", template=tpl)
    calls = []
    original = env.renderer.composer.encode
    monkeypatch.setattr(env.renderer.composer, "encode", lambda runs, *a, **k: calls.append(runs) or original(
        runs, *a, **k))
    art = env.renderer.render(env.context("en-US", hostile=True), tmp_path / "b", "tiny", template=tpl)
    assert calls == []  # every scene came from the cache
    with Image.open(art.poster) as poster, Image.open(art.preview) as prev:
        assert poster.size == (160, 90) and prev.n_frames >= 2
    assert float(ffprobe(art.mp4)["format"]["duration"]) == pytest.approx(1.0, abs=0.05)
