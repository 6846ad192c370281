"""Encoded parts that are the same for many customers, kept under <home>/cache/video/<key>/.

A key is the SHA-256 of everything that makes the bytes: the renderer's version, the encoder settings, the
frame size and rate, the scene as written in video.yaml, the words it rendered (so a changed translation,
creditor name or date makes a new entry), the text direction and language, the fonts' and media files'
contents. An entry is built in a private folder and renamed into place, so workers that build the same entry
at once never see half a file; the loser's copy is thrown away. Entries are never edited, only added; deleting
the folder is always safe (the next render builds what it needs again).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

RENDERER_VERSION = "video-1"


@lru_cache(maxsize=256)
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, computed once per file version per process."""
    st = path.stat()
    return _digest(path, st.st_size, st.st_mtime_ns)


def cache_key(**parts: Any) -> str:
    blob = json.dumps({"renderer": RENDERER_VERSION, **parts}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class PartCache:
    """Finished files by key; a bounded memo of known entries saves a stat per render."""

    def __init__(self, root: Path, memo_size: int = 512):
        self.root = root
        self._known: OrderedDict[str, Path] = OrderedDict()
        self._memo_size = memo_size

    def get(self, key: str, name: str) -> Path | None:
        path = self._known.get(f"{key}/{name}")
        if path is not None and path.is_file():
            self._known.move_to_end(f"{key}/{name}")
            return path
        path = self.root / key / name
        if path.is_file():
            self._remember(f"{key}/{name}", path)
            return path
        return None

    def _remember(self, memo: str, path: Path) -> None:
        self._known[memo] = path
        while len(self._known) > self._memo_size:
            self._known.popitem(last=False)

    def build(self, key: str, name: str, produce: Callable[[Path], None]) -> Path:
        """The entry's file, produced by ``produce(tmp_file)`` unless another process already did."""
        found = self.get(key, name)
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        staging.chmod(0o755)  # readable by every worker sharing the cache, like the files in it
        try:
            produce(staging / name)
            final = self.root / key
            try:
                os.rename(staging, final)
            except OSError:  # another worker finished first (the folder exists): theirs is the same bytes
                if not (final / name).is_file():
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        path = self.root / key / name
        self._remember(f"{key}/{name}", path)
        return path
