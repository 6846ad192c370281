"""Shared helpers of the video tests: one warm renderer per test module, and the real tools that inspect
outputs (ffprobe, ffmpeg for frames, tesseract for OCR, zbarimg for QR codes)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from comms.config import Settings
from comms.payments import LinkSigner
from comms.render.context import ContextBuilder
from comms.render.samples import hostile_customer, sample_customer
from comms.render.video import VideoRenderer
from comms.segment.config import load_segments

CAMPAIGN = "spring-2026"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


@dataclass
class VideoEnv:
    home: Path
    settings: Settings = field(init=False)

    def __post_init__(self):
        self.settings = Settings.load(self.home)
        self.segments = load_segments(self.settings.segments_file, self.settings.templates_dir)
        self.signer = LinkSigner.from_settings(self.settings)
        self.builder = ContextBuilder(self.settings, self.segments, self.signer, CAMPAIGN)
        self.renderer = VideoRenderer(self.settings, self.segments)
        self._done: dict = {}

    def context(self, locale: str = "en-US", segment: str = "final", hostile: bool = False) -> dict:
        return self.builder.build(hostile_customer() if hostile else sample_customer(locale), segment)

    def render(self, locale: str = "en-US", fmt: str = "landscape", segment: str = "final", hostile: bool = False):
        """(context, artifacts) of a sample customer, rendered once per module."""
        key = (locale, fmt, segment, hostile)
        if key not in self._done:
            ctx = self.context(locale, segment, hostile)
            out = self.home / "out" / "-".join(map(str, key))
            self._done[key] = (ctx, self.renderer.render(ctx, out, fmt))
        return self._done[key]


def shared_cache(tmp_path_factory) -> str:
    """One static-scene cache for the whole run, shared by xdist workers (entries are written atomically),
    so each language and format is encoded once per run, whichever worker gets there first."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return str(root / "video-cache")


def ffprobe(path: Path) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                           str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (faststart puts moov before mdat)."""
    out, data = [], path.read_bytes()
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        out.append(kind)
        if size < 8:
            break
        i += size
    return out


def frame_at(video: Path, seconds: float, out: Path) -> Path:
    subprocess.run([FFMPEG, "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", str(video), "-frames:v", "1",
                    str(out)], check=True)
    return out


def ocr(image: Path, lang: str = "eng", crop: tuple[int, int, int, int] | None = None) -> str:
    """Tesseract on the picture made dark-on-light and twice as large (it reads that best)."""
    im = Image.open(image).convert("L")
    if crop:
        im = im.crop(crop)
    im = ImageOps.invert(im).resize((im.width * 2, im.height * 2), Image.LANCZOS)
    prepared = image.with_name(image.stem + f"-ocr-{lang}.png")
    im.save(prepared)
    done = subprocess.run(["tesseract", str(prepared), "-", "-l", lang], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


def qr_codes(image: Path, crop: tuple[int, int, int, int] | None = None) -> list[str]:
    """What every QR code zbarimg finds in the picture (or in a part of it) says."""
    if crop:
        part = image.with_name(image.stem + "-crop-" + "-".join(map(str, crop)) + ".png")
        Image.open(image).crop(crop).save(part)
        image = part
    done = subprocess.run(["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True,
                          env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"})
    return [line for line in done.stdout.splitlines() if line]


def plain(text: str) -> str:
    """Text as OCR returns it: CLDR's non-breaking spaces as spaces, bidi marks gone."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    return " ".join(re.sub("[\u200e\u200f\u061c]", "", text).split())


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT"), "a WebVTT file starts with WEBVTT"
    cues = []
    stamp = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"
    for block in re.split(r"\n\s*\n", text.strip())[1:]:
        lines = block.splitlines()
        timing = next(i for i, ln in enumerate(lines) if "-->" in ln)
        m = re.fullmatch(rf"{stamp} --> {stamp}", lines[timing].strip())
        assert m, f"bad cue timing {lines[timing]!r}"
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, "\n".join(lines[timing + 1:])))
    return cues
