"""A scene of a template, with one customer's words, turned into frames; and runs of frames into parts.

``SceneWords`` is what a scene says for one customer (rendered in the sandbox, once per render), and whether
it is personal. ``Composer`` turns a scene and its words into :class:`SceneFrames` (backgrounds are prepared
once per process and size; clips are decoded once into the cache) and encodes a run of scenes into one part:
the frames go through a pipe into one ffmpeg, unchanged frames as the same buffer, while the poster frame and
the preview frames are picked up on the way.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from .cache import PartCache, cache_key, file_digest
from .encode import FFmpeg, encoder_args, raw_input_args
from .fonts import Fonts
from ..sandbox import RenderError
from .frames import Plane, SceneFrames, background_rgb, dimmed, pack, rgb_to_yuv
from .layers import REFERENCE_SHORT_SIDE, box_pixels, draw_image, draw_qr, draw_text
from .spec import Background, Scene
from .stills import PREVIEW_FPS, PreviewFrames


@dataclass
class SceneWords:
    """One scene for one customer: the rendered text of each layer (None for pictures), speech, caption."""

    scene: Scene
    index: int
    start: int  # first frame in the video
    frames: int
    layers: list[str | None]
    speech: str
    caption: str
    personal: bool

    def key_words(self) -> list:
        return [self.layers, self.speech, self.caption]


@dataclass
class Grab:
    """Frames a run should hand back while it encodes: the poster frame, the preview span."""

    poster: int | None = None  # frame index in the video
    preview: tuple[int, int] | None = None  # [first, last] frame indices in the video
    poster_frame: np.ndarray | None = None
    preview_frames: PreviewFrames | None = None
    _changed: bool = field(default=True, repr=False)

    def take(self, index: int, buf: np.ndarray, changed: bool, fps: int, size: tuple[int, int]) -> None:
        """Look at frame ``index`` of the video on its way to the encoder; keep what is wanted."""
        if index == self.poster:
            self.poster_frame = buf.copy()
        if self.preview is not None and self.preview[0] <= index <= self.preview[1]:
            every = max(1, round(fps / PREVIEW_FPS))
            self._changed = self._changed or changed or index == self.preview[0]
            if (index - self.preview[0]) % every == 0:
                if self.preview_frames is None:
                    self.preview_frames = PreviewFrames(size)
                self.preview_frames.add(buf, round(1000 * every / fps), self._changed)
                self._changed = False


class Composer:
    """Prepares scenes into frames and encodes runs of them; per-process caches are bounded."""

    def __init__(self, media_dir: Path, fonts: Fonts, parts: PartCache):
        self.media_dir = media_dir
        self.fonts = fonts
        self.parts = parts
        self._stills: OrderedDict[tuple, np.ndarray] = OrderedDict()

    # -- backgrounds ------------------------------------------------------------------------------------

    def _still(self, bg: Background, size: tuple[int, int]) -> np.ndarray:
        media = file_digest(self.media_dir / bg.image) if bg.image else ""
        key = (bg.model_dump_json(), size, media)
        found = self._stills.get(key)
        if found is None:
            image = None
            if bg.image:
                with Image.open(self.media_dir / bg.image) as src:
                    image = src.convert("RGB")
            found = pack(*rgb_to_yuv(background_rgb(bg, size, image)))
            self._stills[key] = found
            while len(self._stills) > 12:
                self._stills.popitem(last=False)
        else:
            self._stills.move_to_end(key)
        return found

    def _clip(self, bg: Background, size: tuple[int, int], fps: int, n: int, ff: FFmpeg, keep: bool):
        """The clip as exactly ``n`` frames (looped if shorter), scaled to cover, YUV: for a personal scene
        decoded once into the cache and read through a memory map; for a static scene (encoded once) streamed
        from a decoder straight into the encoder, with no file in between."""
        W, H = size
        args = ["-stream_loop", "-1", "-i", str(self.media_dir / bg.video), "-vf",
                f"scale={W}:{H}:force_original_aspect_ratio=increase:flags=bicubic:out_color_matrix=bt709:"
                f"out_range=tv,crop={W}:{H},fps={fps},format=yuv420p", "-frames:v", str(n), "-an", "-f", "rawvideo"]
        if not keep:
            return StreamedClip(ff, args, W * H, n, bg.dim)
        key = cache_key(kind="clip", media=file_digest(self.media_dir / bg.video), size=size, fps=fps, n=n,
                        dim=bg.dim)

        def decode(target: Path) -> None:
            ff.run([*args, str(target)])
            if bg.dim:
                frames = np.memmap(target, np.uint8, "r+").reshape(n, W * H * 3 // 2)
                for f in frames:
                    f[:] = dimmed(f, 1.0 - bg.dim, W * H)
                frames.flush()
                del frames

        return CachedClip(self.parts.build(key, "clip.yuv", decode), W * H * 3 // 2)

    # -- scenes -----------------------------------------------------------------------------------------

    def frames(self, words: SceneWords, fmt: str, size: tuple[int, int], fps: int, lang: str, rtl: bool,
               ff: FFmpeg) -> SceneFrames:
        scene = words.scene
        scale = min(size) / REFERENCE_SHORT_SIDE
        planes = []
        for layer, text in zip(scene.layers, words.layers):
            box = box_pixels(layer, fmt, size, rtl, scene.mirror_rtl)
            if layer.kind == "text":
                sprite = draw_text(text or "", layer, box, scale, self.fonts, lang, rtl)
            elif layer.kind == "qr":
                sprite = draw_qr(text or "", layer, box, rtl and scene.mirror_rtl)
            else:
                sprite = draw_image(self.media_dir / layer.source, layer, box, rtl and scene.mirror_rtl)
            if sprite is not None:
                planes.append(Plane(sprite, layer.enter, layer.exit, rtl, size))
        bg = scene.background
        if bg.video:
            return SceneFrames(size, fps, words.frames, planes, clip=self._clip(bg, size, fps, words.frames, ff,
                                                                             words.personal))
        return SceneFrames(size, fps, words.frames, planes, still=self._still(bg, size))

    def encode(self, runs: Sequence[tuple[SceneWords, SceneFrames]], size: tuple[int, int], fps: int, ff: FFmpeg,
               out: Path, grab: Grab | None = None, inputs: Sequence[str] = (),
               outputs: Sequence[str] = ()) -> Path:
        """Encode consecutive scenes into one part; with more ``inputs`` (the audio) and ``outputs`` options
        (mapping, faststart) the part is the finished video (the plain path)."""
        with ff.process([*raw_input_args(size, fps), *inputs, *encoder_args(fps), *outputs, str(out)],
                        stdin=True) as proc:
            write = proc.stdin.write
            for words, frames in runs:
                for i, buf, changed in frames:
                    write(buf)
                    if grab is not None:
                        grab.take(words.start + i, buf, changed, fps, size)
        return out


class CachedClip:
    """A decoded clip in the cache, read through a memory map."""

    def __init__(self, path: Path, frame_bytes: int):
        self.path, self.frame_bytes = path, frame_bytes

    @contextmanager
    def frames(self) -> Iterator[np.ndarray]:
        frames = np.memmap(self.path, np.uint8, "r").reshape(-1, self.frame_bytes)
        try:
            yield iter(frames)
        finally:
            del frames


class StreamedClip:
    """A clip decoded by ffmpeg while it is used: frames read from its output one at a time."""

    def __init__(self, ff: FFmpeg, args: list[str], luma: int, n: int, dim: float):
        self.ff, self.args, self.luma, self.n, self.dim = ff, args, luma, n, dim

    @contextmanager
    def frames(self) -> Iterator[Iterator[np.ndarray]]:
        with self.ff.process([*self.args, "pipe:1"], stdout=True) as proc:
            yield self._read(proc.stdout)
            while proc.stdout.read(1 << 20):  # a caller that stopped early (one poster frame): let it finish
                pass

    def _read(self, out) -> Iterator[np.ndarray]:
        size = self.luma * 3 // 2
        for _ in range(self.n):
            data = out.read(size)
            if len(data) < size:
                raise RenderError("the background clip gave fewer frames than its scene needs")
            frame = np.frombuffer(data, np.uint8)
            yield dimmed(frame, 1.0 - self.dim, self.luma) if self.dim else frame
