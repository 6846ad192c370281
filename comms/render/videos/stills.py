"""The pictures that go with a video: a poster JPEG (full size) and a short animated WebP for the e-mail.

Both come from the frames the encoder gets (YUV converted back to RGB), so they show exactly what the video
shows. The preview is the poster scene from its start until everything has entered, then that frame held:
identical frames are merged into one with a longer duration, so it is small and cheap to encode.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .frames import frame_to_rgb, frame_to_small_rgb

PREVIEW_FPS = 8
PREVIEW_HOLD_MS = 2500
PREVIEW_MAX_SIDE = 480


def preview_size(size: tuple[int, int]) -> tuple[int, int]:
    """The frame scaled to at most PREVIEW_MAX_SIDE on its long side, even sizes."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(size))
    return max(2, round(size[0] * scale / 2) * 2), max(2, round(size[1] * scale / 2) * 2)


def save_poster(buf, size: tuple[int, int], path: Path) -> Path:
    Image.fromarray(frame_to_rgb(buf, size)).save(path, "JPEG", quality=86, optimize=True, progressive=True)
    return path


class PreviewFrames:
    """Collects preview frames (small RGB) with their durations; identical neighbours merge."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.target = preview_size(size)
        self.frames: list[Image.Image] = []
        self.durations: list[int] = []

    def add(self, buf, ms: int, changed: bool = True) -> None:
        if self.frames and not changed:
            self.durations[-1] += ms
            return
        self.frames.append(Image.fromarray(frame_to_small_rgb(buf, self.size, self.target)))
        self.durations.append(ms)

    def save(self, path: Path) -> Path:
        if not self.frames:
            raise ValueError("no preview frames")
        self.durations[-1] = max(self.durations[-1], PREVIEW_HOLD_MS)
        first, *rest = self.frames
        first.save(path, "WEBP", save_all=True, append_images=rest, duration=self.durations, loop=0, quality=72,
                   method=1)
        return path
