"""Fonts for video text: Debian's Noto and DejaVu faces, chosen per text by what they can draw.

Pillow has no font fallback, so one layer is drawn with one face, the first of the locale's list that covers
every character of the text (invisible format characters such as U+200F aside): Noto Sans for Latin and
Cyrillic, Noto Sans CJK (the face of the language: SC, TC, JP, KR) for Chinese, Japanese and Korean, and
for Hebrew a merge of Noto Sans Hebrew with Noto Sans, built once with fontTools into <home>/cache/fonts
(Noto Sans Hebrew alone has no digits, so amounts would come out as boxes). DejaVu Sans, which covers Latin,
Cyrillic and Hebrew, is the last resort before CJK. Fonts are looked up in media/fonts first, then in the
Debian folders (packages fonts-noto-core, fonts-noto-cjk, fonts-dejavu-core).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ..sandbox import RenderError

SYSTEM_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/opentype/noto"),
               Path("/usr/share/fonts/truetype/dejavu"))
_FILES = {
    "latin": ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", 0, "fonts-noto-core"),
    "hebrew-src": ("NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Bold.ttf", 0, "fonts-noto-core"),
    "dejavu": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", 0, "fonts-dejavu-core"),
    "cjk-jp": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 0, "fonts-noto-cjk"),
    "cjk-kr": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 1, "fonts-noto-cjk"),
    "cjk-sc": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 2, "fonts-noto-cjk"),
    "cjk-tc": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 3, "fonts-noto-cjk"),
}
_ORDER = {
    "he": ("hebrew", "dejavu", "cjk-sc"),
    "zh": ("cjk-sc", "latin", "hebrew", "dejavu"),
    "zh-tw": ("cjk-tc", "latin", "hebrew", "dejavu"),
    "ja": ("cjk-jp", "latin", "hebrew", "dejavu"),
    "ko": ("cjk-kr", "latin", "hebrew", "dejavu"),
}
_DEFAULT_ORDER = ("latin", "hebrew", "dejavu", "cjk-sc")


@dataclass(frozen=True)
class Face:
    name: str
    path: Path
    index: int

    @property
    def ident(self) -> str:
        """What goes into cache keys: the face and its file's version."""
        st = self.path.stat()
        return f"{self.name}:{self.path.name}:{self.index}:{st.st_size}:{st.st_mtime_ns}"


@lru_cache(maxsize=16)
def _coverage(path: Path, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), fontNumber=index, lazy=True) as font:
        return frozenset(font.getBestCmap())


@lru_cache(maxsize=128)
def truetype(path: Path, index: int, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font with raqm layout (shaping and bidi); a handful per process, reused."""
    return ImageFont.truetype(str(path), size=size, index=index, layout_engine=ImageFont.Layout.RAQM)


def _drawn(text: str) -> set[int]:
    return {ord(c) for c in text if c not in "\n\t" and unicodedata.category(c) not in ("Cf", "Cc")}


class Fonts:
    """Finds faces, builds the Hebrew merge once, picks the face for a text in a language."""

    def __init__(self, cache_dir: Path, media_dir: Path):
        self.cache_dir = cache_dir
        self.dirs = (media_dir / "fonts", *SYSTEM_DIRS)
        self._faces: dict[tuple[str, str], Face] = {}

    def _find(self, filename: str, package: str) -> Path:
        for d in self.dirs:
            if (d / filename).is_file():
                return d / filename
        raise RenderError(f"font {filename} not found in {', '.join(map(str, self.dirs))}: "
                          f"install the Debian package {package} (make demo does)")

    def face(self, name: str, weight: str) -> Face:
        key = (name, weight)
        if key not in self._faces:
            self._faces[key] = self._hebrew(weight) if name == "hebrew" else self._file(name, weight)
        return self._faces[key]

    def _file(self, name: str, weight: str) -> Face:
        regular, bold, index, package = _FILES[name]
        return Face(name, self._find(bold if weight == "bold" else regular, package), index)

    def _hebrew(self, weight: str) -> Face:
        """Noto Sans Hebrew + Noto Sans in one file, so a Hebrew line with digits, a currency sign or a
        Latin name is drawn in one face and shaped right-to-left in one pass."""
        latin, hebrew = self._file("latin", weight), self._file("hebrew-src", weight)
        digest = hashlib.sha256(f"{latin.ident}|{hebrew.ident}".encode()).hexdigest()[:16]
        target = self.cache_dir / f"NotoSansHebrewMerged-{weight}-{digest}.ttf"
        if not target.is_file():
            from fontTools.merge import Merger, Options

            self.cache_dir.mkdir(parents=True, exist_ok=True)
            try:
                merged = Merger(options=Options(drop_tables=["vmtx", "vhea", "MATH"])).merge(
                    [str(latin.path), str(hebrew.path)])
                tmp = target.with_name(f".{target.name}.{os.getpid()}")
                merged.save(str(tmp))
                os.replace(tmp, target)
            except Exception:  # a fontTools that cannot merge: DejaVu draws Hebrew and digits too
                return self._file("dejavu", weight)
        return Face("hebrew", target, 0)

    def pick(self, text: str, lang: str, weight: str) -> Face:
        """The first face of the language's list that draws every character of ``text``."""
        lang = lang.lower()
        order = _ORDER.get(lang) or _ORDER.get(lang.split("-")[0]) or _DEFAULT_ORDER
        if lang.startswith("zh") and lang.split("-")[-1] in ("tw", "hk", "mo", "hant"):
            order = _ORDER["zh-tw"]
        needed = _drawn(text)
        best, best_missing = None, None
        for name in order:
            face = self.face(name, weight)
            missing = len(needed - _coverage(face.path, face.index))
            if missing == 0:
                return face
            if best_missing is None or missing < best_missing:
                best, best_missing = face, missing
        return best  # type: ignore[return-value]
