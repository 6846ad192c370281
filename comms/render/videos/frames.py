"""Frames as the encoder wants them: BT.709 limited-range YUV 4:2:0, composited with numpy.

A scene is a background (one still frame, or the frames of a clip) plus sprites, each with a timeline of
opacity and offset (fade, slide). Sprites are converted to Y, U, V and alpha planes once (chroma averaged
over 2x2 pixels, weighted by alpha), then every frame is the background plus the sprites blended inside their
own rectangles only, in integer arithmetic. A frame whose every sprite is where and as visible as in the frame
before is not composited again: the same buffer is handed to the encoder (most of a scene is such frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .layers import Sprite
from .spec import Animation, Background, rgba

# BT.709, limited range (what the encoder is told: -colorspace bt709 -color_range tv).
_TO_YUV = np.array([[0.18259, 0.61423, 0.06201], [-0.10064, -0.33857, 0.43922], [0.43922, -0.39894, -0.04027]],
                   np.float32)
_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)


def rgb_to_yuv(rgb: np.ndarray, alpha: np.ndarray | None = None):
    """RGB (h x w x 3, even sizes) -> Y (h x w), U, V (h/2 x w/2) as uint8; chroma weighted by alpha."""
    f = rgb.astype(np.float32)
    y = f @ _TO_YUV[0] + _OFFSET[0]
    h, w = rgb.shape[:2]
    if alpha is None:
        quad = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    else:
        a = alpha.astype(np.float32).reshape(h // 2, 2, w // 2, 2, 1)
        weight = a.sum(axis=(1, 3))
        quad = (f.reshape(h // 2, 2, w // 2, 2, 3) * a).sum(axis=(1, 3)) / np.maximum(weight, 1.0)
    u = quad @ _TO_YUV[1] + _OFFSET[1]
    v = quad @ _TO_YUV[2] + _OFFSET[2]
    return tuple(np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v))


_LEVELS = np.arange(256, dtype=np.float32)
_Y = np.rint((_LEVELS - 16.0) * 1.16438).astype(np.int16)
_RV = np.rint((_LEVELS - 128.0) * 1.79274).astype(np.int16)
_GU = np.rint((_LEVELS - 128.0) * -0.21325).astype(np.int16)
_GV = np.rint((_LEVELS - 128.0) * -0.53291).astype(np.int16)
_BU = np.rint((_LEVELS - 128.0) * 2.11240).astype(np.int16)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Y (h x w) and U, V of the same size -> RGB uint8 (for the poster and the preview), by lookup tables."""
    yl = _Y[y]
    out = np.empty((*y.shape, 3), np.uint8)
    for k, chroma in enumerate((_RV[v], _GU[u] + _GV[v], _BU[u])):
        chroma += yl
        np.clip(chroma, 0, 255, out=chroma)
        out[..., k] = chroma
    return out


def _planes(buf: np.ndarray, size: tuple[int, int]):
    W, H = size
    return (buf[:W * H].reshape(H, W), buf[W * H:W * H * 5 // 4].reshape(H // 2, W // 2),
            buf[W * H * 5 // 4:].reshape(H // 2, W // 2))


def frame_to_rgb(buf: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A YUV 4:2:0 frame buffer -> RGB at full size (the poster)."""
    y, u, v = _planes(buf, size)
    u, v = (np.repeat(np.repeat(p, 2, axis=0), 2, axis=1) for p in (u, v))
    return yuv_to_rgb(y, u, v)


def frame_to_small_rgb(buf: np.ndarray, size: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """A YUV 4:2:0 frame buffer -> RGB at ``target`` size: each plane scaled down first (cheap), then converted."""
    from PIL import Image

    return yuv_to_rgb(*(np.asarray(Image.fromarray(p).resize(target, Image.BOX)) for p in _planes(buf, size)))


def background_rgb(bg: Background, size: tuple[int, int], image=None) -> np.ndarray:
    """A still background as RGB: a colour, a gradient, or an image scaled to cover the frame (centred)."""
    W, H = size
    if bg.color:
        out = np.empty((H, W, 3), np.uint8)
        out[:] = rgba(bg.color)[:3]
    elif bg.gradient:
        a, b = (np.array(rgba(c)[:3], np.float32) for c in bg.gradient)
        rad = np.deg2rad(bg.angle)
        xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, W, dtype=np.float32), np.linspace(-0.5, 0.5, H, dtype=np.float32))
        t = xs * np.sin(rad) * (W / max(W, H)) - ys * np.cos(rad) * (H / max(W, H))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        out = np.clip(a + (b - a) * t[..., None], 0, 255).astype(np.uint8)
    else:
        out = cover(image, size)
    if bg.dim:
        out = (out.astype(np.float32) * (1.0 - bg.dim)).astype(np.uint8)
    return out


def cover(image, size: tuple[int, int]) -> np.ndarray:
    """A PIL image scaled to cover ``size`` and cropped to it, centred, as RGB."""
    from PIL import Image

    W, H = size
    ratio = max(W / image.width, H / image.height)
    scaled = image.convert("RGB").resize((max(W, round(image.width * ratio)), max(H, round(image.height * ratio))),
                                         Image.LANCZOS)
    x, y = (scaled.width - W) // 2, (scaled.height - H) // 2
    return np.asarray(scaled.crop((x, y, x + W, y + H)))


def pack(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()])


def _ease_out(p: float) -> float:
    return 1.0 - (1.0 - p) ** 3


@dataclass
class Plane:
    """A sprite ready to blend: Y/U/V/alpha planes (alpha 0..256) and its timeline in the scene."""

    sprite: Sprite
    enter: Animation | None
    exit: Animation | None
    rtl: bool
    frame_size: tuple[int, int]
    ys: np.ndarray = field(init=False)
    us: np.ndarray = field(init=False)
    vs: np.ndarray = field(init=False)
    a: np.ndarray = field(init=False)
    a2: np.ndarray = field(init=False)

    def __post_init__(self):
        px = self.sprite.rgba
        alpha = px[..., 3]
        y, u, v = rgb_to_yuv(px[..., :3], alpha)
        self.ys, self.us, self.vs = (p.astype(np.int32) for p in (y, u, v))
        a = alpha.astype(np.int32)
        self.a = a + (a >> 7)  # 0..255 -> 0..256
        h, w = a.shape
        self.a2 = self.a.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) >> 2

    def _slide(self, effect: str, p: float) -> tuple[int, int]:
        W, H = self.frame_size
        if effect == "slide":
            effect = "slide-left" if self.rtl else "slide-right"
        dist = (1.0 - p) * 0.08
        dx, dy = {"slide-right": (-dist * W, 0), "slide-left": (dist * W, 0), "slide-up": (0, dist * H),
                  "slide-down": (0, -dist * H)}.get(effect, (0, 0))
        return int(round(dx / 2)) * 2, int(round(dy / 2)) * 2

    def state(self, t: float, scene_seconds: float) -> tuple[int, int, int]:
        """(opacity 0..256, dx, dy) at ``t`` seconds into the scene."""
        opacity, dx, dy = 1.0, 0, 0
        if self.enter is not None:
            start = self.enter.at or 0.0
            p = 1.0 if self.enter.duration == 0 else min(max((t - start) / self.enter.duration, 0.0), 1.0)
            if t < start:
                return 0, 0, 0
            if self.enter.effect != "none":
                p = _ease_out(p)
                opacity *= p
                dx, dy = self._slide(self.enter.effect, p)
        if self.exit is not None:
            dur = 0.0 if self.exit.effect == "none" else self.exit.duration
            start = self.exit.at if self.exit.at is not None else scene_seconds - dur
            if t >= start + dur:
                return 0, 0, 0
            if t >= start:
                p = 1.0 - _ease_out((t - start) / dur)
                opacity *= p
                ex, ey = self._slide(self.exit.effect, p)
                dx, dy = dx - ex, dy - ey
        return int(round(opacity * 256)), dx, dy

    def blend(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, opacity: int, dx: int, dy: int) -> None:
        H, W = y.shape
        x0, y0 = self.sprite.x + dx, self.sprite.y + dy
        l, t = max(x0, 0), max(y0, 0)
        r, b = min(x0 + self.sprite.w, W), min(y0 + self.sprite.h, H)
        if r <= l or b <= t or opacity <= 0:
            return
        sl, st = l - x0, t - y0
        a = self.a[st:st + b - t, sl:sl + r - l]
        if opacity < 256:
            a = (a * opacity) >> 8
        _mix(y[t:b, l:r], self.ys[st:st + b - t, sl:sl + r - l], a)
        a2 = self.a2[st // 2:(st + b - t) // 2, sl // 2:(sl + r - l) // 2]
        if opacity < 256:
            a2 = (a2 * opacity) >> 8
        cs = (slice(t // 2, b // 2), slice(l // 2, r // 2))
        src = (slice(st // 2, (st + b - t) // 2), slice(sl // 2, (sl + r - l) // 2))
        _mix(u[cs], self.us[src], a2)
        _mix(v[cs], self.vs[src], a2)


def _mix(dst: np.ndarray, src: np.ndarray, a: np.ndarray) -> None:
    d = dst.astype(np.int32)
    d += ((src - d) * a) >> 8
    dst[...] = d


def dimmed(frame: np.ndarray, k: float, luma: int) -> np.ndarray:
    """A YUV frame darkened to ``k`` of its brightness (chroma pulled towards grey by the same factor)."""
    out = np.empty_like(frame)
    out[:luma] = (16 + (frame[:luma].astype(np.float32) - 16) * k).astype(np.uint8)
    out[luma:] = (128 + (frame[luma:].astype(np.float32) - 128) * k).astype(np.uint8)
    return out


class SceneFrames:
    """The frames of one scene: a background (a still frame, or a clip giving exactly one frame per frame of
    the scene: ``clip.frames()`` is a context manager over them) and planes, as YUV 4:2:0 buffers."""

    def __init__(self, size: tuple[int, int], fps: int, n_frames: int, planes: list[Plane], still=None, clip=None):
        self.size, self.fps, self.n = size, fps, n_frames
        self.planes = planes
        self.still = still  # one packed YUV frame
        self.clip = clip

    def states(self, i: int) -> tuple:
        t = i / self.fps
        seconds = self.n / self.fps
        return tuple(p.state(t, seconds) for p in self.planes)

    def _backgrounds(self):
        if self.clip is None:
            yield from ((self.still, False) for _ in range(self.n))
        else:
            with self.clip.frames() as frames:
                yield from ((f, True) for f in frames)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        """(index, buffer, changed): ``buffer`` is reused; ``changed`` is False when it equals the last one."""
        W, H = self.size
        buf = np.empty(W * H * 3 // 2, np.uint8)
        y = buf[:W * H].reshape(H, W)
        u = buf[W * H:W * H * 5 // 4].reshape(H // 2, W // 2)
        v = buf[W * H * 5 // 4:].reshape(H // 2, W // 2)
        last = None
        for i, (background, moving) in enumerate(self._backgrounds()):
            states = self.states(i)
            if not moving and states == last:
                yield i, buf, False
                continue
            np.copyto(buf, background)
            for plane, (opacity, dx, dy) in zip(self.planes, states):
                plane.blend(y, u, v, opacity, dx, dy)
            last = states
            yield i, buf, True

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` on its own (a copy), for a poster or preview of a scene that is not being encoded."""
        for j, buf, _ in self:
            if j == i:
                return buf.copy()
        raise IndexError(i)
