"""templates/<treatment>/video.yaml: what a treatment's video shows, scene by scene.

A video is a list of scenes played one after the other. Each scene has a duration, a background (a colour,
a two-colour gradient, an image or a video clip from media/) and layers drawn over it in order: text (a
sandboxed Jinja snippet over the customer's context, e.g. ``{{ t.video.hello }}`` or ``{{ balance }}``),
an image or logo from media/, or the QR code of a link (``qr: "{{ links.pay }}"``). A layer sits in a box
given as fractions of the frame, ``[x, y, width, height]``, one box for every format or one per format
(``{landscape: [...], vertical: [...], square: [...]}``); boxes are mirrored for right-to-left languages
unless the scene says ``mirror_rtl: false``. Text is wrapped and shrunk until it fits its box. Layers enter
and leave with ``fade``, ``slide`` (from the side where reading starts), ``slide-left|right|up|down`` or
``none``, at a time and for a duration in seconds. Optional: music from media/ under the whole video, a
spoken line per scene, the caption of a scene, the poster time.

Sizes of text are pixels on a frame whose short side is 720 (they scale with the format). Formats are
landscape 1280x720, vertical 720x1280 and square 1080x1080; a template may add its own (even sizes).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..sandbox import RenderError

FORMATS: dict[str, tuple[int, int]] = {"landscape": (1280, 720), "vertical": (720, 1280), "square": (1080, 1080)}
EFFECTS = ("none", "fade", "slide", "slide-left", "slide-right", "slide-up", "slide-down")
MAX_SECONDS = 120.0
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_MEDIA = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


class VideoTemplateError(RenderError):
    """A video.yaml that cannot be used: one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _color(value: str) -> str:
    if not isinstance(value, str) or not _COLOR.match(value):
        raise ValueError(f"colour {value!r} must be #rrggbb or #rrggbbaa")
    return value.lower()


def _media(value: str | None) -> str | None:
    if value is not None and (not _MEDIA.match(value) or ".." in value.split("/")):
        raise ValueError(f"{value!r} must be a path inside media/ (letters, digits, _ . / -; no ..)")
    return value


def rgba(color: str) -> tuple[int, int, int, int]:
    """'#rrggbb' or '#rrggbbaa' -> (r, g, b, a)."""
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), int(c[6:8], 16) if len(c) == 8 else 255)


class Animation(_Strict):
    effect: Literal[EFFECTS] = "fade"  # type: ignore[valid-type]
    at: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    duration: float = Field(default=0.5, ge=0, le=10)


Box = Union[tuple[float, float, float, float], dict[str, tuple[float, float, float, float]]]


class Layer(_Strict):
    """One thing drawn over the background: exactly one of text, image, logo, qr."""

    text: str | None = None
    image: str | None = None
    logo: str | None = None
    qr: str | None = None
    box: Box
    font: Literal["regular", "bold"] = "regular"
    size: float = Field(default=40, gt=2, le=400)
    color: str = "#ffffff"
    align: Literal["start", "center", "end"] = "start"
    valign: Literal["top", "middle", "bottom"] = "middle"
    line_spacing: float = Field(default=1.15, ge=0.8, le=3)
    shadow: bool = False
    dark: str = "#000000"
    light: str = "#ffffff"
    enter: Animation | None = None
    exit: Animation | None = None
    caption: bool = True

    check_colors = field_validator("color", "dark", "light")(_color)
    check_media = field_validator("image", "logo")(_media)

    @field_validator("enter", "exit", mode="before")
    @classmethod
    def _short(cls, value):
        return {"effect": value} if isinstance(value, str) else value

    @field_validator("box")
    @classmethod
    def _box(cls, value):
        for b in value.values() if isinstance(value, dict) else [value]:
            x, y, w, h = b
            if not (0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1 and x + w <= 1.0001
                    and y + h <= 1.0001):
                raise ValueError(f"box {list(b)} must be [x, y, width, height], fractions inside the frame")
        return value

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("text", "image", "logo", "qr") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a layer has exactly one of text, image, logo, qr")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("text", "image", "logo", "qr") if getattr(self, k) is not None)

    @property
    def source(self) -> str:
        return getattr(self, self.kind)

    def box_for(self, fmt: str) -> tuple[float, float, float, float]:
        if isinstance(self.box, dict):
            if fmt in self.box:
                return self.box[fmt]
            return self.box.get("landscape") or next(iter(self.box.values()))
        return self.box


class Background(_Strict):
    """Exactly one of color, gradient, image, video (a clip from media/, looped); ``dim`` darkens it."""

    color: str | None = None
    gradient: tuple[str, str] | None = None
    angle: float = 90.0
    image: str | None = None
    video: str | None = None
    dim: float = Field(default=0.0, ge=0, le=0.95)

    check_media = field_validator("image", "video")(_media)

    @field_validator("color")
    @classmethod
    def _col(cls, value):
        return None if value is None else _color(value)

    @field_validator("gradient")
    @classmethod
    def _grad(cls, value):
        return None if value is None else (_color(value[0]), _color(value[1]))

    @model_validator(mode="after")
    def _one_kind(self):
        if sum(v is not None for v in (self.color, self.gradient, self.image, self.video)) != 1:
            raise ValueError("a background has exactly one of color, gradient, image, video")
        return self


class Scene(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    duration: float = Field(gt=0, le=60)
    background: Background
    layers: list[Layer] = []
    speech: str | None = None
    caption: str | None = None
    poster: float | None = Field(default=None, ge=0)
    mirror_rtl: bool = True


class Music(_Strict):
    file: str
    volume: float = Field(default=0.5, gt=0, le=2)
    fade_in: float = Field(default=1.0, ge=0, le=10)
    fade_out: float = Field(default=1.5, ge=0, le=10)

    check_media = field_validator("file")(_media)


class VideoTemplate(_Strict):
    version: int = 1
    defs: Any = None  # a place for YAML anchors (&box ...) that scenes refer to; ignored otherwise
    fps: int = Field(default=30, ge=10, le=60)
    formats: dict[str, tuple[int, int]] = {}
    music: Music | None = None
    speech_volume: float = Field(default=1.0, gt=0, le=4)
    scenes: list[Scene] = Field(min_length=1)

    @field_validator("formats")
    @classmethod
    def _sizes(cls, value):
        for name, (w, h) in value.items():
            if w % 2 or h % 2 or not (16 <= w <= 3840 and 16 <= h <= 3840):
                raise ValueError(f"format {name}: width and height must be even, 16..3840")
        return value

    @model_validator(mode="after")
    def _whole(self):
        if sum(s.duration for s in self.scenes) > MAX_SECONDS:
            raise ValueError(f"the scenes last more than {MAX_SECONDS:g} seconds")
        names = [s.name for s in self.scenes]
        if len(set(names)) != len(names):
            raise ValueError("scene names must be unique")
        return self

    def size(self, fmt: str) -> tuple[int, int]:
        sizes = {**FORMATS, **self.formats}
        if fmt not in sizes:
            raise VideoTemplateError(f"unknown video format {fmt!r}; known: {', '.join(sizes)}")
        return sizes[fmt]

    def frames(self, scene: Scene) -> int:
        """Frames of a scene: its duration rounded to whole frames (at least one)."""
        return max(1, round(scene.duration * self.fps))

    def media_files(self) -> set[str]:
        out = {self.music.file} if self.music else set()
        for s in self.scenes:
            out |= {p for p in (s.background.image, s.background.video) if p}
            out |= {p for lay in s.layers for p in (lay.image, lay.logo) if p}
        return out


def _message(path: Path, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ""
    for part in err["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return f"{path}: {key or 'top level'}: {err['msg'].removeprefix('Value error, ')}"


def parse_template(text: str, path: Path, media_dir: Path) -> VideoTemplate:
    """Validate a video.yaml text; every mistake is one line naming the file and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise VideoTemplateError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', '') or exc}") from None
    if not isinstance(data, dict):
        raise VideoTemplateError(f"{path}: must be a mapping with a list of scenes")
    try:
        template = VideoTemplate.model_validate(data)
    except ValidationError as exc:
        raise VideoTemplateError(_message(path, exc)) from None
    missing = sorted(p for p in template.media_files() if not (media_dir / p).is_file())
    if missing:
        raise VideoTemplateError(f"{path}: media file {missing[0]!r} not found in {media_dir}")
    return template


@lru_cache(maxsize=32)
def _load(path: Path, media_dir: Path, mtime_ns: int) -> VideoTemplate:
    return parse_template(path.read_text(encoding="utf-8"), path, media_dir)


def load_template(path: Path, media_dir: Path) -> VideoTemplate:
    """The template at ``path``, parsed once per file version (modification time)."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise VideoTemplateError(f"{path}: missing (a treatment with a video needs its video.yaml)") from None
    return _load(path, media_dir, mtime)
