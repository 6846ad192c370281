"""Makes the media/ files the shipped video templates use, from nothing but numpy, Pillow and ffmpeg.

    media/backgrounds/{calm,firm,final,support}.jpg   soft gradients with blurred light shapes (1280x1280)
    media/logos/example-collections.png              the demo creditor's logo (transparent PNG)
    media/music/calm-pad.m4a                         a 16-second seamless pad (four chords), AAC 64 kb/s
    media/clips/drift.mp4                            a 4-second clip of drifting light, H.264

Everything here is generated, so it is ours to ship (CC0). Deterministic: the same script makes the same
pictures and sound (encoders may differ in the last bytes between ffmpeg versions). Run it again after
changing it: ``.venv/bin/python scripts/make_media.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "media"
RATE = 44100

PALETTES = {  # (top-left, bottom-right, light shapes)
    "calm": ("#0e3b43", "#1b6f6a", "#8fd3c8"),
    "firm": ("#14213d", "#1f3b73", "#8fb3ff"),
    "final": ("#2b0f1a", "#5a1f2e", "#f2a38a"),
    "support": ("#1f2a4d", "#35507d", "#f4b98a"),
}


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)], np.float32)


def ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return "ffmpeg"


def background(name: str, size: int = 1280) -> Path:
    a, b, light = (_hex(c) for c in PALETTES[name])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = np.clip((xs + ys) / 2, 0, 1)[..., None]
    img = a + (b - a) * t
    rng = np.random.default_rng(sum(map(ord, name)))
    glow = np.zeros((size, size), np.float32)
    for _ in range(5):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.15, 0.35)
        glow += np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))) * rng.uniform(0.08, 0.18)
    img = img + (light - img) * np.clip(glow, 0, 0.3)[..., None]
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    out = MEDIA / "backgrounds" / f"{name}.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    pic.save(out, "JPEG", quality=88, optimize=True, progressive=True)
    return out


def logo() -> Path:
    font_dir = Path("/usr/share/fonts/truetype/noto")
    bold = ImageFont.truetype(str(font_dir / "NotoSans-Bold.ttf"), 64)
    regular = ImageFont.truetype(str(font_dir / "NotoSans-Regular.ttf"), 30)
    img = Image.new("RGBA", (760, 180), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((10, 10, 170, 170), radius=36, fill=(255, 255, 255, 255))
    d.text((90, 92), "EC", font=bold, fill=(20, 33, 61, 255), anchor="mm")
    d.text((200, 40), "Example", font=bold, fill=(255, 255, 255, 255), anchor="la")
    d.text((202, 118), "COLLECTIONS", font=regular, fill=(255, 255, 255, 220), anchor="la")
    out = MEDIA / "logos" / "example-collections.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return out


def pad(seconds: float = 16.0) -> Path:
    """Four soft chords, four seconds each, sines with slow swells; the end fades into the start."""
    chords = [(130.81, 164.81, 196.00, 246.94), (110.00, 130.81, 164.81, 196.00),
              (87.31, 110.00, 130.81, 164.81), (98.00, 123.47, 146.83, 164.81)]
    n = int(seconds * RATE)
    t = np.arange(n, dtype=np.float64) / RATE
    out = np.zeros((n, 2))
    each = n // len(chords)
    env = np.sin(np.linspace(0, np.pi, each)) ** 1.5
    for k, chord in enumerate(chords):
        seg = slice(k * each, (k + 1) * each)
        for j, f in enumerate(chord):
            for detune, side in ((-0.6, 0), (0.6, 1)):
                tone = np.sin(2 * np.pi * (f + detune) * t[seg]) + 0.25 * np.sin(2 * np.pi * 2 * (f + detune) * t[seg])
                out[seg, side] += tone * env * (0.18 / (1 + j * 0.3))
        bass = np.sin(2 * np.pi * chord[0] / 2 * t[seg]) * env * 0.12
        out[seg] += bass[:, None]
    out /= np.abs(out).max() / 0.5
    pcm = (out * 32767).astype("<i2")
    target = MEDIA / "music" / "calm-pad.m4a"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pad.raw"
        raw.write_bytes(pcm.tobytes())
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "s16le", "-ar", str(RATE), "-ac", "2", "-i", str(raw),
                        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(target)], check=True)
    return target


def clip(seconds: float = 4.0, fps: int = 30, size: tuple[int, int] = (640, 360)) -> Path:
    """Slowly drifting soft lights on a dark red ground, for the final notice's opening scene."""
    W, H = size
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.array([43, 15, 26], np.float32)
    light = np.array([242, 163, 138], np.float32)
    rng = np.random.default_rng(7)
    blobs = [(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(60, 140), rng.uniform(-30, 30), rng.uniform(-15, 15))
             for _ in range(6)]
    target = MEDIA / "clips" / "drift.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                             "-framerate", str(fps), "-i", "pipe:0", "-c:v", "libx264", "-preset", "slow", "-crf", "30",
                             "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
                             "-color_trc", "bt709", "-movflags", "+faststart", str(target)], stdin=subprocess.PIPE)
    for i in range(int(seconds * fps)):
        s = i / fps
        glow = np.zeros((H, W), np.float32)
        for cx, cy, r, vx, vy in blobs:
            glow += np.exp(-(((xs - cx - vx * s) ** 2 + (ys - cy - vy * s) ** 2) / (2 * r * r))) * 0.35
        frame = base + (light - base) * np.clip(glow, 0, 0.6)[..., None]
        proc.stdin.write(np.clip(frame, 0, 255).astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("ffmpeg failed to encode the clip")
    return target


def main() -> None:
    made = [background(name) for name in PALETTES] + [logo(), pad(), clip()]
    for path in made:
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
